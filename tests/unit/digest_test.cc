#include "transports/util/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace regfs {
namespace {

constexpr char kEmptyDigest[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcDigest[] =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(DigestOf(""), kEmptyDigest);
  EXPECT_EQ(DigestOf("abc"), kAbcDigest);
  EXPECT_EQ(DigestOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(DigestTest, Sha256WithNoInputIsTheEmptyDigest) {
  Sha256 h;
  EXPECT_EQ(h.Finish(), kEmptyDigest);
}

TEST(DigestTest, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>((i * 131) % 256));
  const std::string expected = DigestOf(data);

  // Byte by byte, in uneven chunks, and with empty updates in between.
  Sha256 bytewise;
  for (char c : data) bytewise.Update(&c, 1);
  EXPECT_EQ(bytewise.Finish(), expected);

  Sha256 chunked;
  size_t pos = 0;
  for (size_t step = 1; pos < data.size(); step = step * 3 + 1) {
    size_t n = std::min(step, data.size() - pos);
    chunked.Update(std::string_view(data).substr(pos, n));
    chunked.Update(data.data() + pos, 0);
    pos += n;
  }
  EXPECT_EQ(chunked.Finish(), expected);

  Sha256 split;
  split.Update("a");
  split.Update("bc");
  EXPECT_EQ(split.Finish(), kAbcDigest);
}

TEST(DigestTest, DigestHandlesEmbeddedNulBytes) {
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(DigestOf(with_nul),
            "sha256:59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}

TEST(DigestTest, DigestHexStripsThePrefix) {
  EXPECT_EQ(DigestHex(kAbcDigest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, IsSha256DigestAcceptsCanonicalDigests) {
  EXPECT_TRUE(IsSha256Digest(kEmptyDigest));
  EXPECT_TRUE(IsSha256Digest(kAbcDigest));
  EXPECT_TRUE(IsSha256Digest("sha256:" + std::string(64, '0')));
  EXPECT_TRUE(IsSha256Digest("sha256:" + std::string(64, 'f')));
}

TEST(DigestTest, IsSha256DigestRejectsMalformedDigests) {
  const std::string hex = std::string(DigestHex(kAbcDigest));
  EXPECT_FALSE(IsSha256Digest(""));
  EXPECT_FALSE(IsSha256Digest("sha256:"));
  EXPECT_FALSE(IsSha256Digest(hex));                               // no algorithm
  EXPECT_FALSE(IsSha256Digest("sha256:" + hex.substr(1)));         // 63 digits
  EXPECT_FALSE(IsSha256Digest("sha256:" + hex + "0"));             // 65 digits
  EXPECT_FALSE(IsSha256Digest("sha256:" + std::string(64, 'g')));  // not hex
  EXPECT_FALSE(IsSha256Digest("sha256:" + std::string(64, 'A')));  // uppercase hex
  EXPECT_FALSE(IsSha256Digest("SHA256:" + hex));                   // uppercase algorithm
  EXPECT_FALSE(IsSha256Digest("sha256-" + hex));
  EXPECT_FALSE(IsSha256Digest("sha256:" + hex + "\n"));
  EXPECT_FALSE(IsSha256Digest(" sha256:" + hex.substr(1)));
  EXPECT_FALSE(IsSha256Digest("sha512:" + hex));
  std::string with_nul = "sha256:" + hex;
  with_nul[20] = '\0';
  EXPECT_FALSE(IsSha256Digest(with_nul));
}

TEST(DigestTest, ValidateDigestAcceptsSha256) { EXPECT_TRUE(ValidateDigest(kAbcDigest).ok()); }

TEST(DigestTest, ValidateDigestRefusesOthersWithEinval) {
  const std::string sha512 = "sha512:" + std::string(128, 'a');
  for (const std::string& bad :
       {std::string(), std::string("sha256:abc"), sha512,
        std::string("sha256:") + std::string(64, 'G'), std::string("not a digest")}) {
    Status s = ValidateDigest(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().errnum, EINVAL) << bad;
    EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace regfs
