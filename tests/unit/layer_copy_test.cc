// The layer pipeline of conversions: re-encoding while streaming, verification of the source,
// and what the destination is given (writers named at Commit, nothing kept on failure).
#include "transports/copy/layer_copy.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "transports/util/digest.h"

namespace regfs {
namespace {

class MemorySource final : public ImageSource {
 public:
  std::map<std::string, std::string> blobs;
  std::string Describe() const override { return "memory"; }
  Result<RawManifest> GetManifest(const std::string&) override {
    return MakeError(ENOENT, "no manifest");
  }
  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    const std::string& b = blobs.at(blob.digest);
    for (size_t at = 0; at < b.size(); at += 100000) {
      RETURN_IF_ERROR(sink(b.data() + at, std::min<size_t>(100000, b.size() - at)));
    }
    return Ok();
  }
};

class MemoryDestination final : public ImageDestination {
 public:
  std::map<std::string, std::string> blobs;  // committed, by the digest committed under
  std::vector<BlobInfo> asked;               // what NewBlobWriter() was given
  LayerCompression want = LayerCompression::kPreserve;

  class Writer final : public BlobWriter {
   public:
    explicit Writer(MemoryDestination& d) : d_(d) {}
    Status Write(const char* data, size_t n) override {
      bytes_.append(data, n);
      return Ok();
    }
    Status Commit(const BlobInfo& blob) override {
      if (DigestOf(bytes_) != blob.digest) return MakeError(EIO, "committed under a wrong digest");
      d_.blobs[blob.digest] = bytes_;
      return Ok();
    }

   private:
    MemoryDestination& d_;
    std::string bytes_;
  };

  std::string Describe() const override { return "memory"; }
  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference*) override {
    return blobs.count(blob.digest) > 0;
  }
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    asked.push_back(blob);
    return std::unique_ptr<BlobWriter>(new Writer(*this));
  }
  LayerCompression DesiredLayerCompression() const override { return want; }
  Status PutManifest(const RawManifest&, bool) override { return Ok(); }
  Status Commit() override { return Ok(); }
};

std::string Tar(size_t n) {
  std::mt19937 gen(5);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 7 == 0 ? gen() : 'a');
  return s;
}

BlobInfo Add(MemorySource& src, const std::string& bytes, const std::string& media_type) {
  std::string digest = DigestOf(bytes);
  src.blobs[digest] = bytes;
  return BlobInfo{digest, static_cast<int64_t>(bytes.size()), media_type};
}

constexpr char kOciGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";

LayerEncoding Enc(LayerCompression want, std::optional<Compression> format = std::nullopt) {
  LayerEncoding enc;
  enc.want = want;
  enc.format = format;
  return enc;
}

TEST(LayerCopyTest, RecompressesGzipToZstdWhileStreaming) {
  MemorySource src;
  MemoryDestination dst;
  const std::string tar = Tar(3 << 20);
  BlobInfo blob = Add(src, *EncodeAll(Compression::kGzip, std::nullopt, tar), kOciGzip);
  LayerEncoding enc = Enc(LayerCompression::kCompress, Compression::kZstd);
  auto copied = CopyLayer(src, dst, blob, enc, nullptr);
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_TRUE(copied->reencoded);
  EXPECT_EQ(copied->written.compression, Compression::kZstd);
  ASSERT_EQ(dst.asked.size(), 1u);
  EXPECT_EQ(dst.asked[0].digest, "");  // named at Commit
  EXPECT_EQ(dst.asked[0].size, -1);
  const std::string& out = dst.blobs.at(copied->written.digest);
  EXPECT_EQ(static_cast<int64_t>(out.size()), copied->written.size);
  EXPECT_EQ(*DecodeAll(Compression::kZstd, out), tar);
  // Deterministic: the same again.
  MemoryDestination again;
  EXPECT_EQ(CopyLayer(src, again, blob, enc, nullptr)->written.digest, copied->written.digest);
}

TEST(LayerCopyTest, CompressionIsReadFromTheBytesNotTheMediaType) {
  // An uncompressed layer labelled gzip (as a docker-archive reports them) is compressed.
  MemorySource src;
  MemoryDestination dst;
  const std::string tar = Tar(1 << 20);
  BlobInfo blob = Add(src, tar, kOciGzip);
  auto copied = CopyLayer(src, dst, blob, Enc(LayerCompression::kCompress), nullptr);
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(copied->written.compression, Compression::kGzip);
  EXPECT_EQ(*DecodeAll(Compression::kGzip, dst.blobs.at(copied->written.digest)), tar);
}

TEST(LayerCopyTest, DecompressesForADestinationThatWantsItAndKeepsWhatFits) {
  MemorySource src;
  const std::string tar = Tar(1 << 20);
  BlobInfo gz = Add(src, *EncodeAll(Compression::kGzip, 9, tar), kOciGzip);
  MemoryDestination plain;
  auto out = CopyLayer(src, plain, gz, Enc(LayerCompression::kDecompress), nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->written.digest, DigestOf(tar));
  EXPECT_EQ(out->written.compression, Compression::kNone);
  // gzip kept for a destination that wants compressed layers and no other algorithm asked for.
  MemoryDestination keep;
  auto kept = CopyLayer(src, keep, gz, Enc(LayerCompression::kCompress), nullptr);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(kept->reencoded);
  EXPECT_EQ(kept->written.digest, gz.digest);
  ASSERT_EQ(keep.asked.size(), 1u);
  EXPECT_EQ(keep.asked[0].digest, gz.digest);
}

TEST(LayerCopyTest, CorruptSourcesAreRefusedAndNothingIsKept) {
  MemorySource src;
  const std::string tar = Tar(1 << 20);
  BlobInfo blob = Add(src, *EncodeAll(Compression::kGzip, std::nullopt, tar), kOciGzip);
  LayerEncoding enc = Enc(LayerCompression::kCompress, Compression::kZstd);
  // Bytes that don't match the digest.
  src.blobs[blob.digest][1000] ^= 1;
  MemoryDestination dst;
  auto bad = CopyLayer(src, dst, blob, enc, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(dst.blobs.empty());
  // A truncated gzip stream whose digest is right: the decoder refuses it at the end.
  std::string cut = EncodeAll(Compression::kGzip, std::nullopt, tar)->substr(0, 5000);
  BlobInfo truncated = Add(src, cut, kOciGzip);
  auto refused = CopyLayer(src, dst, truncated, enc, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("truncated"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(dst.blobs.empty());
}

TEST(LayerCopyTest, PreservingDestinationsGetTheBytesAsTheyAre) {
  MemorySource src;
  MemoryDestination dst;
  BlobInfo blob = Add(src, Tar(1000), "application/vnd.oci.image.layer.v1.tar");
  EXPECT_FALSE(MayReencode({}, blob.media_type));
  EXPECT_FALSE(MayReencode(Enc(LayerCompression::kCompress), "application/x-unknown"));
  auto copied = CopyLayer(src, dst, blob, {}, nullptr);
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->written.digest, blob.digest);
}

}  // namespace
}  // namespace regfs
