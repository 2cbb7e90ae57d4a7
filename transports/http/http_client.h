// HttpClient: every HTTP request regfs makes, through libcurl.
//
// What a process pays once, not per connection or request:
//   - TLS trust: the system's CAs are looked up on demand in the hashed directory
//     (/etc/ssl/certs) by one shared X509 store, never parsed from the whole bundle; certs.d
//     CAs are parsed once per TlsConfig (tls_config.h).
//   - TLS sessions and DNS answers are shared between all transfers (a curl share).
// Two ways a request travels:
//   - Buffered requests (no on_body, no body_reader: pings, manifests, HEADs, tokens, tag
//     lists, mounts) run on one curl multi handle driven by a thread of the client's own.
//     Its connections are kept alive and, over TLS, HTTP/2 is negotiated where the server
//     offers it, so concurrent requests share one connection.
//   - Streamed transfers (blob bytes up or down) run on the caller's thread, on an easy
//     handle from a pool that keeps its connection alive for the next transfer to the same
//     origin; they use HTTP/1.1, a connection each, so a slow sink never holds up another
//     request and no flow-control window of a shared connection caps a blob.
//
// A request may go to a unix socket instead of a TCP host (HttpRequest::unix_socket).
//
// Thread-safe. No retries and no redirects here: RegistryClient decides both, since only it
// knows what may be replayed and which headers may travel to another host. Nothing here logs
// headers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transports/http/tls_config.h"

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
  // When set, the connection is made to this unix socket instead of the URL's host (the
  // Docker engine's API); the URL still gives the scheme, the Host header and the path.
  std::string unix_socket;
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
  kProtocol,      // not an HTTP response we can read
  kAborted,       // our side stopped it: a callback, the body limit, an upload reader
  kOther,
};

struct HttpResponse {
  std::string url;  // the request's URL
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
  // A transfer slower than min_rate bytes/s for this long fails (kTimeout).
  long stall_timeout_s = 60;
  long min_rate = 1;
  std::string user_agent = "regfs/0.1";
};

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
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// True for transport failures worth retrying: resets, truncated bodies, and refused
// connections (a registry restarting refuses them for a moment). A timeout is not retried: a
// registry that stalled for the whole timeout would make every retry as slow.
bool IsRetryable(HttpFailure failure);

// "https://host/path?x" → "https://host"; used to compare hosts before sending credentials.
std::string UrlOrigin(const std::string& url);

// Percent-encodes everything but unreserved characters and '/', for URL paths and query values.
std::string UrlEscape(std::string_view s);

// Lowercases an HTTP header name.
std::string LowerHeaderName(std::string_view name);

}  // namespace regfs
