// HttpClient: HTTP/1.1 requests on libcurl, with connection reuse.
//
// Thread-safe: each Perform() borrows an idle CURL handle from a pool (keeping that handle's
// open connections for the next request) and returns it afterwards. No retries and no
// redirects here: RegistryClient decides both, since only it knows what may be replayed and
// which headers may travel to another host. Nothing here logs headers.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "transports/result.h"
#include "transports/tls_config.h"

namespace regfs {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // The request body: `body`, or when `body_reader` is set, `body_size` bytes pulled from it.
  // The reader fills up to n bytes and returns how many (0 at the end); it returns kAbortUpload
  // to fail. A body_size of -1 sends the body chunked, until the reader ends.
  std::string body;
  std::function<size_t(char* buf, size_t n)> body_reader;
  int64_t body_size = 0;
  // When set, a 2xx response's body is streamed here (with the status) instead of being kept;
  // returning false aborts the transfer.
  std::function<bool(long status, const char* data, size_t n)> on_body;
  // Kept bodies (errors, JSON) larger than this fail the request with EFBIG.
  int64_t max_body = 1 << 20;
  // Whole-request limit in seconds; 0 means none (stalls are still detected).
  long timeout_s = 0;
  bool tls_verify = true;
  // Extra CAs and a client certificate for this request's TLS connection (certs.d), or null.
  std::shared_ptr<const TlsConfig> tls;

  static constexpr size_t kAbortUpload = CURL_READFUNC_ABORT;
};

struct HttpResponse {
  long status = 0;  // 0 when the transfer failed before a status line
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  int64_t streamed = 0;  // bytes handed to on_body
  CURLcode curl_code = CURLE_OK;
  std::string curl_error;
  bool body_too_large = false;

  bool transport_ok() const { return curl_code == CURLE_OK; }
  // The first value of a header, "" when absent.
  std::string Header(std::string_view name) const;
  std::vector<std::string> Headers(std::string_view name) const;
};

class HttpClient {
 public:
  struct Options {
    long connect_timeout_s = 15;
    // A transfer making no progress for this long fails (CURLE_OPERATION_TIMEDOUT).
    long stall_timeout_s = 60;
    std::string user_agent = "regfs/0.1";
  };

  HttpClient();
  explicit HttpClient(Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Transport failures are reported in the response (curl_code).
  HttpResponse Perform(const HttpRequest& request);

 private:
  CURL* Acquire();
  void Release(CURL* handle);

  Options options_;
  std::mutex mu_;
  std::vector<CURL*> idle_;  // guarded by mu_
};

// True for transport failures worth retrying: resets and truncated bodies. A timeout is not
// retried: a registry that stalled for the whole timeout would make every retry as slow.
bool IsRetryableCurlCode(CURLcode code);

// True when the server answered in something other than TLS (a plain-HTTP registry).
bool IsTlsHandshakeFailure(CURLcode code);

}  // namespace regfs
