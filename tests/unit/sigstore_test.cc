#include "transports/signature/sigstore.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "transports/signature/sigstore_key.h"
#include "transports/util/base64.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

std::string ReadFixture(const std::string& rel) {
  std::ifstream in(std::string(REGFS_FIXTURES_DIR) + "/sigstore/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Signature FixtureSignature(const std::string& rel) {
  auto sig = SignatureFromBlob(ReadFixture(rel));
  EXPECT_TRUE(sig.ok()) << rel << ": " << sig.error().message;
  return sig.ok() ? *sig : Signature{};
}

EvpPkeyPtr FixtureKey(const std::string& rel) {
  auto key = LoadPublicKeyPem(ReadFixture(rel));
  EXPECT_TRUE(key.ok()) << rel << ": " << key.error().message;
  return key.ok() ? std::move(*key) : nullptr;
}

EvpPkeyPtr GenerateKey(const char* type, const char* param = nullptr) {
  EVP_PKEY* key = nullptr;
  if (std::string(type) == "EC") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
  } else if (std::string(type) == "RSA") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(std::stoul(param)));
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  return EvpPkeyPtr(key);
}

std::string PublicPem(EVP_PKEY* key) {
  auto pem = PublicKeyPem(key);
  EXPECT_TRUE(pem.ok()) << pem.error().message;
  return pem.ok() ? *pem : std::string();
}

// A raw signature of `data` by `key`: SHA-256 for ECDSA and RSA (PKCS#1 v1.5), none for
// Ed25519.
std::string RawSign(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const EVP_MD* md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, md, nullptr, key), 1);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, in, data.size()), 1);
  std::string out(len, '\0');
  EXPECT_EQ(
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, in, data.size()), 1);
  out.resize(len);
  EVP_MD_CTX_free(ctx);
  return out;
}

constexpr char kValidManifestDigest[] =
    "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
constexpr char kValidPayloadDigest[] =
    "sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75";
constexpr char kTagPayloadDigest[] =
    "sha256:f648c1e72f762ca042859212eb0c3adfd3d9237732d14a800e39c01ae0d1d38f";

// --- The fixtures made by cosign and skopeo (tests/fixtures/sigstore/README.md). ---

struct FixtureCase {
  const char* dir;
  const char* key;
  const char* reference;
};

TEST(SigstoreFixtures, ValidSignaturesVerifyAndClaimTheManifest) {
  const FixtureCase cases[] = {
      {"dir-img-cosign-valid", "cosign.pub", "192.168.64.2:5000/cosign-signed-single-sample"},
      {"dir-img-cosign-valid-2", "cosign.pub", "192.168.64.2:5000/cosign-signed-single-sample"},
      {"dir-img-cosign-valid-with-tag", "cosign.pub", "192.168.64.2:5000/skopeo-signed:tag"},
      {"dir-img-cosign-key-rekor-valid", "cosign2.pub", "192.168.64.2:5000/cosign-signed/key-1"},
  };
  for (const auto& c : cases) {
    EvpPkeyPtr key = FixtureKey(c.key);
    std::string manifest_digest = DigestOf(ReadFixture(std::string(c.dir) + "/manifest.json"));
    int n = 0;
    for (;; ++n) {
      std::string rel = std::string(c.dir) + "/signature-" + std::to_string(n + 1);
      if (!std::filesystem::exists(std::string(REGFS_FIXTURES_DIR) + "/sigstore/" + rel)) break;
      auto v = VerifySigstore(FixtureSignature(rel), {key.get()});
      ASSERT_TRUE(v.ok()) << rel << ": " << v.error().message;
      EXPECT_EQ(v->key_index, 0u);
      EXPECT_EQ(v->claims.manifest_digest, manifest_digest) << rel;
      EXPECT_EQ(v->claims.docker_reference, c.reference) << rel;
    }
    EXPECT_EQ(n, std::string(c.dir) == "dir-img-cosign-valid-2" ? 2 : 1) << c.dir;
  }
}

TEST(SigstoreFixtures, SkopeoPayloadCarriesCreatorAndTimestamp) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  auto v =
      VerifySigstore(FixtureSignature("dir-img-cosign-valid-with-tag/signature-1"), {key.get()});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->payload.creator, "containers/image 5.21.2-dev");
  EXPECT_EQ(v->payload.timestamp, 1657296609);
  // cosign writes "optional": null.
  auto cosign = VerifySigstore(FixtureSignature("dir-img-cosign-valid/signature-1"), {key.get()});
  ASSERT_TRUE(cosign.ok());
  EXPECT_FALSE(cosign->payload.creator.has_value());
  EXPECT_FALSE(cosign->payload.timestamp.has_value());
}

TEST(SigstoreFixtures, WrongKeyDoesNotVerify) {
  EvpPkeyPtr cosign2 = FixtureKey("cosign2.pub");
  auto v = VerifySigstore(FixtureSignature("dir-img-cosign-valid/signature-1"), {cosign2.get()});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, EACCES);
  EXPECT_NE(v.error().message.find("does not verify with any of 1 key"), std::string::npos)
      << v.error().message;
  // With both keys, the second one verifies it.
  EvpPkeyPtr cosign = FixtureKey("cosign.pub");
  auto both = VerifySigstore(FixtureSignature("dir-img-cosign-valid/signature-1"),
                             {cosign2.get(), cosign.get()});
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->key_index, 1u);
}

TEST(SigstoreFixtures, ModifiedManifestAndDigestErrorVerifyButClaimAnotherDigest) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  for (const char* dir :
       {"dir-img-cosign-modified-manifest", "dir-img-cosign-manifest-digest-error"}) {
    auto v = VerifySigstore(FixtureSignature(std::string(dir) + "/signature-1"), {key.get()});
    ASSERT_TRUE(v.ok()) << dir << ": " << v.error().message;
    // The signature is good; the policy rejects it because it covers another manifest.
    EXPECT_EQ(v->claims.manifest_digest, kValidManifestDigest);
    EXPECT_NE(v->claims.manifest_digest, DigestOf(ReadFixture(std::string(dir) + "/manifest.json")))
        << dir;
  }
}

TEST(SigstoreFixtures, MixedHasOneUnknownKeyAndOneValid) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  auto first = VerifySigstore(FixtureSignature("dir-img-cosign-mixed/signature-1"), {key.get()});
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().errnum, EACCES);
  auto second = VerifySigstore(FixtureSignature("dir-img-cosign-mixed/signature-2"), {key.get()});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->claims.manifest_digest,
            DigestOf(ReadFixture("dir-img-cosign-mixed/manifest.json")));
}

TEST(SigstoreFixtures, UnknownKeySignatureFails) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  auto v = VerifySigstore(FixtureSignature("unknown-cosign-key.signature"), {key.get()});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, EACCES);
  EXPECT_NE(v.error().message.find("does not verify"), std::string::npos) << v.error().message;
}

TEST(SigstoreFixtures, KeylessSignaturesDoNotVerifyWithKeys) {
  EvpPkeyPtr cosign = FixtureKey("cosign.pub");
  EvpPkeyPtr cosign2 = FixtureKey("cosign2.pub");
  for (const char* rel :
       {"dir-img-cosign-fulcio-rekor-valid/signature-1", "dir-img-cosign-pki-valid/signature-1"}) {
    auto v = VerifySigstore(FixtureSignature(rel), {cosign.get(), cosign2.get()});
    ASSERT_FALSE(v.ok()) << rel;
    EXPECT_NE(v.error().message.find("does not verify with any of 2 keys"), std::string::npos)
        << v.error().message;
  }
}

TEST(SigstoreFixtures, OtherAttachmentIsNotASignature) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  auto v =
      VerifySigstore(FixtureSignature("dir-img-cosign-other-attachment/signature-1"), {key.get()});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, EINVAL);
  EXPECT_NE(v.error().message.find("text/plain"), std::string::npos) << v.error().message;
}

TEST(SigstoreFixtures, RsaKeyLoadsButDoesNotVerify) {
  EvpPkeyPtr rsa = FixtureKey("some-rsa-key.pub");
  ASSERT_NE(rsa, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(rsa.get()), EVP_PKEY_RSA);
  auto v = VerifySigstore(FixtureSignature("dir-img-cosign-valid/signature-1"), {rsa.get()});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, EACCES);
  EXPECT_NE(v.error().message.find("RSA-"), std::string::npos) << v.error().message;
}

// --- Public keys. ---

TEST(SigstorePublicKey, LoadsEcdsaRsaAndEd25519) {
  EvpPkeyPtr keys[] = {GenerateKey("EC", "P-256"), GenerateKey("EC", "P-384"),
                       GenerateKey("EC", "P-521"), GenerateKey("RSA", "2048"),
                       GenerateKey("ED25519")};
  for (auto& key : keys) {
    ASSERT_NE(key, nullptr);
    auto loaded = LoadPublicKeyPem(PublicPem(key.get()));
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(EVP_PKEY_eq(loaded->get(), key.get()), 1);
  }
}

TEST(SigstorePublicKey, RejectsWhatCosignRejects) {
  auto garbage = LoadPublicKeyPem("not a key");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().errnum, EINVAL);
  // A private key file is not a public key.
  auto priv = LoadPublicKeyPem(ReadFixture("keys/cosign-sigstore-type.key"));
  ASSERT_FALSE(priv.ok());
  EXPECT_EQ(priv.error().errnum, EINVAL);
  // Non-NIST curves and small RSA keys.
  EvpPkeyPtr k256 = GenerateKey("EC", "secp256k1");
  ASSERT_NE(k256, nullptr);
  auto curve = LoadPublicKeyPem(PublicPem(k256.get()));
  ASSERT_FALSE(curve.ok());
  EXPECT_EQ(curve.error().errnum, EINVAL);
  EXPECT_NE(curve.error().message.find("secp256k1"), std::string::npos) << curve.error().message;
  EvpPkeyPtr small = GenerateKey("RSA", "1024");
  ASSERT_NE(small, nullptr);
  auto rsa = LoadPublicKeyPem(PublicPem(small.get()));
  ASSERT_FALSE(rsa.ok());
  EXPECT_EQ(rsa.error().errnum, EINVAL);
  // The fixture public keys load.
  EXPECT_TRUE(LoadPublicKeyPem(ReadFixture("keys/cosign-sigstore-type.pub")).ok());
}

// --- Signing. ---

TEST(SigstoreSign, PayloadIsWhatContainersImageWrites) {
  SigstorePayload p{"example.com/ns/repo:tag", kValidManifestDigest, "regfs", 1700000000};
  auto json = SigstorePayloadJson(p);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(
      *json,
      R"({"critical":{"identity":{"docker-reference":"example.com/ns/repo:tag"},)"
      R"("image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"},)"
      R"("type":"cosign container image signature"},)"
      R"("optional":{"creator":"regfs","timestamp":1700000000}})");
  // Without the optional fields: an empty object, as Go marshals an empty map.
  SigstorePayload bare{"a<b", kValidManifestDigest, std::nullopt, std::nullopt};
  auto bare_json = SigstorePayloadJson(bare);
  ASSERT_TRUE(bare_json.ok());
  EXPECT_TRUE(bare_json->ends_with(R"("optional":{}})")) << *bare_json;
  EXPECT_NE(bare_json->find(R"("a\u003cb")"), std::string::npos) << *bare_json;
  // Parsing gives back what was written.
  auto back = ParseSigstorePayload(*json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, p);
  EXPECT_FALSE(SigstorePayloadJson({"", kValidManifestDigest, {}, {}}).ok());
}

TEST(SigstoreSign, SignThenVerifyRoundTrip) {
  auto key = GenerateSigstoreKey();
  ASSERT_TRUE(key.ok());
  auto pub = LoadPublicKeyPem(PublicPem(key->get()));
  ASSERT_TRUE(pub.ok());
  auto sig = SignSigstore(key->get(), kValidManifestDigest, "registry.example/repo:v1");
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_EQ(sig->format, Signature::Format::kSigstore);
  EXPECT_EQ(sig->mime_type, kSigstoreSignatureMimeType);
  ASSERT_EQ(sig->annotations.size(), 1u);
  ASSERT_TRUE(sig->annotations.contains(kSigstoreSignatureAnnotation));
  EXPECT_TRUE(Base64Decode(sig->annotations.at(kSigstoreSignatureAnnotation)).ok());
  auto v = VerifySigstore(*sig, {pub->get()});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->claims.manifest_digest, kValidManifestDigest);
  EXPECT_EQ(v->claims.docker_reference, "registry.example/repo:v1");
  EXPECT_EQ(v->payload.creator, kSigstoreCreator);
  ASSERT_TRUE(v->payload.timestamp.has_value());
  EXPECT_GT(*v->payload.timestamp, 1600000000);
  // Through the signature-N blob format and back.
  auto blob = SignatureFromBlob(SignatureBlob(*sig));
  ASSERT_TRUE(blob.ok());
  EXPECT_TRUE(VerifySigstore(*blob, {pub->get()}).ok());
  // A Signer does the same.
  auto signer = NewSigstoreSigner(std::move(*key), "sigstore key test.key");
  EXPECT_EQ(signer->Describe(), "sigstore key test.key");
  auto signed_by = signer->Sign(kValidManifestDigest, "registry.example/repo:v2");
  ASSERT_TRUE(signed_by.ok());
  auto v2 = VerifySigstore(*signed_by, {pub->get()});
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(v2->claims.docker_reference, "registry.example/repo:v2");
}

TEST(SigstoreSign, TamperedSignaturesFail) {
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  Signature good = FixtureSignature("dir-img-cosign-valid/signature-1");
  ASSERT_TRUE(VerifySigstore(good, {key.get()}).ok());

  Signature payload = good;
  payload.payload[payload.payload.find("single")] = 'S';
  auto p = VerifySigstore(payload, {key.get()});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().errnum, EACCES);

  Signature annotation = good;
  std::string raw = *Base64Decode(annotation.annotations[kSigstoreSignatureAnnotation]);
  raw[raw.size() - 1] ^= 1;
  annotation.annotations[kSigstoreSignatureAnnotation] = Base64Encode(raw);
  auto a = VerifySigstore(annotation, {key.get()});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().errnum, EACCES);

  Signature not_base64 = good;
  not_base64.annotations[kSigstoreSignatureAnnotation] = "!!!";
  auto b = VerifySigstore(not_base64, {key.get()});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("not base64"), std::string::npos) << b.error().message;

  Signature missing = good;
  missing.annotations.clear();
  auto m = VerifySigstore(missing, {key.get()});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("no dev.cosignproject.cosign/signature"), std::string::npos);

  Signature mime = good;
  mime.mime_type = "application/json";
  EXPECT_FALSE(VerifySigstore(mime, {key.get()}).ok());

  Signature gpg;
  gpg.format = Signature::Format::kSimpleSigning;
  EXPECT_FALSE(VerifySigstore(gpg, {key.get()}).ok());
  EXPECT_FALSE(VerifySigstore(good, {}).ok());
}

TEST(SigstoreSign, RsaAndEd25519SignaturesVerify) {
  std::string payload = *SigstorePayloadJson({"example.com/r", kValidManifestDigest, {}, {}});
  for (const char* type : {"RSA", "ED25519"}) {
    EvpPkeyPtr key = std::string(type) == "RSA" ? GenerateKey("RSA", "2048") : GenerateKey(type);
    ASSERT_NE(key, nullptr);
    auto pub = LoadPublicKeyPem(PublicPem(key.get()));
    ASSERT_TRUE(pub.ok());
    Signature sig;
    sig.mime_type = kSigstoreSignatureMimeType;
    sig.payload = payload;
    sig.annotations[kSigstoreSignatureAnnotation] = Base64Encode(RawSign(key.get(), payload));
    auto v = VerifySigstore(sig, {pub->get()});
    ASSERT_TRUE(v.ok()) << type << ": " << v.error().message;
    EXPECT_EQ(v->claims.docker_reference, "example.com/r");
  }
}

// A valid signature over an arbitrary payload, to see what the strict parser does with it.
Result<SigstoreVerified> VerifyPayload(const std::string& payload) {
  static EvpPkeyPtr key = GenerateKey("EC", "P-256");
  Signature sig;
  sig.mime_type = kSigstoreSignatureMimeType;
  sig.payload = payload;
  sig.annotations[kSigstoreSignatureAnnotation] = Base64Encode(RawSign(key.get(), payload));
  return VerifySigstore(sig, {key.get()});
}

TEST(SigstorePayloadStrictness, RejectsWhatContainersImageRejects) {
  const std::string id = R"("identity":{"docker-reference":"r"})";
  const std::string image =
      R"("image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"})";
  const std::string type = R"("type":"cosign container image signature")";
  auto doc = [&](const std::string& critical, const std::string& rest = R"(,"optional":null)") {
    return "{\"critical\":{" + critical + "}" + rest + "}";
  };
  ASSERT_TRUE(VerifyPayload(doc(id + "," + image + "," + type)).ok());
  ASSERT_TRUE(
      VerifyPayload(doc(type + "," + image + "," + id, R"(,"optional":{"x":[1,{}]})")).ok());

  struct Case {
    std::string payload;
    std::string message;
  };
  const Case cases[] = {
      {doc(id + "," + image + "," + type + R"(,"extra":1)"), "unknown field \"extra\""},
      {doc(image + "," + type), "field \"identity\" missing"},
      {doc(id + "," + image + R"(,"type":"atomic container signature")"),
       "payload type is \"atomic container signature\", not cosign container image signature"},
      {doc(id + "," + image + R"(,"type":1)"), "critical.type is not a string"},
      {doc(id + "," + image + "," + type, ""), "field \"optional\" missing"},
      {doc(id + "," + image + "," + type, R"(,"optional":null,"more":1)"), "unknown field"},
      {doc(id + "," + image + "," + type, R"(,"optional":[])"), "optional is not a JSON object"},
      {doc(id + "," + image + "," + type, R"(,"optional":{"timestamp":1.5})"), "not an integer"},
      {doc(id + "," + image + "," + type, R"(,"optional":{"creator":3})"), "not a string"},
      {doc(R"("identity":{"docker-reference":"r","x":""},)" + image + "," + type),
       "critical.identity: unknown field"},
      {doc(id + R"(,"image":{"docker-manifest-digest":"sha256:abc"},)" + type),
       "invalid docker-manifest-digest"},
      {doc(R"("identity":{"docker-reference":null},)" + image + "," + type),
       "docker-reference is not a string"},
      {doc(id + "," + id + "," + image + "," + type), "duplicate key"},
      {doc(id + "," + image + "," + type) + " {}", "not valid JSON"},
      {R"({"critical":null,"optional":null})", "critical is not a JSON object"},
  };
  for (const auto& c : cases) {
    auto v = VerifyPayload(c.payload);
    ASSERT_FALSE(v.ok()) << c.payload;
    EXPECT_EQ(v.error().errnum, EINVAL) << c.payload;
    EXPECT_NE(v.error().message.find(c.message), std::string::npos)
        << c.payload << " → " << v.error().message;
  }
  // A whole-number float timestamp is accepted, as Go reads it into a float64.
  auto f =
      ParseSigstorePayload(doc(id + "," + image + "," + type, R"(,"optional":{"timestamp":1e9})"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->timestamp, 1000000000);
}

// --- Attachments. ---

TEST(SigstoreAttachment, Tag) {
  EXPECT_EQ(SigstoreAttachmentTag(kValidManifestDigest),
            "sha256-634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00.sig");
}

constexpr char kFreshManifest[] =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
    R"("config":{"mediaType":"application/vnd.oci.empty.v1+json",)"
    R"("digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},)"
    R"("layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json",)"
    R"("digest":"sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75","size":261,)"
    R"("annotations":{"dev.cosignproject.cosign/signature":"MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4uP4h+IpwKTE6ClR"}}]})";

TEST(SigstoreAttachment, TheEmptyConfigIsWhatItsDigestSays) {
  EXPECT_EQ(DigestOf(kEmptyConfig), kEmptyConfigDigest);
}

TEST(SigstoreAttachment, FreshHasOneLayerAndTheEmptyConfig) {
  Signature sig = FixtureSignature("dir-img-cosign-valid/signature-1");
  auto a = AppendToAttachment("", {sig});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->changed);
  EXPECT_EQ(a->manifest, kFreshManifest);
  // One upload: the payload. The empty config is shared by every attachment.
  ASSERT_EQ(a->blobs.size(), 1u);
  EXPECT_EQ(a->blobs[0].first, kValidPayloadDigest);
  EXPECT_EQ(a->blobs[0].second, sig.payload);
  // Nothing to add: nothing changes.
  auto none = AppendToAttachment("", {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->changed);
}

TEST(SigstoreAttachment, AppendingTheSameSignatureChangesNothing) {
  Signature sig = FixtureSignature("dir-img-cosign-valid/signature-1");
  auto again = AppendToAttachment(kFreshManifest, {sig});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->changed);
  EXPECT_TRUE(again->blobs.empty());
  EXPECT_EQ(again->manifest, kFreshManifest);
  // The same signature twice in one call is added once.
  auto twice = AppendToAttachment("", {sig, sig});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->manifest, kFreshManifest);
}

TEST(SigstoreAttachment, AppendingASecondSignatureAddsALayerAndOneUpload) {
  Signature tag = FixtureSignature("dir-img-cosign-valid-with-tag/signature-1");
  auto a = AppendToAttachment(kFreshManifest, {tag});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->changed);
  auto m = nlohmann::json::parse(a->manifest);
  ASSERT_EQ(m["layers"].size(), 2u);
  EXPECT_EQ(m["layers"][0]["digest"], kValidPayloadDigest);
  EXPECT_EQ(m["layers"][1]["digest"], kTagPayloadDigest);
  EXPECT_EQ(m["layers"][1]["size"], 311);
  EXPECT_EQ(m["config"]["digest"], kEmptyConfigDigest);
  ASSERT_EQ(a->blobs.size(), 1u);
  EXPECT_EQ(a->blobs[0].first, kTagPayloadDigest);

  // The same payload signed again (valid-2 has two signatures of one payload): another layer,
  // and no upload, since the payload is the first layer's.
  Signature other = FixtureSignature("dir-img-cosign-valid-2/signature-2");
  ASSERT_EQ(other.payload, FixtureSignature("dir-img-cosign-valid/signature-1").payload);
  auto b = AppendToAttachment(kFreshManifest, {other});
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->changed);
  auto bm = nlohmann::json::parse(b->manifest);
  ASSERT_EQ(bm["layers"].size(), 2u);
  EXPECT_EQ(bm["layers"][1]["digest"], kValidPayloadDigest);
}

TEST(SigstoreAttachment, AnExistingAttachmentKeepsItsFieldsAndGetsTheEmptyConfig) {
  // As containers/image and cosign write one: an image config listing the layers, and a field
  // regfs has no use for, which stays where it is.
  nlohmann::ordered_json manifest = nlohmann::ordered_json::parse(kFreshManifest);
  manifest["config"] = {
      {"mediaType", "application/vnd.oci.image.config.v1+json"},
      {"digest", "sha256:15a8cd501059a1b76629875fd890459fc8f37d485bfad6ef2fc08a0a2f808ecc"},
      {"size", 153}};
  manifest["annotations"] = {{"org.example", "kept"}};
  Signature tag = FixtureSignature("dir-img-cosign-valid-with-tag/signature-1");
  auto a = AppendToAttachment(manifest.dump(), {tag});
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto m = nlohmann::ordered_json::parse(a->manifest);
  EXPECT_EQ(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
  EXPECT_EQ(m["config"]["digest"], kEmptyConfigDigest);
  EXPECT_EQ(m["config"]["size"], 2);
  EXPECT_EQ(m["annotations"]["org.example"], "kept");
  std::vector<std::string> keys;
  for (const auto& [k, v] : m.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"schemaVersion", "mediaType", "config", "layers",
                                            "annotations"}));
  ASSERT_EQ(a->blobs.size(), 1u);
  // Not a manifest at all: refused.
  EXPECT_FALSE(AppendToAttachment("[]", {tag}).ok());
}

TEST(SigstoreAttachment, WrittenWithGoEscapingAndOmitempty) {
  Signature sig;
  sig.mime_type = kSigstoreSignatureMimeType;
  sig.payload = "p";
  sig.annotations = {{"z", "1"}, {"a<b>&", "\u2028"}};
  Signature bare;
  bare.mime_type = "text/plain";
  bare.payload = "q";
  auto a = AppendToAttachment("", {sig, bare});
  ASSERT_TRUE(a.ok());
  // Annotations sorted, HTML characters and U+2028 escaped; none at all: no "annotations".
  EXPECT_NE(a->manifest.find(R"("annotations":{"a\u003cb\u003e\u0026":"\u2028","z":"1"}})"),
            std::string::npos)
      << a->manifest;
  EXPECT_NE(a->manifest.find(R"({"mediaType":"text/plain","digest":")" + DigestOf("q") +
                             R"(","size":1}]})"),
            std::string::npos)
      << a->manifest;
}

// A registry's blobs, by digest; counts the fetches.
struct FakeBlobs {
  std::map<std::string, std::string> blobs;
  int fetches = 0;
  AttachmentBlobFetcher Fetcher() {
    return [this](const std::string& digest, int64_t) -> Result<std::string> {
      ++fetches;
      auto it = blobs.find(digest);
      if (it == blobs.end()) return MakeError(ENOENT, "blob unknown " + digest);
      return it->second;
    };
  }
};

TEST(SigstoreAttachment, SignaturesFromAttachmentRoundTrip) {
  Signature one = FixtureSignature("dir-img-cosign-valid/signature-1");
  Signature two = FixtureSignature("dir-img-cosign-valid-with-tag/signature-1");
  auto a = AppendToAttachment("", {one, two});
  ASSERT_TRUE(a.ok());
  FakeBlobs registry;
  for (const auto& [digest, bytes] : a->blobs) registry.blobs[digest] = bytes;
  auto sigs = SignaturesFromAttachment(a->manifest, registry.Fetcher());
  ASSERT_TRUE(sigs.ok()) << sigs.error().message;
  ASSERT_EQ(sigs->size(), 2u);
  EXPECT_EQ((*sigs)[0], one);
  EXPECT_EQ((*sigs)[1], two);
  EvpPkeyPtr key = FixtureKey("cosign.pub");
  EXPECT_TRUE(VerifySigstore((*sigs)[1], {key.get()}).ok());
}

TEST(SigstoreAttachment, DigestMismatchIsRejected) {
  FakeBlobs registry;
  registry.blobs[kValidPayloadDigest] = "something else";
  auto sigs = SignaturesFromAttachment(kFreshManifest, registry.Fetcher());
  ASSERT_FALSE(sigs.ok());
  EXPECT_EQ(sigs.error().errnum, EINVAL);
  EXPECT_NE(sigs.error().message.find(kValidPayloadDigest), std::string::npos)
      << sigs.error().message;
}

TEST(SigstoreAttachment, OversizedIsRejectedBeforeFetching) {
  nlohmann::ordered_json m = nlohmann::ordered_json::parse(kFreshManifest);
  m["layers"][0]["size"] = kMaxSignatureSize + 1;
  FakeBlobs registry;
  auto sigs = SignaturesFromAttachment(m.dump(), registry.Fetcher());
  ASSERT_FALSE(sigs.ok());
  EXPECT_EQ(sigs.error().errnum, EFBIG);
  EXPECT_EQ(registry.fetches, 0);
  // A fetcher that returns more than the limit anyway is refused too.
  std::string big(kMaxSignatureSize + 1, 'x');
  m["layers"][0]["size"] = 10;
  m["layers"][0]["digest"] = DigestOf(big);
  registry.blobs[DigestOf(big)] = big;
  auto big_sigs = SignaturesFromAttachment(m.dump(), registry.Fetcher());
  ASSERT_FALSE(big_sigs.ok());
  EXPECT_EQ(big_sigs.error().errnum, EFBIG);
}

// As containers/image: every layer is read, the verifier decides what a MIME type means.
TEST(SigstoreAttachment, NonSignatureLayersAreKeptForTheVerifier) {
  Signature sig = FixtureSignature("dir-img-cosign-valid/signature-1");
  Signature other = FixtureSignature("dir-img-cosign-other-attachment/signature-1");
  auto a = AppendToAttachment("", {other, sig});
  ASSERT_TRUE(a.ok());
  FakeBlobs registry;
  registry.blobs[kValidPayloadDigest] = sig.payload;
  registry.blobs[DigestOf(other.payload)] = other.payload;
  auto sigs = SignaturesFromAttachment(a->manifest, registry.Fetcher());
  ASSERT_TRUE(sigs.ok()) << sigs.error().message;
  ASSERT_EQ(sigs->size(), 2u);
  EXPECT_EQ((*sigs)[0], other);
  EXPECT_EQ((*sigs)[1], sig);
  EXPECT_EQ(registry.fetches, 2);
}

TEST(SigstoreAttachment, NotAManifestIsEinval) {
  FakeBlobs registry;
  for (const char* bad :
       {"", "[]", "{}", R"({"layers":{}})", "not json",
        R"({"mediaType":"application/vnd.oci.image.index.v1+json","layers":[]})",
        R"({"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]})"}) {
    auto sigs = SignaturesFromAttachment(bad, registry.Fetcher());
    ASSERT_FALSE(sigs.ok()) << bad;
    EXPECT_EQ(sigs.error().errnum, EINVAL) << bad;
  }
  auto empty = SignaturesFromAttachment(R"({"schemaVersion":2,"layers":[]})", registry.Fetcher());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace regfs
