// Simple signing against a real gpg: keys are made in a GnuPG home of the test's own, so the
// user's keyring is neither read nor changed.
#include "transports/signature/simple_signing.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "tests/unit/testing/shell.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr char kManifest[] = R"({"schemaVersion":2,"mediaType":"x"})";

using testing::Shell;

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

struct Key {
  std::string fingerprint;
  std::string public_key;  // binary export
};

class SimpleSigningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!Shell("command -v gpg")) return;
    const char* old = std::getenv("GNUPGHOME");
    saved_home_ = old ? std::make_unique<std::string>(old) : nullptr;
    home_ = std::make_unique<testing::TempDir>("regfs-gpg-test");
    setenv("GNUPGHOME", home_->path().c_str(), 1);
    plain_ = MakeKey("regfs plain <plain@example.com>", "");
    protected_ = MakeKey("regfs protected <protected@example.com>", "s3cret pass");
    // A key the verifier is not given, from another home.
    other_home_ = std::make_unique<testing::TempDir>("regfs-gpg-test");
    other_ = MakeKey("regfs other <other@example.com>", "", other_home_->path());
  }
  static void TearDownTestSuite() {
    for (auto* h : {&home_, &other_home_}) {
      if (*h) (void)Shell("gpgconf --homedir " + Quoted((*h)->path()) + " --kill all");
    }
    if (saved_home_) {
      setenv("GNUPGHOME", saved_home_->c_str(), 1);
    } else {
      unsetenv("GNUPGHOME");
    }
    home_.reset();
    other_home_.reset();
  }
  void SetUp() override {
    if (plain_.fingerprint.empty()) GTEST_SKIP() << "gpg is not installed";
  }

  static Key MakeKey(const std::string& uid, const std::string& passphrase,
                     const std::string& home = "") {
    std::string gpg = "gpg --batch" + (home.empty() ? "" : " --homedir " + Quoted(home));
    if (!Shell(gpg + " --pinentry-mode loopback --passphrase " + Quoted(passphrase) +
               " --quick-gen-key " + Quoted(uid) + " ed25519 sign never")) {
      ADD_FAILURE() << "gpg --quick-gen-key failed";
      return {};
    }
    Key key;
    auto listing = Shell(gpg + " --with-colons --list-secret-keys " + Quoted(uid));
    size_t fpr = listing ? listing->find("\nfpr:") : std::string::npos;
    if (fpr == std::string::npos) {
      ADD_FAILURE() << "no fingerprint for " << uid;
      return {};
    }
    size_t start = listing->find_first_not_of(':', fpr + 5);
    key.fingerprint = listing->substr(start, listing->find(':', start) - start);
    key.public_key = Shell(gpg + " --export " + key.fingerprint).value_or("");
    EXPECT_FALSE(key.public_key.empty());
    return key;
  }

  // `payload` signed as simple signing signatures are, by gpg itself.
  static std::string GpgSign(const std::string& payload) {
    std::string in = home_->Sub("payload"), out = home_->Sub("payload.gpg");
    EXPECT_TRUE(WriteFileAtomic(in, payload, 0600).ok());
    EXPECT_TRUE(Shell("gpg --batch --yes -u " + plain_.fingerprint + " --output " + Quoted(out) +
                      " --sign " + Quoted(in)));
    return ReadFileBounded(out, 1 << 20).value();
  }

  static inline std::unique_ptr<std::string> saved_home_;
  static inline std::unique_ptr<testing::TempDir> home_, other_home_;
  static inline Key plain_, protected_, other_;
};

TEST_F(SimpleSigningTest, SignedIsVerifiedWithTheKeyring) {
  const std::string digest = DigestOf(kManifest);
  auto blob = SignSimpleSigning(digest, "example.com/ns/repo:v1", plain_.fingerprint, "");
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  EXPECT_EQ(static_cast<unsigned char>((*blob)[0]) & 0x80, 0x80);  // an OpenPGP packet

  auto v = VerifySimpleSigning(*blob, {plain_.public_key});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->claims.manifest_digest, digest);
  EXPECT_EQ(v->claims.docker_reference, "example.com/ns/repo:v1");
  EXPECT_EQ(v->key_fingerprint, plain_.fingerprint);
  EXPECT_TRUE(CheckSignedImage(v->claims, kManifest, "example.com/ns/repo:v1").ok());

  auto user = VerifySimpleSigningWithUserKeyring(*blob, {plain_.fingerprint});
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->key_fingerprint, plain_.fingerprint);
}

TEST_F(SimpleSigningTest, OtherKeysAreRefused) {
  auto blob = SignSimpleSigning(DigestOf(kManifest), "example.com/a", plain_.fingerprint, "");
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto v = VerifySimpleSigning(*blob, {other_.public_key});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, EACCES);
  EXPECT_NE(v.error().message.find("unknown key"), std::string::npos) << v.error().message;

  auto user = VerifySimpleSigningWithUserKeyring(*blob, {protected_.fingerprint});
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.error().errnum, EACCES);
  EXPECT_NE(user.error().message.find("not accepted"), std::string::npos) << user.error().message;
}

TEST_F(SimpleSigningTest, Signer) {
  std::unique_ptr<Signer> signer = NewGpgSigner(plain_.fingerprint, "");
  EXPECT_EQ(signer->Describe(), "GPG key " + plain_.fingerprint);
  auto sig = signer->Sign(DigestOf(kManifest), "example.com/a:v1");
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_EQ(sig->format, Signature::Format::kSimpleSigning);
  auto v = VerifySimpleSigning(sig->simple_signing, {other_.public_key, plain_.public_key});
  ASSERT_TRUE(v.ok()) << v.error().message;
}

TEST_F(SimpleSigningTest, PassphraseProtectedKey) {
  const std::string digest = DigestOf(kManifest);
  auto wrong = SignSimpleSigning(digest, "example.com/a", protected_.fingerprint, "wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().errnum, EACCES) << wrong.error().message;
  EXPECT_FALSE(SignSimpleSigning(digest, "example.com/a", protected_.fingerprint, "a\nb").ok());
  auto blob = SignSimpleSigning(digest, "example.com/a", protected_.fingerprint, "s3cret pass");
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto v = VerifySimpleSigning(*blob, {protected_.public_key});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->key_fingerprint, protected_.fingerprint);
}

TEST_F(SimpleSigningTest, UnknownSecretKey) {
  auto blob = SignSimpleSigning(DigestOf(kManifest), "example.com/a", other_.fingerprint, "");
  ASSERT_FALSE(blob.ok());
  EXPECT_NE(blob.error().message.find(other_.fingerprint), std::string::npos);
}

TEST_F(SimpleSigningTest, NotASignature) {
  for (const std::string& blob :
       {std::string("\x89garbage"), std::string("not openpgp"), std::string()}) {
    auto v = VerifySimpleSigning(blob, {plain_.public_key});
    EXPECT_FALSE(v.ok());
  }
  auto none = VerifySimpleSigning(GpgSign("{}"), {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, EINVAL);
}

// The plaintext is parsed as strictly as containers/image parses it.
TEST_F(SimpleSigningTest, PayloadIsParsedStrictly) {
  const std::string d = DigestOf(kManifest);
  auto payload = [&](const std::string& critical_extra, const std::string& optional,
                     const std::string& top_extra = "") {
    return R"({"critical":{"identity":{"docker-reference":"example.com/a"},)"
           R"("image":{"docker-manifest-digest":")" +
           d + R"("},"type":"atomic container signature")" + critical_extra + R"(},"optional":)" +
           optional + top_extra + "}";
  };
  for (const std::string& good : {
           payload("", "{}"),
           payload("", R"({"creator":"x","timestamp":1700000000,"other":[1]})"),
           payload("", R"({"timestamp":1700000000.0})"),
       }) {
    auto v = VerifySimpleSigning(GpgSign(good), {plain_.public_key});
    ASSERT_TRUE(v.ok()) << good << ": " << v.error().message;
    EXPECT_EQ(v->claims.manifest_digest, d);
    EXPECT_EQ(v->claims.docker_reference, "example.com/a");
  }
  for (const std::string& bad : {
           payload(R"(,"extra":1)", "{}"),
           payload("", "{}", R"(,"extra":1)"),
           payload("", R"({"timestamp":1.5})"),
           payload("", R"({"timestamp":"1"})"),
           payload("", R"({"creator":1})"),
           payload("", "null"),
           payload("", "{}", R"(,"optional":{})"),
           payload("", R"({"creator":"a","creator":"b"})"),
           payload("", "{}") + " x",
           std::string(R"({"critical":{"identity":{"docker-reference":"a"},)"
                       R"("image":{"docker-manifest-digest":"sha256:nothex"},)"
                       R"("type":"atomic container signature"},"optional":{}})"),
           std::string(R"({"critical":{"identity":{"docker-reference":"a"},)"
                       R"("image":{"docker-manifest-digest":")" +
                       d + R"("},"type":"something else"},"optional":{}})"),
           std::string(R"({"critical":{"identity":{},"image":{"docker-manifest-digest":")" + d +
                       R"("},"type":"atomic container signature"},"optional":{}})"),
           std::string(R"({"optional":{}})"),
           std::string("[]"),
           std::string("not json"),
       }) {
    auto v = VerifySimpleSigning(GpgSign(bad), {plain_.public_key});
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.error().errnum, EINVAL) << bad << ": " << v.error().message;
  }
}

TEST(CheckSignedImageTest, DigestAndReference) {
  SignedImage claims{"docker.io/library/busybox:1", DigestOf(kManifest)};
  EXPECT_TRUE(CheckSignedImage(claims, kManifest, "busybox:1").ok());
  EXPECT_TRUE(CheckSignedImage(claims, kManifest, "docker.io/library/busybox:1").ok());
  Status other_manifest = CheckSignedImage(claims, "{}", "busybox:1");
  ASSERT_FALSE(other_manifest.ok());
  EXPECT_EQ(other_manifest.error().errnum, EACCES);
  EXPECT_NE(other_manifest.error().message.find("does not match"), std::string::npos);
  Status other_ref = CheckSignedImage(claims, kManifest, "busybox:2");
  ASSERT_FALSE(other_ref.ok());
  EXPECT_EQ(other_ref.error().errnum, EACCES);
  // No tag is not ":latest", as containers/image compares them.
  SignedImage untagged{"busybox", DigestOf(kManifest)};
  EXPECT_TRUE(CheckSignedImage(untagged, kManifest, "docker.io/library/busybox").ok());
  EXPECT_FALSE(CheckSignedImage(untagged, kManifest, "busybox:latest").ok());
  EXPECT_EQ(CheckSignedImage(claims, kManifest, "Not A Reference").error().errnum, EINVAL);
}

}  // namespace
}  // namespace regfs
