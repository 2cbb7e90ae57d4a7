#include "transports/plain_http.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>

#include "transports/file_util.h"

namespace regfs {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBufferSize = 256 * 1024;  // per connection, for reading
constexpr size_t kUploadChunk = 256 * 1024;
constexpr size_t kSmallBody = 64 * 1024;  // sent in one piece with the request head
constexpr size_t kMaxHead = 64 * 1024;    // status line and headers; chunk trailers
constexpr size_t kMaxLine = 4096;         // a chunk-size line
constexpr int kMaxInterim = 8;            // 1xx responses before the real one

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The comma-separated tokens of header values, trimmed; they point into `values`.
std::vector<std::string_view> Tokens(const std::vector<std::string>& values) {
  std::vector<std::string_view> out;
  for (const auto& v : values) {
    std::string_view rest = v;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view token = Trim(rest.substr(0, comma));
      if (!token.empty()) out.push_back(token);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return out;
}

std::vector<std::string_view> Tokens(std::vector<std::string>&&) = delete;  // would dangle

std::string ErrnoText(int e) { return std::strerror(e); }

}  // namespace

bool ParseHttpUrl(std::string_view url, HttpUrl* out) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = url.substr(kScheme.size());
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (authority.find('@') != std::string_view::npos) return false;
  // Spaces and control characters would break the request line (or forge headers).
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    return false;
  }

  HttpUrl u;
  std::optional<std::string_view> port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    u.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return false;
  if (port) {
    if (!AllDigits(*port) || port->size() > 5 || std::stoi(std::string(*port)) > 65535) {
      return false;
    }
    u.port = *port;
  }
  u.host_header = authority;
  if (target.empty()) {
    u.target = "/";
  } else if (target.front() == '?') {
    u.target = "/" + std::string(target);
  } else {
    u.target = target;
  }
  *out = std::move(u);
  return true;
}

struct PlainHttpTransport::Connection {
  UniqueFd fd;
  std::string key;
  std::unique_ptr<char[]> buf{new char[kBufferSize]};
  size_t begin = 0, end = 0;  // bytes read and not yet used: buf[begin, end)
};

// One request and its response on one connection. Every method returns false on failure, with
// the response's failure and error set.
class PlainHttpTransport::Exchange {
 public:
  Exchange(const HttpOptions& options, const HttpRequest& req, const HttpUrl& url,
           HttpResponse* resp)
      : options_(options), req_(req), url_(url), resp_(resp) {
    if (req.timeout_s > 0) deadline_ = Clock::now() + std::chrono::seconds(req.timeout_s);
  }

  bool Connect(Connection* c);
  bool Send(Connection* c);
  bool Receive(Connection* c);

  // Nothing at all came back: the connection broke before a response began.
  bool got_nothing() const { return !received_any_ && resp_->failure == HttpFailure::kReset; }
  // The response was read whole and the connection may carry another.
  bool reusable(const Connection& c) const {
    return resp_->transport_ok() && keep_alive_ && c.begin == c.end;
  }

 private:
  bool Fail(HttpFailure failure, std::string message) {
    resp_->failure = failure;
    resp_->error = std::move(message);
    return false;
  }
  long long MillisLeft(long limit_s) const;
  std::string TimedOutText() const {
    return "Operation timed out after " + std::to_string(req_.timeout_s) + " s";
  }
  bool Wait(const Connection& c, short events);
  bool SendAll(Connection* c, const char* data, size_t n);
  bool SendBodyFromReader(Connection* c);
  // Reads more into c->buf (all of it used before): > 0 bytes, 0 at the end, < 0 failed.
  ssize_t Fill(Connection* c);
  bool ReadHead(Connection* c, std::string* head);
  bool ParseHead(std::string_view head);
  bool ReadBody(Connection* c);
  bool ReadExactly(Connection* c, uint64_t n);
  bool ReadChunked(Connection* c);
  bool ReadUntilClose(Connection* c);
  bool ReadLine(Connection* c, std::string* line);
  bool Deliver(const char* data, size_t n);

  const HttpOptions& options_;
  const HttpRequest& req_;
  const HttpUrl& url_;
  HttpResponse* resp_;
  std::optional<Clock::time_point> deadline_;
  bool received_any_ = false;
  bool http11_ = true;
  bool keep_alive_ = false;
  bool streaming_ = false;
};

long long PlainHttpTransport::Exchange::MillisLeft(long limit_s) const {
  long long ms = static_cast<long long>(limit_s) * 1000;
  if (deadline_) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now()).count();
    ms = std::min<long long>(ms, left);
  }
  return ms;
}

bool PlainHttpTransport::Exchange::Wait(const Connection& c, short events) {
  for (;;) {
    long long ms = MillisLeft(options_.stall_timeout_s);
    if (ms > 0) {
      pollfd p{c.fd.get(), events, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<long long>(ms, INT_MAX)));
      if (r > 0) return true;  // ready, or an error the next call reports
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Fail(HttpFailure::kOther, "poll: " + ErrnoText(errno));
    }
    return Fail(HttpFailure::kTimeout,
                deadline_ && Clock::now() >= *deadline_
                    ? TimedOutText()
                    : "no progress for " + std::to_string(options_.stall_timeout_s) + " s");
  }
}

bool PlainHttpTransport::Exchange::Connect(Connection* c) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(url_.host.c_str(), url_.port.c_str(), &hints, &found) != 0 || !found) {
    return Fail(HttpFailure::kResolve, "Could not resolve host: " + url_.host);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  int last_error = ECONNREFUSED;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    UniqueFd fd(socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last_error = errno;
      continue;
    }
    if (connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS && errno != EINTR) {
        last_error = errno;
        continue;
      }
      long long ms = std::min(MillisLeft(options_.connect_timeout_s),
                              static_cast<long long>(options_.connect_timeout_s) * 1000);
      pollfd p{fd.get(), POLLOUT, 0};
      int r = 0;
      do {
        r = ms > 0 ? poll(&p, 1, static_cast<int>(std::min<long long>(ms, INT_MAX))) : 0;
      } while (r < 0 && errno == EINTR);
      int err = 0;
      socklen_t len = sizeof err;
      if (r <= 0) {
        err = ETIMEDOUT;
      } else if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      if (err != 0) {
        last_error = err;
        continue;
      }
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = std::move(fd);
    return true;
  }
  return Fail(
      last_error == ETIMEDOUT ? HttpFailure::kTimeout : HttpFailure::kConnect,
      "Failed to connect to " + url_.host + " port " + url_.port + ": " + ErrnoText(last_error));
}

bool PlainHttpTransport::Exchange::SendAll(Connection* c, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = send(c->fd.get(), data, n, MSG_NOSIGNAL);
    if (w > 0) {
      data += w;
      n -= static_cast<size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!Wait(*c, POLLOUT)) return false;
    } else {
      return Fail(HttpFailure::kReset, "Send failure: " + ErrnoText(errno));
    }
  }
  return true;
}

bool PlainHttpTransport::Exchange::Send(Connection* c) {
  const bool chunked = req_.body_reader && req_.body_size < 0;
  const bool has_body = req_.body_reader || !req_.body.empty() || req_.method == "PUT" ||
                        req_.method == "POST" || req_.method == "PATCH";
  std::string head;
  head.reserve(512);
  head += req_.method + " " + url_.target + " HTTP/1.1\r\nHost: " + url_.host_header +
          "\r\nUser-Agent: " + options_.user_agent + "\r\n";
  bool has_accept = false;
  for (const auto& h : req_.headers) {
    if (h.find_first_of("\r\n") != std::string::npos) {
      return Fail(HttpFailure::kOther, "a request header holds a line break");
    }
    has_accept |= h.size() >= 7 && EqualsIgnoreCase(std::string_view(h).substr(0, 7), "accept:");
    head += h;
    head += "\r\n";
  }
  if (!has_accept) head += "Accept: */*\r\n";
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (has_body) {
    int64_t size = req_.body_reader ? req_.body_size : static_cast<int64_t>(req_.body.size());
    head += "Content-Length: " + std::to_string(size) + "\r\n";
  }
  head += "\r\n";
  if (req_.body_reader) return SendAll(c, head.data(), head.size()) && SendBodyFromReader(c);
  if (req_.body.size() <= kSmallBody) {
    head += req_.body;
    return SendAll(c, head.data(), head.size());
  }
  return SendAll(c, head.data(), head.size()) && SendAll(c, req_.body.data(), req_.body.size());
}

bool PlainHttpTransport::Exchange::SendBodyFromReader(Connection* c) {
  const bool chunked = req_.body_size < 0;
  constexpr size_t kRoom = 16;  // before the data, for a chunk-size line
  std::unique_ptr<char[]> buf(new char[kRoom + kUploadChunk + 2]);
  char* data = buf.get() + kRoom;
  int64_t left = req_.body_size;
  for (;;) {
    size_t want =
        chunked ? kUploadChunk : static_cast<size_t>(std::min<int64_t>(left, kUploadChunk));
    if (want == 0) return true;
    size_t got = req_.body_reader(data, want);
    if (got == HttpRequest::kAbortUpload || got > want) {
      return Fail(HttpFailure::kAborted, "the upload was aborted by its reader");
    }
    if (got == 0) {
      if (chunked) return SendAll(c, "0\r\n\r\n", 5);
      return Fail(HttpFailure::kAborted,
                  "the upload ended " + std::to_string(left) + " bytes short of its size");
    }
    if (chunked) {
      char line[kRoom];
      int len = std::snprintf(line, sizeof line, "%zx\r\n", got);
      std::memcpy(data - len, line, static_cast<size_t>(len));
      std::memcpy(data + got, "\r\n", 2);
      if (!SendAll(c, data - len, static_cast<size_t>(len) + got + 2)) return false;
    } else {
      if (!SendAll(c, data, got)) return false;
      left -= static_cast<int64_t>(got);
    }
  }
}

ssize_t PlainHttpTransport::Exchange::Fill(Connection* c) {
  c->begin = c->end = 0;
  // A server that never pauses never makes Wait() look at the clock: look here too.
  if (deadline_ && Clock::now() >= *deadline_) {
    Fail(HttpFailure::kTimeout, TimedOutText());
    return -1;
  }
  for (;;) {
    ssize_t r = recv(c->fd.get(), c->buf.get(), kBufferSize, 0);
    if (r > 0) {
      received_any_ = true;
      c->end = static_cast<size_t>(r);
      return r;
    }
    if (r == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!Wait(*c, POLLIN)) return -1;
      continue;
    }
    Fail(HttpFailure::kReset, "Recv failure: " + ErrnoText(errno));
    return -1;
  }
}

bool PlainHttpTransport::Exchange::ReadHead(Connection* c, std::string* head) {
  constexpr std::string_view kHttp = "HTTP/";
  head->clear();
  for (;;) {
    if (c->begin == c->end) {
      ssize_t r = Fill(c);
      if (r < 0) return false;
      if (r == 0) {
        return Fail(HttpFailure::kReset, received_any_
                                             ? "the connection closed inside the response headers"
                                             : "Empty reply from server");
      }
    }
    size_t scanned = head->size();
    head->append(c->buf.get() + c->begin, c->end - c->begin);
    // Anything but HTTP (a TLS alert, an SSH banner) is refused at once, not waited out.
    size_t check = std::min(head->size(), kHttp.size());
    if (std::string_view(*head).substr(0, check) != kHttp.substr(0, check)) {
      return Fail(HttpFailure::kProtocol, "the server did not answer in HTTP");
    }
    size_t pos = head->find("\r\n\r\n", scanned >= 3 ? scanned - 3 : 0);
    if (pos != std::string::npos) {
      if (pos + 4 > kMaxHead) break;
      size_t extra = head->size() - (pos + 4);
      c->begin = c->end - extra;
      head->resize(pos + 4);
      return true;
    }
    c->begin = c->end;
    if (head->size() > kMaxHead) break;
  }
  return Fail(HttpFailure::kProtocol, "the response headers are over 64 KiB");
}

bool PlainHttpTransport::Exchange::ParseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK": the reason is optional.
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      !AllDigits(status_line.substr(7, 1)) || status_line[8] != ' ' ||
      !AllDigits(status_line.substr(9, 3)) || (status_line.size() > 12 && status_line[12] != ' ')) {
    return Fail(HttpFailure::kProtocol, "malformed HTTP status line");
  }
  http11_ = status_line[7] != '0';
  resp_->status = std::stol(std::string(status_line.substr(9, 3)));
  if (resp_->status < 100) return Fail(HttpFailure::kProtocol, "malformed HTTP status line");
  resp_->headers.clear();
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {  // an obsolete folded continuation
      if (resp_->headers.empty()) return Fail(HttpFailure::kProtocol, "malformed HTTP header");
      resp_->headers.back().second += " ";
      resp_->headers.back().second += Trim(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      return Fail(HttpFailure::kProtocol, "malformed HTTP header");
    }
    resp_->headers.emplace_back(LowerHeaderName(line.substr(0, colon)),
                                std::string(Trim(line.substr(colon + 1))));
  }
  return true;
}

bool PlainHttpTransport::Exchange::Receive(Connection* c) {
  std::string head;
  for (int interim = 0;; ++interim) {
    if (!ReadHead(c, &head) || !ParseHead(head)) return false;
    if (resp_->status >= 200) break;
    if (resp_->status == 101) return Fail(HttpFailure::kProtocol, "unexpected protocol switch");
    // 100 Continue and other interim responses: the real one follows (soon).
    if (interim == kMaxInterim) return Fail(HttpFailure::kProtocol, "too many 1xx responses");
  }
  return ReadBody(c);
}

bool PlainHttpTransport::Exchange::ReadBody(Connection* c) {
  const long status = resp_->status;
  streaming_ = req_.on_body && status >= 200 && status < 300;
  bool close = !http11_;
  const std::vector<std::string> connection = resp_->Headers("connection");
  for (std::string_view token : Tokens(connection)) {
    close |= EqualsIgnoreCase(token, "close");
  }
  keep_alive_ = !close;
  if (req_.method == "HEAD" || status == 204 || status == 304) return true;

  const std::vector<std::string> encoding_headers = resp_->Headers("transfer-encoding");
  std::vector<std::string_view> encodings = Tokens(encoding_headers);
  if (!encodings.empty()) {
    if (EqualsIgnoreCase(encodings.back(), "chunked")) return ReadChunked(c);
    keep_alive_ = false;
    return ReadUntilClose(c);
  }
  const std::vector<std::string> length_headers = resp_->Headers("content-length");
  std::vector<std::string_view> lengths = Tokens(length_headers);
  if (!length_headers.empty()) {
    if (lengths.empty()) return Fail(HttpFailure::kProtocol, "malformed Content-Length");
    for (std::string_view l : lengths) {
      if (!AllDigits(l) || l.size() > 18 || l != lengths.front()) {
        return Fail(HttpFailure::kProtocol, "malformed Content-Length");
      }
    }
    return ReadExactly(c, std::stoull(std::string(lengths.front())));
  }
  keep_alive_ = false;
  return ReadUntilClose(c);
}

bool PlainHttpTransport::Exchange::Deliver(const char* data, size_t n) {
  if (streaming_) {
    if (!req_.on_body(resp_->status, data, n)) {
      return Fail(HttpFailure::kAborted, "the response body was refused");
    }
    resp_->streamed += static_cast<int64_t>(n);
    return true;
  }
  if (static_cast<int64_t>(resp_->body.size() + n) > req_.max_body) {
    resp_->body_too_large = true;
    return Fail(HttpFailure::kAborted, "response body over the size limit");
  }
  resp_->body.append(data, n);
  return true;
}

bool PlainHttpTransport::Exchange::ReadExactly(Connection* c, uint64_t n) {
  while (n > 0) {
    if (c->begin == c->end) {
      ssize_t r = Fill(c);
      if (r < 0) return false;
      if (r == 0) {
        return Fail(HttpFailure::kPartial,
                    "transfer closed with " + std::to_string(n) + " bytes remaining to read");
      }
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, c->end - c->begin));
    if (!Deliver(c->buf.get() + c->begin, take)) return false;
    c->begin += take;
    n -= take;
  }
  return true;
}

bool PlainHttpTransport::Exchange::ReadUntilClose(Connection* c) {
  for (;;) {
    if (c->begin == c->end) {
      ssize_t r = Fill(c);
      if (r < 0) return false;
      if (r == 0) return true;
    }
    size_t take = c->end - c->begin;
    if (!Deliver(c->buf.get() + c->begin, take)) return false;
    c->begin += take;
  }
}

bool PlainHttpTransport::Exchange::ReadLine(Connection* c, std::string* line) {
  line->clear();
  for (;;) {
    if (c->begin == c->end) {
      ssize_t r = Fill(c);
      if (r < 0) return false;
      if (r == 0) return Fail(HttpFailure::kPartial, "the connection closed inside a chunked body");
    }
    const char* start = c->buf.get() + c->begin;
    size_t avail = c->end - c->begin;
    const void* nl = std::memchr(start, '\n', avail);
    size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) + 1 : avail;
    line->append(start, take);
    c->begin += take;
    if (nl) {
      line->pop_back();
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return true;
    }
    if (line->size() > kMaxLine) return Fail(HttpFailure::kProtocol, "malformed chunked body");
  }
}

bool PlainHttpTransport::Exchange::ReadChunked(Connection* c) {
  std::string line;
  for (;;) {
    if (!ReadLine(c, &line)) return false;
    std::string_view digits = Trim(std::string_view(line).substr(0, line.find(';')));
    if (digits.empty() || digits.size() > 15 ||
        digits.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
      return Fail(HttpFailure::kProtocol, "malformed chunk size in a chunked body");
    }
    uint64_t size = std::stoull(std::string(digits), nullptr, 16);
    if (size == 0) break;
    if (!ReadExactly(c, size) || !ReadLine(c, &line)) return false;
    if (!line.empty()) return Fail(HttpFailure::kProtocol, "malformed chunked body");
  }
  size_t trailers = 0;
  do {
    if (!ReadLine(c, &line)) return false;
    trailers += line.size();
    if (trailers > kMaxHead) return Fail(HttpFailure::kProtocol, "chunked trailers over 64 KiB");
  } while (!line.empty());
  return true;
}

// ---- the transport -----------------------------------------------------------------------

PlainHttpTransport::PlainHttpTransport(HttpOptions options) : options_(std::move(options)) {}

PlainHttpTransport::~PlainHttpTransport() = default;

std::unique_ptr<PlainHttpTransport::Connection> PlainHttpTransport::TakeIdle(
    const std::string& key) {
  for (;;) {
    std::unique_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::find_if(idle_.rbegin(), idle_.rend(),
                             [&](const std::unique_ptr<Connection>& i) { return i->key == key; });
      if (it == idle_.rend()) return nullptr;
      c = std::move(*it);
      idle_.erase(std::next(it).base());
    }
    // An idle connection has nothing to say: readable means closed (or out of step).
    pollfd p{c->fd.get(), POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return c;
  }
}

void PlainHttpTransport::Give(std::unique_ptr<Connection> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() >= kMaxIdle) idle_.erase(idle_.begin());  // the longest idle goes
  idle_.push_back(std::move(c));
}

HttpResponse PlainHttpTransport::Perform(const HttpRequest& req) {
  HttpResponse resp;
  HttpUrl url;
  if (!ParseHttpUrl(req.url, &url)) {
    resp.failure = HttpFailure::kOther;
    resp.error = "not a well-formed http:// URL";
    return resp;
  }
  const std::string key = url.host + " " + url.port;
  for (;;) {
    resp = HttpResponse{};
    Exchange x(options_, req, url, &resp);
    std::unique_ptr<Connection> c = TakeIdle(key);
    const bool reused = c != nullptr;
    if (!c) {
      c = std::make_unique<Connection>();
      c->key = key;
      if (!x.Connect(c.get())) return resp;
    }
    bool ok = x.Send(c.get()) && x.Receive(c.get());
    if (!ok && reused && x.got_nothing() && !req.body_reader) {
      continue;  // closed by the server while idle: again, on another connection
    }
    if (ok && x.reusable(*c)) Give(std::move(c));
    return resp;
  }
}

}  // namespace regfs
