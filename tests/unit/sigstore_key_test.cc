#include "transports/signature/sigstore_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "transports/util/base64.h"

namespace regfs {
namespace {

// Keys written by cosign's own key writer, from sigstore/cosign's pkg/cosign/keys_test.go
// (Apache-2.0); the passphrase of all three is "hello". The public keys are theirs.
constexpr char kSigstoreTypeKey[] = R"(-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
)";
constexpr char kSigstoreTypePub[] = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7z9gA/tqa9iHt/f9F3ulyVi4lwqU
LfHWfhG2mK4eyJ8LDcLstb+VVhxj3pkMjc3fNo+sSfiIY2NLR7c+DG1V4w==
-----END PUBLIC KEY-----
)";
constexpr char kCosignTypeKey[] = R"(-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
)";
constexpr char kCosignTypePub[] = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECYtspttZZ7e9PMd8wyU2CWDlpEXN
bqTve0ZBuOXu9xTjtm7Z107cVLCCk96Ma4D0tesnKeCPwrcspLz7GNZJSw==
-----END PUBLIC KEY-----
)";
// A SEC1 ECPrivateKey inside, not PKCS#8: cosign refuses it.
constexpr char kSec1InsideKey[] = R"(-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
)";

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct Pkcs8Deleter {
  void operator()(PKCS8_PRIV_KEY_INFO* p) const { PKCS8_PRIV_KEY_INFO_free(p); }
};

// The PEM type and the body of the first PEM block of `pem`.
std::pair<std::string, std::string> ReadPem(const std::string& pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) return {};
  std::pair<std::string, std::string> out(name, std::string(reinterpret_cast<char*>(data), len));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return out;
}

std::string PemBlock(const std::string& type, const std::string& body) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), type.c_str(), "", reinterpret_cast<const unsigned char*>(body.data()),
                static_cast<long>(body.size()));
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

// An encrypted key file made here, independently of the code under test, around any key
// (a cheap scrypt N keeps it quick).
std::string EncryptForTest(EVP_PKEY* key, const std::string& passphrase) {
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, Pkcs8Deleter> p8(EVP_PKEY2PKCS8(key));
  unsigned char* der = nullptr;
  int der_len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &der);
  std::string salt(32, 's');
  std::string nonce(crypto_secretbox_NONCEBYTES, 'n');
  unsigned char box_key[crypto_secretbox_KEYBYTES];
  EXPECT_EQ(EVP_PBE_scrypt(passphrase.data(), passphrase.size(),
                           reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), 1024,
                           8, 1, 0, box_key, sizeof(box_key)),
            1);
  std::string sealed(der_len + crypto_secretbox_MACBYTES, '\0');
  EXPECT_EQ(sodium_init() >= 0, true);
  crypto_secretbox_easy(reinterpret_cast<unsigned char*>(sealed.data()), der, der_len,
                        reinterpret_cast<const unsigned char*>(nonce.data()), box_key);
  OPENSSL_free(der);
  nlohmann::ordered_json j;
  j["kdf"]["name"] = "scrypt";
  j["kdf"]["params"] = {{"N", 1024}, {"r", 8}, {"p", 1}};
  j["kdf"]["salt"] = Base64Encode(salt);
  j["cipher"]["name"] = "nacl/secretbox";
  j["cipher"]["nonce"] = Base64Encode(nonce);
  j["ciphertext"] = Base64Encode(sealed);
  return PemBlock(kSigstorePrivateKeyPemType, j.dump());
}

TEST(SigstoreKeyTest, LoadsTheSigstorePemTypeAndItsPublicKeyIsCosigns) {
  auto key = LoadSigstorePrivateKey(kSigstoreTypeKey, "hello");
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto pub = PublicKeyPem(key->get());
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(*pub, kSigstoreTypePub);
}

TEST(SigstoreKeyTest, LoadsTheOlderCosignPemType) {
  auto key = LoadSigstorePrivateKey(kCosignTypeKey, "hello");
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto pub = PublicKeyPem(key->get());
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(*pub, kCosignTypePub);
}

TEST(SigstoreKeyTest, WrongPassphraseIsRefused) {
  auto key = LoadSigstorePrivateKey(kSigstoreTypeKey, "hellO");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().errnum, EACCES);
  EXPECT_NE(key.error().message.find("wrong passphrase"), std::string::npos) << key.error().message;
}

TEST(SigstoreKeyTest, Sec1InsideIsRefusedAsNotPkcs8) {
  auto key = LoadSigstorePrivateKey(kSec1InsideKey, "hello");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().errnum, EINVAL);
  EXPECT_NE(key.error().message.find("PKCS#8"), std::string::npos) << key.error().message;
}

TEST(SigstoreKeyTest, AKeyOnAnotherCurveIsRefused) {
  EvpPkeyPtr p384(EVP_EC_gen("secp384r1"));
  ASSERT_TRUE(p384);
  std::string pem = EncryptForTest(p384.get(), "pw");
  auto key = LoadSigstorePrivateKey(pem, "pw");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().errnum, EINVAL);
  EXPECT_NE(key.error().message.find("P-256"), std::string::npos) << key.error().message;
  // Nor is one written here refused for another reason.
  EvpPkeyPtr p256(EVP_EC_gen("prime256v1"));
  EXPECT_TRUE(LoadSigstorePrivateKey(EncryptForTest(p256.get(), "pw"), "pw").ok());
}

TEST(SigstoreKeyTest, NotAnEncryptedKeyIsRefused) {
  EXPECT_EQ(LoadSigstorePrivateKey("hello", "pw").error().errnum, EINVAL);
  EXPECT_EQ(LoadSigstorePrivateKey(kSigstoreTypePub, "pw").error().errnum, EINVAL);
  EXPECT_EQ(LoadSigstorePrivateKey(PemBlock(kSigstorePrivateKeyPemType, "{}"), "pw").error().errnum,
            EINVAL);
}

TEST(SigstoreKeyTest, GeneratedKeyRoundTrips) {
  auto key = GenerateSigstoreKey();
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto pem = EncryptSigstorePrivateKey(key->get(), "correct horse");
  ASSERT_TRUE(pem.ok()) << pem.error().message;
  EXPECT_EQ(pem->rfind("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", 0), 0u) << *pem;

  auto loaded = LoadSigstorePrivateKey(*pem, "correct horse");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(EVP_PKEY_eq(key->get(), loaded->get()), 1);
  EXPECT_EQ(*PublicKeyPem(key->get()), *PublicKeyPem(loaded->get()));
  EXPECT_EQ(LoadSigstorePrivateKey(*pem, "correct horsE").error().errnum, EACCES);
}

TEST(SigstoreKeyTest, WrittenJsonIsCosignsEnvelope) {
  auto key = GenerateSigstoreKey();
  ASSERT_TRUE(key.ok());
  auto pem = EncryptSigstorePrivateKey(key->get(), "pw");
  ASSERT_TRUE(pem.ok());
  auto [type, body] = ReadPem(*pem);
  EXPECT_EQ(type, "ENCRYPTED SIGSTORE PRIVATE KEY");
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["kdf"]["name"], "scrypt");
  EXPECT_EQ(j["kdf"]["params"]["N"], 65536);
  EXPECT_EQ(j["kdf"]["params"]["r"], 8);
  EXPECT_EQ(j["kdf"]["params"]["p"], 1);
  EXPECT_EQ(Base64Decode(j["kdf"]["salt"].get<std::string>())->size(), 32u);
  EXPECT_EQ(j["cipher"]["name"], "nacl/secretbox");
  EXPECT_EQ(Base64Decode(j["cipher"]["nonce"].get<std::string>())->size(), 24u);
  // PKCS#8 of a P-256 key is 138 bytes as OpenSSL writes it; the box adds a 16-byte tag.
  EXPECT_GT(Base64Decode(j["ciphertext"].get<std::string>())->size(), 16u + 100u);
  // Keys in cosign's order.
  EXPECT_EQ(body.rfind(R"({"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":")", 0),
            0u)
      << body;
  EXPECT_NE(body.find(R"("},"cipher":{"name":"nacl/secretbox","nonce":")"), std::string::npos);
  EXPECT_NE(body.find(R"("},"ciphertext":")"), std::string::npos);

  // Fresh salt and nonce every time.
  auto again = EncryptSigstorePrivateKey(key->get(), "pw");
  ASSERT_TRUE(again.ok());
  auto j2 = nlohmann::json::parse(ReadPem(*again).second);
  EXPECT_NE(j["kdf"]["salt"], j2["kdf"]["salt"]);
  EXPECT_NE(j["cipher"]["nonce"], j2["cipher"]["nonce"]);
}

TEST(SigstoreKeyTest, OnlyP256KeysAreEncrypted) {
  EvpPkeyPtr p384(EVP_EC_gen("secp384r1"));
  auto pem = EncryptSigstorePrivateKey(p384.get(), "pw");
  ASSERT_FALSE(pem.ok());
  EXPECT_EQ(pem.error().errnum, EINVAL);
}

}  // namespace
}  // namespace regfs
