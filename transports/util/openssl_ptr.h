// Owning pointers to OpenSSL objects shared across folders, and OpenSSL's errors as ours.
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "transports/util/result.h"

namespace regfs {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// `what` failed, with OpenSSL's first queued error appended; the queue is cleared.
inline Error OpensslError(int errnum, const std::string& what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string message = what;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    message += ": ";
    message += buf;
  }
  return MakeError(errnum, message);
}

}  // namespace regfs
