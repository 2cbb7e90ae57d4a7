// Sigstore (cosign-compatible) signing keys.
//
// A private key is an ECDSA P-256 key, serialized as PKCS#8 DER and encrypted as cosign does:
// a PEM block ("ENCRYPTED SIGSTORE PRIVATE KEY", or cosign's older "ENCRYPTED COSIGN PRIVATE
// KEY") whose body is the JSON
//   {"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":"<base64>"},
//    "cipher":{"name":"nacl/secretbox","nonce":"<base64>"},"ciphertext":"<base64>"}
// where the secretbox (XSalsa20-Poly1305) key is scrypt(passphrase, salt, N, r, p) of 32 bytes.
// A public key is a SubjectPublicKeyInfo PEM block ("PUBLIC KEY").
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "transports/util/openssl_ptr.h"
#include "transports/util/result.h"

namespace regfs {

inline constexpr char kSigstorePrivateKeyPemType[] = "ENCRYPTED SIGSTORE PRIVATE KEY";
inline constexpr char kCosignPrivateKeyPemType[] = "ENCRYPTED COSIGN PRIVATE KEY";

// The scrypt parameters new keys are encrypted with (cosign's).
inline constexpr uint64_t kSigstoreScryptN = 65536;
inline constexpr uint64_t kSigstoreScryptR = 8;
inline constexpr uint64_t kSigstoreScryptP = 1;

// A new ECDSA P-256 key.
Result<EvpPkeyPtr> GenerateSigstoreKey();

// The PEM ("ENCRYPTED SIGSTORE PRIVATE KEY") of `key`, a P-256 key, encrypted with
// `passphrase` under a fresh random salt and nonce.
Result<std::string> EncryptSigstorePrivateKey(EVP_PKEY* key, std::string_view passphrase);

// Decrypts a private key PEM of either type. EACCES for a wrong passphrase; EINVAL for a file
// that is not such a PEM, a body that is not PKCS#8, or a key that is not P-256.
Result<EvpPkeyPtr> LoadSigstorePrivateKey(std::string_view pem, std::string_view passphrase);

// "-----BEGIN PUBLIC KEY-----" (SubjectPublicKeyInfo) of a key.
Result<std::string> PublicKeyPem(EVP_PKEY* key);

}  // namespace regfs
