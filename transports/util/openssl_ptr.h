// Owning pointers to OpenSSL objects shared across folders.
#pragma once

#include <openssl/evp.h>

#include <memory>

namespace regfs {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

}  // namespace regfs
