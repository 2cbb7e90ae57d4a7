// CurlTransport: HTTP/1.1 and HTTP/2 over TLS (and plain HTTP through a proxy) with libcurl.
//
// libcurl is loaded with dlopen() when the first such request is made, not when regfs starts:
// with its thirty-odd libraries (GnuTLS, Kerberos, LDAP, SSH, ...) it costs several
// milliseconds, more than a whole `inspect` of a local registry. Each Perform() borrows an idle
// CURL handle from a pool (keeping that handle's open connections for the next request).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "transports/http_client.h"
#include "transports/result.h"

namespace regfs {

struct CurlApi;

class CurlTransport {
 public:
  // Loads libcurl (once per process); an error says why it cannot be.
  static Result<std::unique_ptr<CurlTransport>> Create(HttpOptions options);
  ~CurlTransport();
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  HttpResponse Perform(const HttpRequest& request);

 private:
  CurlTransport(const CurlApi& api, HttpOptions options)
      : api_(api), options_(std::move(options)) {}
  void* Acquire();
  void Release(void* handle);

  const CurlApi& api_;
  const HttpOptions options_;
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL handles, guarded by mu_
};

}  // namespace regfs
