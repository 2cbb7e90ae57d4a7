#include "transports/types/signature.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace regfs {
namespace {

std::string ReadFixture(const std::string& rel) {
  std::ifstream in(std::string(REGFS_FIXTURES_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every sigstore signature-N made by cosign or skopeo parses and encodes back byte for byte:
// what regfs writes into dir: is what skopeo writes.
TEST(SignatureBlob, FixturesRoundTripByteForByte) {
  int checked = 0;
  for (const auto& dir :
       std::filesystem::directory_iterator(std::string(REGFS_FIXTURES_DIR) + "/sigstore")) {
    if (!dir.is_directory() || !dir.path().filename().string().starts_with("dir-img-")) continue;
    for (int n = 1;; ++n) {
      std::string rel =
          "sigstore/" + dir.path().filename().string() + "/signature-" + std::to_string(n);
      if (!std::filesystem::exists(std::string(REGFS_FIXTURES_DIR) + "/" + rel)) break;
      std::string blob = ReadFixture(rel);
      auto sig = SignatureFromBlob(blob);
      ASSERT_TRUE(sig.ok()) << rel << ": " << sig.error().message;
      // A few were edited by hand and end in a newline, which JSON parsing ignores.
      if (blob.ends_with('\n')) blob.pop_back();
      EXPECT_EQ(SignatureBlob(*sig), blob) << rel;
      ++checked;
    }
  }
  EXPECT_GE(checked, 10);
}

TEST(SignatureBlob, SigstoreFieldsAndGoEscaping) {
  Signature sig;
  sig.mime_type = "a<b>&c";
  sig.payload = std::string("\x00\xff payload", 10);
  sig.annotations = {{"z", "\"q\"\n\u2028"}, {"a", "1"}};
  std::string blob = SignatureBlob(sig);
  EXPECT_EQ(blob, std::string("\0sigstore-json\n", 15) +
                      R"({"mimeType":"a\u003cb\u003e\u0026c","payload":"AP8gcGF5bG9hZA==",)"
                      R"("annotations":{"a":"1","z":"\"q\"\n\u2028"}})");
  auto back = SignatureFromBlob(blob);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, sig);
}

TEST(SignatureBlob, SimpleSigningIsTheBareMessage) {
  Signature sig;
  sig.format = Signature::Format::kSimpleSigning;
  sig.simple_signing = "\xa3\x01\x02gpg";
  EXPECT_EQ(SignatureBlob(sig), sig.simple_signing);
  auto back = SignatureFromBlob(sig.simple_signing);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->format, Signature::Format::kSimpleSigning);
  auto prefixed = SignatureFromBlob(std::string("\0simple-signing\n\xa3x", 18));
  ASSERT_TRUE(prefixed.ok());
  EXPECT_EQ(prefixed->simple_signing, "\xa3x");
}

TEST(SignatureBlob, RefusesWhatIsNotASignature) {
  EXPECT_EQ(SignatureFromBlob("").error().errnum, EINVAL);
  EXPECT_EQ(SignatureFromBlob("hello").error().errnum, EINVAL);
  EXPECT_EQ(SignatureFromBlob(std::string("\0other\n{}", 9)).error().errnum, EINVAL);
  EXPECT_EQ(SignatureFromBlob(std::string("\0sigstore-json\n[", 16)).error().errnum, EINVAL);
  EXPECT_EQ(
      SignatureFromBlob(std::string("\0sigstore-json\n{\"payload\":\"!!\"}", 32)).error().errnum,
      EINVAL);
  EXPECT_EQ(SignatureFromBlob(std::string(kMaxSignatureSize + 1, '\xa3')).error().errnum, EFBIG);
}

}  // namespace
}  // namespace regfs
