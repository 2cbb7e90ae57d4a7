#include "transports/compression/compression.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "transports/util/digest.h"

namespace regfs {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

// Compressible: text with repeats, so encoders produce several blocks.
std::string TextBytes(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) s += "line " + std::to_string(i % 977) + " of a layer\n";
  s.resize(n);
  return s;
}

// Like a layer's files: words drawn from a small vocabulary with a skewed distribution and
// some binary-looking runs, so that every level finds different matches.
std::string LayerLikeBytes(size_t n, uint32_t seed) {
  static const char* const kWords[] = {"usr",
                                       "lib",
                                       "share",
                                       "include",
                                       "bin",
                                       "regfs",
                                       "layer",
                                       "gzip",
                                       "static",
                                       "const",
                                       "return",
                                       "int",
                                       "char",
                                       "void",
                                       "\x7f"
                                       "ELF",
                                       "\0\0\0\0",
                                       "#define",
                                       "struct",
                                       "\n"};
  std::mt19937 gen(seed);
  std::string s;
  while (s.size() < n) {
    uint32_t r = gen();
    if (r % 16 == 0) {
      for (int i = 0; i < 24; ++i) s += static_cast<char>(gen() & 0x3f);
    } else {
      s += kWords[(r >> 4) % (r % 3 == 0 ? 19 : 7)];
      s += (r >> 12) % 5 == 0 ? '/' : ' ';
    }
  }
  s.resize(n);
  return s;
}

// Feeds `data` to a codec in uneven pieces and returns everything it wrote.
Result<std::string> Stream(
    const std::function<Result<std::unique_ptr<StreamCodec>>(ByteSink)>& make,
    std::string_view data) {
  std::string out;
  ASSIGN_OR_RETURN(std::unique_ptr<StreamCodec> codec,
                   make([&out](const char* p, size_t n) -> Status {
                     out.append(p, n);
                     return Ok();
                   }));
  size_t pos = 0;
  for (size_t step = 1; pos < data.size(); step = step * 7 + 3) {
    size_t n = std::min(step, data.size() - pos);
    RETURN_IF_ERROR(codec->Write(data.data() + pos, n));
    pos += n;
  }
  RETURN_IF_ERROR(codec->Finish());
  return out;
}

TEST(CompressionTest, DetectsByMagicNumbers) {
  EXPECT_EQ(DetectCompression("\x1f\x8b\x08\x00"), Compression::kGzip);
  EXPECT_EQ(DetectCompression("\x28\xb5\x2f\xfd\x00"), Compression::kZstd);
  EXPECT_EQ(DetectCompression("\x28\xb5\x2f"), Compression::kNone);  // too short to be zstd
  EXPECT_EQ(DetectCompression("ustar"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
}

TEST(CompressionTest, LayerMediaTypes) {
  EXPECT_EQ(LayerMediaTypeCompression("application/vnd.oci.image.layer.v1.tar+zstd"),
            Compression::kZstd);
  EXPECT_EQ(LayerMediaTypeCompression("application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::kGzip);
  EXPECT_EQ(LayerMediaTypeCompression("application/vnd.oci.image.layer.v1.tar"),
            Compression::kNone);
  EXPECT_EQ(LayerMediaTypeCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::kGzip);
  EXPECT_EQ(LayerMediaTypeCompression("application/vnd.oci.image.config.v1+json"), std::nullopt);
  EXPECT_EQ(ParseCompressionName("zstd").value(), Compression::kZstd);
  EXPECT_FALSE(ParseCompressionName("zstd:chunked").ok());
  EXPECT_FALSE(ParseCompressionName("bzip2").ok());
}

TEST(CompressionTest, RoundTripsBothAlgorithms) {
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    for (const std::string& data :
         {std::string(), std::string("x"), TextBytes(5 << 20), RandomBytes(3 << 20, 7)}) {
      auto encoded = Stream([c](ByteSink out) { return NewEncoder(c, std::nullopt, out); }, data);
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      EXPECT_EQ(DetectCompression(*encoded), c);
      auto decoded = Stream([c](ByteSink out) { return NewDecoder(c, out); }, *encoded);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(*decoded, data) << CompressionName(c) << " of " << data.size() << " bytes";
      auto sniffed = Stream(
          [](ByteSink out) -> Result<std::unique_ptr<StreamCodec>> { return NewAutoDecoder(out); },
          *encoded);
      ASSERT_TRUE(sniffed.ok()) << sniffed.error().message;
      EXPECT_EQ(*sniffed, data);
    }
  }
}

TEST(CompressionTest, AutoDecoderPassesUncompressedDataThrough) {
  for (const std::string& data : {std::string(), std::string("ab"), TextBytes(100000)}) {
    auto out = Stream(
        [](ByteSink sink) -> Result<std::unique_ptr<StreamCodec>> { return NewAutoDecoder(sink); },
        data);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, data);
  }
}

TEST(CompressionTest, EncodingIsDeterministic) {
  const std::string data = TextBytes(12 << 20) + RandomBytes(2 << 20, 3);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto a = EncodeAll(c, std::nullopt, data);
    auto b = Stream([c](ByteSink out) { return NewEncoder(c, std::nullopt, out); }, data);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b) << CompressionName(c);
  }
}

TEST(CompressionTest, GzipHeaderIsGoCompressGzips) {
  auto gz = EncodeAll(Compression::kGzip, std::nullopt, "hello");
  ASSERT_TRUE(gz.ok());
  // ID1 ID2 CM FLG MTIME(4) XFL OS: no name, no time, OS unknown.
  EXPECT_EQ(gz->substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
}

// The default is libdeflate's level 2 with the header of Go's DefaultCompression (XFL 0, as
// for level 2): smaller output than level 1's, larger than level 6's, which stays what it was.
TEST(CompressionTest, GzipDefaultIsLevelTwo) {
  const std::string data = LayerLikeBytes(3 << 20, 31);
  auto def = EncodeAll(Compression::kGzip, std::nullopt, data);
  auto two = EncodeAll(Compression::kGzip, 2, data);
  auto one = EncodeAll(Compression::kGzip, 1, data);
  auto six = EncodeAll(Compression::kGzip, 6, data);
  ASSERT_TRUE(def.ok() && two.ok() && one.ok() && six.ok());
  EXPECT_EQ(*def, *two);
  EXPECT_LT(def->size(), one->size());
  EXPECT_GT(def->size(), six->size());
  EXPECT_EQ(EncodeAll(Compression::kGzip, -1, data).value(), *def);
}

TEST(CompressionTest, LevelsAreChecked) {
  EXPECT_TRUE(EncodeAll(Compression::kGzip, 9, "a").ok());
  EXPECT_TRUE(EncodeAll(Compression::kGzip, -2, "a").ok());
  EXPECT_TRUE(EncodeAll(Compression::kGzip, 0, "a").ok());
  EXPECT_FALSE(EncodeAll(Compression::kGzip, 10, "a").ok());
  EXPECT_TRUE(EncodeAll(Compression::kZstd, 19, "a").ok());
  EXPECT_FALSE(EncodeAll(Compression::kZstd, 23, "a").ok());
  auto best = EncodeAll(Compression::kGzip, 9, TextBytes(1 << 20));
  auto fast = EncodeAll(Compression::kGzip, 1, TextBytes(1 << 20));
  ASSERT_TRUE(best.ok() && fast.ok());
  EXPECT_LT(best->size(), fast->size());
}

TEST(CompressionTest, ConcatenatedMembersAndFramesAreOneStream) {
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto a = EncodeAll(c, std::nullopt, "first ");
    auto b = EncodeAll(c, std::nullopt, "second");
    ASSERT_TRUE(a.ok() && b.ok());
    auto out = DecodeAll(c, *a + *b);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, "first second");
  }
}

TEST(CompressionTest, TruncatedInputIsRefused) {
  const std::string data = RandomBytes(300000, 1);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto enc = EncodeAll(c, std::nullopt, data);
    ASSERT_TRUE(enc.ok());
    for (size_t cut : {size_t{0}, size_t{1}, size_t{3}, enc->size() / 2, enc->size() - 1}) {
      auto out = DecodeAll(c, std::string_view(*enc).substr(0, cut));
      ASSERT_FALSE(out.ok()) << CompressionName(c) << " cut at " << cut;
      EXPECT_EQ(out.error().errnum, EINVAL);
    }
  }
}

TEST(CompressionTest, CorruptInputIsRefused) {
  const std::string data = TextBytes(1 << 20);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto enc = EncodeAll(c, std::nullopt, data);
    ASSERT_TRUE(enc.ok());
    std::string bad = *enc;
    bad[bad.size() / 2] ^= 0x55;
    bad[bad.size() - 6] ^= 0x55;  // the trailer's checksum too
    EXPECT_FALSE(DecodeAll(c, bad).ok()) << CompressionName(c);
    EXPECT_FALSE(DecodeAll(c, *enc + "trailing garbage").ok()) << CompressionName(c);
    EXPECT_FALSE(DecodeAll(c, "not compressed at all").ok()) << CompressionName(c);
  }
}

TEST(CompressionTest, OutputIsBounded) {
  // A bomb: 64 MiB of zeros compress to a few KiB; the bound stops the decoder early.
  const std::string zeros(64 << 20, '\0');
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto enc = EncodeAll(c, std::nullopt, zeros);
    ASSERT_TRUE(enc.ok());
    EXPECT_LT(enc->size(), 1u << 20);
    int64_t delivered = 0;
    auto dec = NewDecoder(
        c,
        [&](const char*, size_t n) -> Status {
          delivered += static_cast<int64_t>(n);
          return Ok();
        },
        4 << 20);
    ASSERT_TRUE(dec.ok());
    Status s = (*dec)->Write(enc->data(), enc->size());
    if (s.ok()) s = (*dec)->Finish();
    ASSERT_FALSE(s.ok()) << CompressionName(c);
    EXPECT_EQ(s.error().errnum, EFBIG);
    EXPECT_LE(delivered, 4 << 20);
    EXPECT_TRUE(DecodeAll(c, *enc, 64 << 20).ok());
  }
  EXPECT_EQ(DecodeAll(Compression::kNone, "12345", 4).error().errnum, EFBIG);
}

TEST(CompressionTest, SinkErrorsStopTheCodec) {
  auto enc = EncodeAll(Compression::kZstd, std::nullopt, TextBytes(4 << 20));
  ASSERT_TRUE(enc.ok());
  auto dec = NewDecoder(Compression::kZstd, [](const char*, size_t) -> Status {
    return MakeError(ENOSPC, "disk full");
  });
  ASSERT_TRUE(dec.ok());
  Status s = (*dec)->Write(enc->data(), enc->size());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, ENOSPC);
}

// The gzip encoder writes a member per 1 MiB of input: zlib's inflate, which stops at the end
// of each member, reads them one after another into the original bytes, and every member
// starts with the header Go writes.
TEST(CompressionTest, ZlibReadsOurGzipMemberByMember) {
  const std::string data = TextBytes((3 << 20) + 12345);
  auto gz = EncodeAll(Compression::kGzip, std::nullopt, data);
  ASSERT_TRUE(gz.ok());
  std::string out(data.size() + 1, '\0');
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(gz->data());
  z.avail_in = static_cast<uInt>(gz->size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int members = 0;
  while (z.avail_in > 0) {
    size_t at = gz->size() - z.avail_in;
    EXPECT_EQ(gz->substr(at, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
    ASSERT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END) << "member " << members;
    ++members;
    if (z.avail_in > 0) {
      ASSERT_EQ(inflateReset(&z), Z_OK);
    }
  }
  size_t produced = out.size() - z.avail_out;
  inflateEnd(&z);
  EXPECT_EQ(members, 4);
  EXPECT_EQ(out.substr(0, produced), data);
}

TEST(CompressionTest, EveryGzipLevelRoundTripsAcrossMembers) {
  const std::string data = TextBytes(2 << 20) + RandomBytes((1 << 20) + 7, 11);
  for (int level : {-2, -1, 0, 1, 6, 9}) {
    auto gz = EncodeAll(Compression::kGzip, level, data);
    ASSERT_TRUE(gz.ok()) << level;
    auto back = Stream([](ByteSink out) { return NewDecoder(Compression::kGzip, out); }, *gz);
    ASSERT_TRUE(back.ok()) << level << ": " << back.error().message;
    EXPECT_EQ(*back, data) << "level " << level;
    if (level == 0) {
      EXPECT_GT(gz->size(), data.size());  // stored
    }
  }
}

// Blocks that do not compress are stored, at no cost in size; a block that is half random and
// half text is still compressed.
TEST(CompressionTest, GzipStoresOnlyWhatDoesNotCompress) {
  const std::string random = RandomBytes(2 << 20, 5);
  auto stored = EncodeAll(Compression::kGzip, std::nullopt, random);
  ASSERT_TRUE(stored.ok());
  EXPECT_LT(stored->size(), random.size() + 1024);
  // Still the header of the level asked for on each of the two members: XFL 0 for the default.
  const std::string header("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  EXPECT_EQ(stored->find(header), 0u);
  EXPECT_NE(stored->find(header, 1), std::string::npos);
  const std::string mixed = RandomBytes(512 << 10, 6) + TextBytes(512 << 10);
  auto compressed = EncodeAll(Compression::kGzip, std::nullopt, mixed);
  ASSERT_TRUE(compressed.ok());
  EXPECT_LT(compressed->size(), mixed.size() * 6 / 10);
  auto back = Stream([](ByteSink out) { return NewDecoder(Compression::kGzip, out); }, *compressed);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, mixed);
}

// A sink error ends the stream with that error, also while workers hold later blocks.
TEST(CompressionTest, GzipEncoderReturnsTheSinksError) {
  int calls = 0;
  auto enc = NewEncoder(Compression::kGzip, std::nullopt, [&calls](const char*, size_t) -> Status {
    if (++calls == 2) return MakeError(ENOSPC, "disk full");
    return Ok();
  });
  ASSERT_TRUE(enc.ok());
  const std::string data = TextBytes(8 << 20);
  Status s = (*enc)->Write(data.data(), data.size());
  if (s.ok()) s = (*enc)->Finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, ENOSPC);
}

// The encoder's output is pinned for every level kind: a deterministic input (several members,
// a stored one, a short last one) compresses to these exact bytes, fed whole or in uneven
// pieces. A change in how blocks are cut, framed or buffered shows here; so does a libdeflate
// that compresses differently (then the pins are updated with the new library).
TEST(CompressionTest, GzipOutputIsPinned) {
  const std::string data = LayerLikeBytes((3 << 20) / 2, 21) + RandomBytes(1 << 20, 22) +
                           TextBytes(1 << 19) + LayerLikeBytes(300001, 23);
  const std::pair<std::optional<int>, const char*> kPins[] = {
      {std::nullopt, "sha256:bfec1f5ce498ee8534bac8147dabd22f301562b3b01d5cd96d953a37b7777a6e"},
      {-2, "sha256:050671dcf921c4a5a4fe3012e7b5e9684bfa673dae0f8dbb4fdde8daf1a6e778"},
      {0, "sha256:52fb9da1af7dd587a914cd7a9c8dee8258c8c3e82098afe52c89102de4085cfa"},
      {1, "sha256:548447580f04e0349d85b9c57dd25fcf1feb4ea3df99ce75224cbe3ed664ad34"},
      {6, "sha256:de40ffbd47cf35fa5e8ab5c9b56aa68d03dd2e5511747881e942d5ce720b0727"},
      {9, "sha256:c400a9c992a20f55fa3cf2173f0bd9c28252bc175c7a19c21e169bfafee21a03"},
  };
  for (const auto& [level, want] : kPins) {
    auto whole = EncodeAll(Compression::kGzip, level, data);
    ASSERT_TRUE(whole.ok());
    auto pieces =
        Stream([level](ByteSink out) { return NewEncoder(Compression::kGzip, level, out); }, data);
    ASSERT_TRUE(pieces.ok());
    const std::string name = level ? std::to_string(*level) : "default";
    EXPECT_EQ(DigestOf(*whole), want) << "level " << name << ", " << whole->size() << " bytes";
    EXPECT_EQ(DigestOf(*pieces), want) << "level " << name << ", in pieces";
  }
}

}  // namespace
}  // namespace regfs
