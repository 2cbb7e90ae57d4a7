// HttpClient: HTTP/1.1 requests, with connection reuse.
//
// Two transports behind one Perform(): https:// (and anything through a proxy) goes to libcurl,
// which is loaded on first use (curl_transport.h); plain http:// — a loopback registry, an
// insecure one, a token server beside it — goes over a socket of our own (plain_http.h). A
// command that never speaks TLS so never loads libcurl and its thirty-odd libraries, which cost
// more at start than the whole of a local `inspect`.
//
// Thread-safe: each transport keeps a pool of idle connections for the next request. No
// retries and no redirects here: RegistryClient decides both, since only it knows what may be
// replayed and which headers may travel to another host. Nothing here logs headers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  // Kept bodies (errors, JSON) larger than this fail the request (body_too_large).
  int64_t max_body = 1 << 20;
  // Whole-request limit in seconds; 0 means none (stalls are still detected).
  long timeout_s = 0;
  bool tls_verify = true;
  // Extra CAs and a client certificate for this request's TLS connection (certs.d), or null.
  std::shared_ptr<const TlsConfig> tls;

  static constexpr size_t kAbortUpload = static_cast<size_t>(-1);
};

// Why a request got no complete response.
enum class HttpFailure {
  kNone,
  kResolve,       // the host name did not resolve
  kConnect,       // nobody accepted the connection
  kTimeout,       // connecting, a stall, or the request's own limit
  kReset,         // the connection broke, or closed before a response
  kPartial,       // the connection closed before the whole body
  kTlsHandshake,  // no TLS from the other side, or the handshake failed
  kTlsVerify,     // the peer's certificate is not trusted
  kProtocol,      // not an HTTP/1.x response we can read
  kAborted,       // our side stopped it: a callback, the body limit, an upload reader
  kOther,
};

struct HttpResponse {
  long status = 0;  // 0 when the transfer failed before a status line
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  int64_t streamed = 0;  // bytes handed to on_body
  HttpFailure failure = HttpFailure::kNone;
  std::string error;  // what failed, for messages (never holds a header value)
  bool body_too_large = false;

  bool transport_ok() const { return failure == HttpFailure::kNone; }
  // The first value of a header, "" when absent.
  std::string Header(std::string_view name) const;
  std::vector<std::string> Headers(std::string_view name) const;
};

struct HttpOptions {
  long connect_timeout_s = 15;
  // A transfer making no progress for this long fails (kTimeout).
  long stall_timeout_s = 60;
  std::string user_agent = "regfs/0.1";
};

class CurlTransport;
class PlainHttpTransport;

class HttpClient {
 public:
  using Options = HttpOptions;

  HttpClient();
  explicit HttpClient(Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Transport failures are reported in the response (failure, error).
  HttpResponse Perform(const HttpRequest& request);

 private:
  const Options options_;
  const bool proxied_;  // a proxy is configured in the environment: libcurl honours it
  std::unique_ptr<PlainHttpTransport> plain_;
  std::unique_ptr<CurlTransport> curl_;  // created on the first request that needs it
  std::string curl_unavailable_;         // why curl_ could not be created
  std::once_flag curl_once_;
};

// True for transport failures worth retrying: resets and truncated bodies. A timeout is not
// retried: a registry that stalled for the whole timeout would make every retry as slow.
bool IsRetryable(HttpFailure failure);

// Lowercases an HTTP header name.
std::string LowerHeaderName(std::string_view name);

}  // namespace regfs
