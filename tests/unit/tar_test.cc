#include <fcntl.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/testing/temp_dir.h"
#include "transports/archive/tar_archive.h"
#include "transports/archive/tar_reader.h"
#include "transports/archive/tar_writer.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using testing::TempDir;

class StringInput final : public TarInput {
 public:
  explicit StringInput(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// A tar written with TarWriter into a string.
struct TarBuilder {
  std::string out;
  TarWriter w{[this](const char* d, size_t n) {
    out.append(d, n);
    return Ok();
  }};
};

// A raw header block, checksummed, for what TarWriter does not write.
std::string Block(const std::string& name, char type, const std::string& size_field,
                  const char* magic =
                      "ustar\0"
                      "00") {
  std::string b(512, '\0');
  std::memcpy(&b[0], name.data(), std::min<size_t>(name.size(), 100));
  std::memcpy(&b[100], "0000644", 7);
  std::memcpy(&b[108], "0000000", 7);
  std::memcpy(&b[116], "0000000", 7);
  std::memcpy(&b[124], size_field.data(), std::min<size_t>(size_field.size(), 12));
  std::memcpy(&b[136], "00000000000", 11);
  b[156] = type;
  std::memcpy(&b[257], magic, 8);
  std::memset(&b[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  char chk[8];
  snprintf(chk, sizeof chk, "%06o", sum);
  std::memcpy(&b[148], chk, 7);
  return b;
}

std::string Octal(int64_t n) {
  char buf[13];
  snprintf(buf, sizeof buf, "%011llo", static_cast<long long>(n));
  return buf;
}

std::string Padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string End() { return std::string(1024, '\0'); }

struct Read {
  std::vector<TarEntry> entries;
  std::vector<std::string> data;
};

Result<Read> ReadAll(const std::string& tar, TarLimits limits = {}) {
  StringInput in(tar);
  TarReader r(in, limits);
  Read out;
  while (true) {
    ASSIGN_OR_RETURN(std::optional<TarEntry> e, r.Next());
    if (!e) return out;
    std::string data;
    char buf[100];
    while (true) {
      ASSIGN_OR_RETURN(size_t n, r.ReadData(buf, sizeof buf));
      if (n == 0) break;
      data.append(buf, n);
    }
    out.entries.push_back(std::move(*e));
    out.data.push_back(std::move(data));
  }
}

TEST(TarWriterTest, WritesWhatGoArchiveTarWritesForAFile) {
  TarBuilder t;
  ASSERT_TRUE(t.w.WriteFile("a.json", "{}").ok());
  ASSERT_TRUE(t.w.Finish().ok());
  ASSERT_EQ(t.out.size(), 512u * 4);
  const std::string& h = t.out;
  EXPECT_EQ(h.substr(0, 7), std::string("a.json\0", 7));
  EXPECT_EQ(h.substr(100, 8), std::string("0000444\0", 8));
  EXPECT_EQ(h.substr(124, 12), std::string("00000000002\0", 12));
  EXPECT_EQ(h.substr(136, 12), std::string("00000000000\0", 12));
  EXPECT_EQ(h.substr(257, 8), std::string("ustar\0"
                                          "00",
                                          8));
  EXPECT_EQ(h[155], ' ');
  EXPECT_EQ(h[154], '\0');
  EXPECT_EQ(h.substr(512, 2), "{}");
  EXPECT_EQ(h.substr(1024), std::string(1024, '\0'));
}

// Found by fuzzing (tests/fuzz/corpus/docker_archive/empty): the header of a name without a
// ustar prefix (and a file's empty link name) passed memcpy an empty view's null pointer,
// undefined behaviour that UBSan reports. Run under tools/test --sanitize to see it fail.
TEST(TarWriterTest, AnEmptyNameAndLinkNameLeaveTheirFieldsZero) {
  TarBuilder t;
  ASSERT_TRUE(t.w.WriteFile("", "").ok());
  ASSERT_TRUE(t.w.Finish().ok());
  ASSERT_EQ(t.out.size(), 512u * 3);
  EXPECT_EQ(t.out.substr(0, 100), std::string(100, '\0'));    // name
  EXPECT_EQ(t.out.substr(157, 100), std::string(100, '\0'));  // linkname
  EXPECT_EQ(t.out.substr(345, 155), std::string(155, '\0'));  // prefix
}

TEST(TarWriterTest, RefusesMoreOrLessDataThanTheHeaderSaid) {
  TarBuilder t;
  ASSERT_TRUE(t.w.WriteHeader(TarHeader{"f", "", '0', 0444, 3}).ok());
  EXPECT_FALSE(t.w.WriteData("abcd", 4).ok());
  ASSERT_TRUE(t.w.WriteData("ab", 2).ok());
  EXPECT_FALSE(t.w.Finish().ok());
}

TEST(TarRoundTripTest, FilesSymlinksDirectoriesAndLongNamesReadBackWithTheirOffsets) {
  TarBuilder t;
  const std::string split_name = std::string(120, 'd') + "/file";  // ustar prefix + name
  const std::string pax_name = std::string(150, 'x');              // no '/': a PAX header
  ASSERT_TRUE(t.w.WriteHeader(TarHeader{"blobs/", "", '5', 0755, 0}).ok());
  ASSERT_TRUE(t.w.WriteFile("blobs/one", std::string(1000, 'a')).ok());
  ASSERT_TRUE(t.w.WriteSymlink("link", "../blobs/one").ok());
  ASSERT_TRUE(t.w.WriteFile(split_name, "s").ok());
  ASSERT_TRUE(t.w.WriteFile(pax_name, "p").ok());
  ASSERT_TRUE(t.w.Finish().ok());
  auto r = ReadAll(t.out);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->entries.size(), 5u);
  EXPECT_EQ(r->entries[0].type, TarEntry::kDirectory);
  EXPECT_EQ(r->entries[1].name, "blobs/one");
  EXPECT_EQ(r->entries[1].size, 1000);
  EXPECT_EQ(r->data[1], std::string(1000, 'a'));
  EXPECT_EQ(t.out.substr(r->entries[1].data_offset, 1000), std::string(1000, 'a'));
  EXPECT_EQ(r->entries[2].type, TarEntry::kSymlink);
  EXPECT_EQ(r->entries[2].linkname, "../blobs/one");
  EXPECT_EQ(r->entries[3].name, split_name);
  EXPECT_EQ(r->entries[4].name, pax_name);
  EXPECT_EQ(r->data[4], "p");
  EXPECT_EQ(t.out.substr(r->entries[4].data_offset, 1), "p");
}

TEST(TarReaderTest, AppliesPaxPathLinkpathAndSize) {
  std::string pax =
      "29 path=a/very/long/pax/name\n"
      "19 linkpath=target\n"
      "10 size=5\n";
  std::string tar = Block("PaxHeaders/x", 'x', Octal(pax.size())) + Padded(pax) +
                    Block("short", '0', Octal(999)) + Padded("hello") + End();
  auto r = ReadAll(tar);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].name, "a/very/long/pax/name");
  EXPECT_EQ(r->entries[0].linkname, "target");
  EXPECT_EQ(r->entries[0].size, 5);
  EXPECT_EQ(r->data[0], "hello");
  EXPECT_EQ(r->entries[0].pax.at("path"), "a/very/long/pax/name");
}

TEST(TarReaderTest, AppliesGnuLongNamesAndLinks) {
  std::string name(300, 'n'), link(200, 'l');
  std::string tar = Block("././@LongLink", 'L', Octal(name.size() + 1)) + Padded(name + '\0') +
                    Block("././@LongLink", 'K', Octal(link.size())) + Padded(link) +
                    Block("trunc", '2', Octal(0), "ustar  \0") + End();
  auto r = ReadAll(tar);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0].name, name);
  EXPECT_EQ(r->entries[0].linkname, link);
}

TEST(TarReaderTest, ReadsBase256Sizes) {
  std::string size(12, '\0');
  size[0] = static_cast<char>(0x80);
  size[11] = 3;
  auto r = ReadAll(Block("f", '0', size) + Padded("abc") + End());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->data[0], "abc");
}

TEST(TarReaderTest, RefusesHugeSizesUnderTheLimit) {
  std::string size(12, '\0');
  size[0] = static_cast<char>(0x80);
  size[5] = 1;  // 2^48 bytes
  auto r = ReadAll(Block("f", '0', size) + End());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EFBIG);
  EXPECT_NE(r.error().message.find("\"f\""), std::string::npos) << r.error().message;
  std::string negative(12, '\xff');
  EXPECT_FALSE(ReadAll(Block("f", '0', negative) + End()).ok());
}

TEST(TarReaderTest, RefusesABadChecksum) {
  std::string tar = Block("f", '0', Octal(1)) + Padded("x") + End();
  tar[0] = 'g';
  auto r = ReadAll(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos) << r.error().message;
}

TEST(TarReaderTest, RefusesNamesThatClimbOutOrAreAbsolute) {
  for (std::string bad : {"../etc/passwd", "a/../../b", "/etc/passwd", "..", "a/.."}) {
    auto r = ReadAll(Block(bad, '0', Octal(0)) + End());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL);
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  // Through a PAX path too.
  std::string pax = "20 path=../../evil\n";
  EXPECT_FALSE(
      ReadAll(Block("x", 'x', Octal(pax.size())) + Padded(pax) + Block("ok", '0', Octal(0)) + End())
          .ok());
  for (std::string fine : {"a/..b", "./a", "a..", ".../x"}) {
    EXPECT_TRUE(ReadAll(Block(fine, '0', Octal(0)) + End()).ok()) << fine;
  }
}

TEST(TarReaderTest, RefusesTruncatedArchives) {
  std::string tar = Block("f", '0', Octal(1000)) + Padded(std::string(1000, 'z')) + End();
  for (size_t cut : {size_t{100}, size_t{700}, size_t{1400}}) {
    auto r = ReadAll(tar.substr(0, cut));
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  }
  // Ending at a block boundary after a whole entry is a complete archive, as Go reads it.
  EXPECT_TRUE(ReadAll(tar.substr(0, 1536)).ok());
}

TEST(TarReaderTest, BoundsEntriesNamesAndExtendedHeaders) {
  TarLimits limits;
  limits.max_entries = 2;
  std::string three =
      Block("a", '0', Octal(0)) + Block("b", '0', Octal(0)) + Block("c", '0', Octal(0)) + End();
  auto r = ReadAll(three, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EFBIG);
  limits = TarLimits{};
  limits.max_name = 50;
  std::string name(60, 'n');
  EXPECT_FALSE(ReadAll(Block("L", 'L', Octal(name.size())) + Padded(name) +
                           Block("x", '0', Octal(0)) + End(),
                       limits)
                   .ok());
  limits = TarLimits{};
  limits.max_extended_header = 100;
  EXPECT_FALSE(
      ReadAll(Block("x", 'x', Octal(5000)) + Padded(std::string(5000, 'a')) + End(), limits).ok());
  EXPECT_FALSE(ReadAll(Block("x", 'x', Octal(12)) + Padded("99 path=abc\n") +
                       Block("f", '0', Octal(0)) + End())
                   .ok());
}

TEST(CleanTarPathTest, CleansAsGoPathClean) {
  EXPECT_EQ(CleanTarPath("./a//b/"), "a/b");
  EXPECT_EQ(CleanTarPath("a/./b/../c"), "a/c");
  EXPECT_EQ(CleanTarPath(""), ".");
  EXPECT_EQ(CleanTarPath("../x"), "../x");
  EXPECT_EQ(CleanTarPath("/../x"), "/x");
}

std::string Gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Result<std::shared_ptr<const TarArchive>> OpenArchive(const TempDir& tmp,
                                                      const std::string& bytes) {
  std::string path = tmp.Sub("a.tar");
  RETURN_IF_ERROR(WriteFileAtomic(path, bytes, 0644));
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return TarArchive::Open(std::move(fd), "test.tar");
}

std::string ReadMember(const TarArchive& a, const std::string& name) {
  auto m = a.FindFile(name);
  if (!m.ok()) return "ERR " + m.error().message;
  auto in = a.OpenData(**m);
  if (!in.ok()) return "ERR " + in.error().message;
  std::string out;
  char buf[7];
  while (true) {
    auto n = (*in)->Read(buf, sizeof buf);
    if (!n.ok()) return "ERR " + n.error().message;
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

std::string SampleArchive() {
  TarBuilder t;
  EXPECT_TRUE(t.w.WriteFile("manifest.json", "[1]").ok());
  EXPECT_TRUE(t.w.WriteFile("layer.tar", std::string(5000, 'L')).ok());
  EXPECT_TRUE(t.w.WriteSymlink("dir/layer.tar", "../layer.tar").ok());
  EXPECT_TRUE(t.w.WriteSymlink("dir/twice", "layer.tar").ok());
  EXPECT_TRUE(t.w.WriteSymlink("dir/out", "../../etc/passwd").ok());
  EXPECT_TRUE(t.w.Finish().ok());
  return t.out;
}

TEST(TarArchiveTest, ReadsMembersInPlaceAndFollowsOneSymlinkInsideTheArchive) {
  TempDir tmp;
  auto a = OpenArchive(tmp, SampleArchive());
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)->compression(), Compression::kNone);
  EXPECT_EQ(ReadMember(**a, "./manifest.json"), "[1]");
  EXPECT_EQ(ReadMember(**a, "dir/layer.tar"), std::string(5000, 'L'));
  // A link to a link is not followed further; a link out of the archive finds nothing.
  EXPECT_NE(ReadMember(**a, "dir/twice").find("not a regular file"), std::string::npos);
  EXPECT_NE(ReadMember(**a, "dir/out").find("has no file"), std::string::npos);
  EXPECT_NE(ReadMember(**a, "missing").find("has no file \"missing\""), std::string::npos);
  auto big = (*a)->ReadFile("layer.tar", 100);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().errnum, EFBIG);
}

TEST(TarArchiveTest, ReadsAGzipCompressedArchiveInStreamingPasses) {
  TempDir tmp;
  auto a = OpenArchive(tmp, Gzip(SampleArchive()));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)->compression(), Compression::kGzip);
  EXPECT_EQ(ReadMember(**a, "manifest.json"), "[1]");
  EXPECT_EQ(ReadMember(**a, "dir/layer.tar"), std::string(5000, 'L'));
  auto kept = (*a)->ReadFile("manifest.json", 10);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, "[1]");
}

TEST(TarArchiveTest, RefusesATruncatedCompressedArchive) {
  TempDir tmp;
  std::string gz = Gzip(SampleArchive());
  auto a = OpenArchive(tmp, gz.substr(0, gz.size() / 2));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("test.tar"), std::string::npos) << a.error().message;
}

}  // namespace
}  // namespace regfs
