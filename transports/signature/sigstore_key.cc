#include "transports/signature/sigstore_key.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "transports/util/base64.h"

namespace regfs {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
struct Pkcs8Deleter {
  void operator()(PKCS8_PRIV_KEY_INFO* p) const { PKCS8_PRIV_KEY_INFO_free(p); }
};
struct OpensslCharFree {
  void operator()(char* p) const { OPENSSL_free(p); }
};
struct OpensslBytesFree {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using CharPtr = std::unique_ptr<char, OpensslCharFree>;
using BytesPtr = std::unique_ptr<unsigned char, OpensslBytesFree>;

constexpr size_t kSaltSize = 32;
constexpr char kKdfName[] = "scrypt";
constexpr char kCipherName[] = "nacl/secretbox";
// Bounds on the scrypt parameters a key file may ask for: cosign's own are N=32768 or 65536.
constexpr uint64_t kMaxScryptN = uint64_t{1} << 20;
constexpr uint64_t kMaxScryptR = 32;
constexpr uint64_t kMaxScryptP = 16;

// Zeroes a buffer of secret bytes when it goes.
class SecretBytes {
 public:
  explicit SecretBytes(size_t n) : bytes_(n) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  }
  unsigned char* data() { return bytes_.data(); }
  const unsigned char* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  void resize(size_t n) { bytes_.resize(n); }

 private:
  std::vector<unsigned char> bytes_;
};

Status SodiumInit() {
  static const int rc = sodium_init();
  if (rc < 0) return MakeError(EIO, "initializing libsodium failed");
  return Ok();
}

Status Scrypt(std::string_view passphrase, std::string_view salt, uint64_t n, uint64_t r,
              uint64_t p, SecretBytes* key) {
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) return OpensslError(EIO, "scrypt is not available");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpensslError(ENOMEM, "scrypt");
  // What scrypt needs (128·r·(N+2) for V, 128·r·p for B), and some room besides.
  uint64_t maxmem = 128 * r * (n + 2) + 128 * r * p + (uint64_t{1} << 20);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                        const_cast<char*>(passphrase.data()), passphrase.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), key->data(), key->size(), params) != 1) {
    return OpensslError(EIO, "scrypt");
  }
  return Ok();
}

bool IsP256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
      1) {
    return false;
  }
  return std::strcmp(group, SN_X9_62_prime256v1) == 0;
}

// The PKCS#8 DER of a private key.
Status Pkcs8Der(EVP_PKEY* key, SecretBytes* der) {
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, Pkcs8Deleter> p8(EVP_PKEY2PKCS8(key));
  if (!p8) return OpensslError(EINVAL, "serializing the private key");
  int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr);
  if (len <= 0) return OpensslError(EINVAL, "serializing the private key");
  der->resize(static_cast<size_t>(len));
  unsigned char* out = der->data();
  if (i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &out) != len) {
    return OpensslError(EINVAL, "serializing the private key");
  }
  return Ok();
}

Result<std::string> JsonBase64(const nlohmann::json& j, const char* name) {
  if (!j.is_object() || !j.contains(name) || !j[name].is_string()) {
    return MakeError(EINVAL, std::string("missing \"") + name + "\"");
  }
  auto decoded = Base64Decode(j[name].get<std::string>());
  if (!decoded.ok()) return MakeError(EINVAL, std::string("\"") + name + "\" is not base64");
  return decoded;
}

Result<uint64_t> JsonUint(const nlohmann::json& j, const char* name, uint64_t max) {
  if (!j.is_object() || !j.contains(name) || !j[name].is_number_unsigned()) {
    return MakeError(EINVAL, std::string("missing scrypt parameter \"") + name + "\"");
  }
  uint64_t v = j[name].get<uint64_t>();
  if (v == 0 || v > max) {
    return MakeError(EINVAL, std::string("scrypt parameter \"") + name + "\" out of range");
  }
  return v;
}

}  // namespace

Result<EvpPkeyPtr> GenerateSigstoreKey() {
  EvpPkeyPtr key(EVP_EC_gen(SN_X9_62_prime256v1));
  if (!key) return OpensslError(EIO, "generating a P-256 key");
  return key;
}

Result<std::string> EncryptSigstorePrivateKey(EVP_PKEY* key, std::string_view passphrase) {
  RETURN_IF_ERROR(SodiumInit());
  if (key == nullptr || !IsP256(key)) {
    return MakeError(EINVAL, "the private key is not an ECDSA P-256 key");
  }
  SecretBytes der(0);
  RETURN_IF_ERROR(Pkcs8Der(key, &der));

  std::string salt(kSaltSize, '\0');
  std::string nonce(crypto_secretbox_NONCEBYTES, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
          1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) !=
          1) {
    return OpensslError(EIO, "random bytes");
  }
  SecretBytes box_key(crypto_secretbox_KEYBYTES);
  RETURN_IF_ERROR(
      Scrypt(passphrase, salt, kSigstoreScryptN, kSigstoreScryptR, kSigstoreScryptP, &box_key));

  std::string ciphertext(der.size() + crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_easy(reinterpret_cast<unsigned char*>(ciphertext.data()), der.data(),
                            der.size(), reinterpret_cast<const unsigned char*>(nonce.data()),
                            box_key.data()) != 0) {
    return MakeError(EIO, "encrypting the private key failed");
  }

  // Field order as cosign writes it.
  nlohmann::ordered_json j;
  j["kdf"]["name"] = kKdfName;
  j["kdf"]["params"]["N"] = kSigstoreScryptN;
  j["kdf"]["params"]["r"] = kSigstoreScryptR;
  j["kdf"]["params"]["p"] = kSigstoreScryptP;
  j["kdf"]["salt"] = Base64Encode(salt);
  j["cipher"]["name"] = kCipherName;
  j["cipher"]["nonce"] = Base64Encode(nonce);
  j["ciphertext"] = Base64Encode(ciphertext);
  std::string body = j.dump();

  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return OpensslError(ENOMEM, "PEM");
  if (PEM_write_bio(bio.get(), kSigstorePrivateKeyPemType, "",
                    reinterpret_cast<const unsigned char*>(body.data()),
                    static_cast<long>(body.size())) <= 0) {
    return OpensslError(EIO, "writing the private key PEM");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<EvpPkeyPtr> LoadSigstorePrivateKey(std::string_view pem, std::string_view passphrase) {
  RETURN_IF_ERROR(SodiumInit());
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslError(ENOMEM, "PEM");
  char* name_raw = nullptr;
  char* header_raw = nullptr;
  unsigned char* data_raw = nullptr;
  long len = 0;
  int read = PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len);
  CharPtr name(name_raw);
  CharPtr header(header_raw);
  BytesPtr data(data_raw);
  if (read != 1) {
    ERR_clear_error();
    return MakeError(EINVAL, "not a PEM private key");
  }
  if (std::strcmp(name.get(), kSigstorePrivateKeyPemType) != 0 &&
      std::strcmp(name.get(), kCosignPrivateKeyPemType) != 0) {
    return MakeError(EINVAL, std::string("unsupported PEM type \"") + name.get() + "\" (want " +
                                 kSigstorePrivateKeyPemType + ")");
  }

  nlohmann::json j = nlohmann::json::parse(data.get(), data.get() + len, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(EINVAL, "the encrypted private key is not JSON");
  }
  auto bad = [](const Error& e) { return Annotate(e, "encrypted private key"); };
  const nlohmann::json& kdf = j.contains("kdf") ? j["kdf"] : nlohmann::json();
  const nlohmann::json& cipher = j.contains("cipher") ? j["cipher"] : nlohmann::json();
  if (!kdf.is_object() || !kdf.contains("name") || kdf["name"] != kKdfName) {
    return MakeError(EINVAL, "encrypted private key: unsupported kdf (want scrypt)");
  }
  if (!cipher.is_object() || !cipher.contains("name") || cipher["name"] != kCipherName) {
    return MakeError(EINVAL, "encrypted private key: unsupported cipher (want nacl/secretbox)");
  }
  const nlohmann::json& params = kdf.contains("params") ? kdf["params"] : nlohmann::json();
  auto n = JsonUint(params, "N", kMaxScryptN);
  if (!n.ok()) return bad(n.error());
  if ((*n & (*n - 1)) != 0 || *n < 2) {
    return MakeError(EINVAL, "encrypted private key: scrypt N is not a power of two");
  }
  auto r = JsonUint(params, "r", kMaxScryptR);
  if (!r.ok()) return bad(r.error());
  auto p = JsonUint(params, "p", kMaxScryptP);
  if (!p.ok()) return bad(p.error());
  auto salt = JsonBase64(kdf, "salt");
  if (!salt.ok()) return bad(salt.error());
  auto nonce = JsonBase64(cipher, "nonce");
  if (!nonce.ok()) return bad(nonce.error());
  auto ciphertext = JsonBase64(j, "ciphertext");
  if (!ciphertext.ok()) return bad(ciphertext.error());
  if (nonce->size() != crypto_secretbox_NONCEBYTES) {
    return MakeError(EINVAL, "encrypted private key: the nonce is not 24 bytes");
  }
  if (ciphertext->size() < crypto_secretbox_MACBYTES) {
    return MakeError(EINVAL, "encrypted private key: the ciphertext is too short");
  }

  SecretBytes box_key(crypto_secretbox_KEYBYTES);
  RETURN_IF_ERROR(Scrypt(passphrase, *salt, *n, *r, *p, &box_key));
  SecretBytes der(ciphertext->size() - crypto_secretbox_MACBYTES);
  if (crypto_secretbox_open_easy(
          der.data(), reinterpret_cast<const unsigned char*>(ciphertext->data()),
          ciphertext->size(), reinterpret_cast<const unsigned char*>(nonce->data()),
          box_key.data()) != 0) {
    return MakeError(EACCES, "decrypting the private key failed: wrong passphrase");
  }

  const unsigned char* in = der.data();
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, Pkcs8Deleter> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &in, static_cast<long>(der.size())));
  if (!p8 || in != der.data() + der.size()) {
    ERR_clear_error();
    return MakeError(EINVAL, "the decrypted private key is not PKCS#8");
  }
  EvpPkeyPtr key(EVP_PKCS82PKEY(p8.get()));
  if (!key) return OpensslError(EINVAL, "the decrypted PKCS#8 private key does not parse");
  if (!IsP256(key.get())) {
    return MakeError(EINVAL, "the private key is not an ECDSA P-256 key");
  }
  return key;
}

Result<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return OpensslError(ENOMEM, "PEM");
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return OpensslError(EIO, "writing the public key PEM");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace regfs
