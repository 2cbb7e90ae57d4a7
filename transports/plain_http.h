// PlainHttpTransport: HTTP/1.1 over a plain TCP socket, for http:// URLs.
//
// What RegistryClient needs and no more: any method; a body from a string, from a reader of
// known size, or chunked; Content-Length, chunked and close-delimited responses; interim 1xx
// responses skipped; keep-alive connections pooled per host:port and checked before reuse; a
// connect timeout, a stall timeout and a whole-request limit. A reused connection that turns
// out closed before answering is replaced once, when the request can be sent again.
//
// Every size from the network is bounded: the status line and headers (64 KiB), chunk-size
// lines, and kept bodies (HttpRequest::max_body).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "transports/http_client.h"

namespace regfs {

// The parts of an http:// URL that a request needs.
struct HttpUrl {
  std::string host;         // without brackets for IPv6
  std::string port = "80";  // as written
  std::string host_header;  // host[:port] as the URL wrote it, for the Host header
  std::string target;       // path and query, at least "/"
};

// Parses "http://host[:port][/path][?query]"; false for anything else (userinfo included).
bool ParseHttpUrl(std::string_view url, HttpUrl* out);

class PlainHttpTransport {
 public:
  explicit PlainHttpTransport(HttpOptions options);
  ~PlainHttpTransport();
  PlainHttpTransport(const PlainHttpTransport&) = delete;
  PlainHttpTransport& operator=(const PlainHttpTransport&) = delete;

  HttpResponse Perform(const HttpRequest& request);

  // Idle connections kept at most; more are closed as they come back.
  static constexpr size_t kMaxIdle = 32;

 private:
  struct Connection;
  class Exchange;

  // An idle connection to `key` (host:port) that is still open, or null.
  std::unique_ptr<Connection> TakeIdle(const std::string& key);
  void Give(std::unique_ptr<Connection> c);

  const HttpOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace regfs
