// SHA-256 digests: streaming hashing and validation of "sha256:<hex>" strings.
// A Sha256 object is used by one thread at a time.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "transports/util/result.h"

namespace regfs {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Returns "sha256:<hex>". The object can't be updated afterwards.
  std::string Finish();

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// "sha256:<hex>" of the bytes.
std::string DigestOf(std::string_view bytes);

// True for "sha256:" followed by 64 lowercase hex digits.
bool IsSha256Digest(std::string_view digest);

// Validates a digest string; sha512 and others are refused with EINVAL.
Status ValidateDigest(std::string_view digest);

// The hex part of a valid digest.
inline std::string_view DigestHex(std::string_view digest) { return digest.substr(7); }

}  // namespace regfs
