#include "transports/plain_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "transports/http_client.h"

namespace regfs {
namespace {

using Clock = std::chrono::steady_clock;

// ---- HttpUrl -------------------------------------------------------------------------------

HttpUrl MustParse(std::string_view url) {
  HttpUrl out;
  EXPECT_TRUE(ParseHttpUrl(url, &out)) << url;
  return out;
}

TEST(HttpUrlTest, HostPortAndTarget) {
  HttpUrl u = MustParse("http://registry.example:5000/v2/repo/manifests/tag?n=1&last=a");
  EXPECT_EQ(u.host, "registry.example");
  EXPECT_EQ(u.port, "5000");
  EXPECT_EQ(u.host_header, "registry.example:5000");
  EXPECT_EQ(u.target, "/v2/repo/manifests/tag?n=1&last=a");
}

TEST(HttpUrlTest, DefaultPortAndRootTarget) {
  for (const char* url : {"http://registry.example", "http://registry.example/"}) {
    HttpUrl u = MustParse(url);
    EXPECT_EQ(u.host, "registry.example") << url;
    EXPECT_EQ(u.port, "80") << url;
    // The Host header repeats what the URL wrote: no ":80" added.
    EXPECT_EQ(u.host_header, "registry.example") << url;
    EXPECT_EQ(u.target, "/") << url;
  }
}

TEST(HttpUrlTest, Ipv6HostLosesItsBrackets) {
  HttpUrl u = MustParse("http://[::1]:5000/v2/");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "5000");
  EXPECT_EQ(u.host_header, "[::1]:5000");
  EXPECT_EQ(u.target, "/v2/");

  u = MustParse("http://[fe80::1]/x");
  EXPECT_EQ(u.host, "fe80::1");
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.host_header, "[fe80::1]");
  EXPECT_EQ(u.target, "/x");
}

TEST(HttpUrlTest, QueryWithoutPathGetsARootPath) {
  HttpUrl u = MustParse("http://h?q=1");
  EXPECT_EQ(u.host, "h");
  EXPECT_EQ(u.target, "/?q=1");

  u = MustParse("http://h:8080?q=1");
  EXPECT_EQ(u.port, "8080");
  EXPECT_EQ(u.host_header, "h:8080");
  EXPECT_EQ(u.target, "/?q=1");
}

TEST(HttpUrlTest, PortBounds) {
  EXPECT_EQ(MustParse("http://h:65535/").port, "65535");
  EXPECT_EQ(MustParse("http://h:1/").port, "1");
  HttpUrl u;
  EXPECT_FALSE(ParseHttpUrl("http://h:65536/", &u));
}

TEST(HttpUrlTest, RejectsOtherSchemes) {
  for (const char* url : {"https://h/", "ftp://h/", "httpx://h/", "h/x", "//h/", "http:/h/", "",
                          "http:", "unix:///run/x.sock"}) {
    HttpUrl u;
    EXPECT_FALSE(ParseHttpUrl(url, &u)) << url;
  }
}

TEST(HttpUrlTest, RejectsUserinfo) {
  // Credentials never travel in the URL; a URL carrying them is refused, not half-used.
  for (const char* url : {"http://u:p@h/", "http://u@h/", "http://@h/", "http://u:p@h:80/v2/"}) {
    HttpUrl u;
    EXPECT_FALSE(ParseHttpUrl(url, &u)) << url;
  }
}

TEST(HttpUrlTest, RejectsEmptyHost) {
  for (const char* url :
       {"http://", "http:///v2/", "http://:80/", "http://?q=1", "http://[]:80/", "http://::1/"}) {
    HttpUrl u;
    EXPECT_FALSE(ParseHttpUrl(url, &u)) << url;
  }
}

TEST(HttpUrlTest, RejectsBadPort) {
  for (const char* url :
       {"http://h:/", "http://h:", "http://h:abc/", "http://h:80a/", "http://h:-1/",
        "http://h: 80/", "http://h:65536/", "http://h:99999999999999999999/", "http://[::1]:/",
        "http://[::1]:x/", "http://[::1/"}) {
    HttpUrl u;
    EXPECT_FALSE(ParseHttpUrl(url, &u)) << url;
  }
}

TEST(HttpUrlTest, RejectsSpacesAndControlCharacters) {
  // Host and target go verbatim into the request head: CR, LF, a space or a NUL there would
  // split the request line or inject a header.
  for (std::string url : {std::string("http://h/a b"), std::string("http://h/a\r\nX-Injected: 1"),
                          std::string("http://h/?q=\n"), std::string("http://h\r\nX-Injected: 1/"),
                          std::string("http://h h/"), std::string("http://h/a\0b", 12),
                          std::string("http://h/\x7f"), std::string("http://h/\t")}) {
    HttpUrl u;
    EXPECT_FALSE(ParseHttpUrl(url, &u))
        << "target \"" << u.target << "\" host \"" << u.host << "\"";
  }
}

// ---- A scripted loopback server ------------------------------------------------------------

// What the server does with a connection once it has written a step's response.
enum class After {
  kKeep,     // wait for the next request on this connection
  kClose,    // close it (FIN)
  kReset,    // close it with SO_LINGER 0 (RST)
  kStall,    // send nothing more; keep it open until the client goes away
  kTrickle,  // send one more 'a' every 200 ms until the client goes away
  kFlood,    // send 'f' as fast as the client takes it until the client goes away
};

// One request read and answered with raw bytes (so malformed responses are easy).
struct Step {
  std::string response;
  After after = After::kKeep;
};

struct Received {
  int connection = -1;  // which accepted connection, from 0
  std::string method;
  std::string target;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;                                          // decoded when chunked

  int Count(std::string_view name) const {
    return static_cast<int>(std::count_if(headers.begin(), headers.end(),
                                          [&](const auto& h) { return h.first == name; }));
  }
  bool Has(std::string_view name) const { return Count(name) > 0; }
  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// Serves its steps in order, one connection at a time, on a loopback port of its own. A
// connection that the client closes before a whole request leaves the step for the next one;
// with no steps left, connections are held open silently until the client goes away. Reads
// give up after 10 s, a trickle or a flood after 5 s, and the destructor ends every wait.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Step> steps, int family = AF_INET)
      : steps_(std::move(steps)), family_(family) {
    listen_fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) return;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return;
    }
    port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    thread_ = std::thread([this] { Run(); });
  }

  ~ScriptedServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  bool ok() const { return port_ != 0; }
  std::string HostPort() const {
    return (family_ == AF_INET6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
  }
  std::string Url(std::string_view target = "/") const {
    return "http://" + HostPort() + std::string(target);
  }
  int accepts() const { return accepts_; }
  int closes() const { return closes_; }
  std::vector<Received> received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  // Waits (up to 5 s) until the server has closed n connections.
  bool WaitForCloses(int n) const {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (closes_ < n) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  void Run() {
    size_t next = 0;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      const int connection = accepts_++;
      std::string buf;
      bool reset = false;
      // Off the script: hold the connection silently, so that a client looping over new
      // connections fails on its stall timeout instead of spinning.
      if (next == steps_.size()) WaitForPeer(fd, -1);
      while (!stop_ && next < steps_.size()) {
        const Step& step = steps_[next];
        Received r;
        if (!ReadRequest(fd, &buf, &r)) break;  // the client went away: the step waits
        r.connection = connection;
        {
          std::lock_guard<std::mutex> lock(mu_);
          received_.push_back(std::move(r));
        }
        ++next;
        SendAll(fd, step.response);
        if (step.after == After::kKeep) continue;
        if (step.after == After::kReset) reset = true;
        if (step.after == After::kStall) WaitForPeer(fd, -1);
        // Bounded, so that a client ignoring its request timeout fails instead of hanging.
        const auto give_up = Clock::now() + std::chrono::seconds(5);
        if (step.after == After::kTrickle) {
          while (Clock::now() < give_up && SendAll(fd, "a") && !WaitForPeer(fd, 200)) {
          }
        }
        if (step.after == After::kFlood) {
          const std::string block(64 * 1024, 'f');
          while (Clock::now() < give_up && SendAll(fd, block)) {
          }
        }
        break;
      }
      if (reset) {
        linger l{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
      }
      close(fd);
      ++closes_;
    }
  }

  // Appends what the peer sends next; false at EOF, on an error, when stopping or after 10 s.
  bool ReadMore(int fd, std::string* buf) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!stop_ && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char tmp[16384];
      ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
      if (n > 0) {
        buf->append(tmp, static_cast<size_t>(n));
        return true;
      }
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) return false;
    }
    return false;
  }

  bool ReadLine(int fd, std::string* buf, std::string* line) {
    size_t end;
    while ((end = buf->find("\r\n")) == std::string::npos) {
      if (!ReadMore(fd, buf)) return false;
    }
    *line = buf->substr(0, end);
    buf->erase(0, end + 2);
    return true;
  }

  bool ReadBytes(int fd, std::string* buf, size_t n, std::string* out) {
    while (buf->size() < n) {
      if (!ReadMore(fd, buf)) return false;
    }
    out->append(*buf, 0, n);
    buf->erase(0, n);
    return true;
  }

  bool ReadRequest(int fd, std::string* buf, Received* r) {
    size_t end;
    while ((end = buf->find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(fd, buf)) return false;
    }
    std::string head = buf->substr(0, end + 2);
    buf->erase(0, end + 4);
    size_t eol = head.find("\r\n");
    std::string_view line(head.data(), eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == sp2) return false;
    r->method = std::string(line.substr(0, sp1));
    r->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    r->version = std::string(line.substr(sp2 + 1));
    for (size_t pos = eol + 2; pos < head.size();) {
      size_t e = head.find("\r\n", pos);
      std::string_view h(head.data() + pos, e - pos);
      pos = e + 2;
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) return false;
      r->headers.emplace_back(Lower(std::string(h.substr(0, colon))), Trim(h.substr(colon + 1)));
    }
    if (Lower(r->Header("transfer-encoding")).find("chunked") != std::string::npos) {
      for (;;) {
        std::string size_line;
        if (!ReadLine(fd, buf, &size_line)) return false;
        size_t size = 0;
        auto [ptr, ec] =
            std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
        if (ec != std::errc() || ptr == size_line.data()) return false;
        if (size == 0) break;
        std::string crlf;
        if (!ReadBytes(fd, buf, size, &r->body) || !ReadBytes(fd, buf, 2, &crlf)) return false;
      }
      std::string trailer;
      do {
        if (!ReadLine(fd, buf, &trailer)) return false;
      } while (!trailer.empty());
    } else if (r->Has("content-length")) {
      const std::string length = r->Header("content-length");
      size_t size = 0;
      auto [ptr, ec] = std::from_chars(length.data(), length.data() + length.size(), size);
      if (ec != std::errc() || ptr != length.data() + length.size()) return false;
      if (!ReadBytes(fd, buf, size, &r->body)) return false;
    }
    return true;
  }

  bool SendAll(int fd, std::string_view data) {
    while (!data.empty() && !stop_) {
      ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 20);
      } else {
        return false;
      }
    }
    return data.empty();
  }

  // Discards what the peer sends; true once it has closed (or the server stops), false when
  // timeout_ms (-1: none) passed first.
  bool WaitForPeer(int fd, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!stop_) {
      if (timeout_ms >= 0 && Clock::now() >= deadline) return false;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char tmp[4096];
      ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
    return true;
  }

  const std::vector<Step> steps_;
  const int family_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::atomic<int> closes_{0};
  mutable std::mutex mu_;
  std::vector<Received> received_;  // guarded by mu_
  std::thread thread_;
};

// ---- Helpers -------------------------------------------------------------------------------

const char* FailureName(HttpFailure f) {
  switch (f) {
    case HttpFailure::kNone:
      return "kNone";
    case HttpFailure::kResolve:
      return "kResolve";
    case HttpFailure::kConnect:
      return "kConnect";
    case HttpFailure::kTimeout:
      return "kTimeout";
    case HttpFailure::kReset:
      return "kReset";
    case HttpFailure::kPartial:
      return "kPartial";
    case HttpFailure::kTlsHandshake:
      return "kTlsHandshake";
    case HttpFailure::kTlsVerify:
      return "kTlsVerify";
    case HttpFailure::kProtocol:
      return "kProtocol";
    case HttpFailure::kAborted:
      return "kAborted";
    case HttpFailure::kOther:
      return "kOther";
  }
  return "?";
}

std::string Describe(const HttpResponse& r) {
  return "status " + std::to_string(r.status) + ", failure " + FailureName(r.failure) +
         ", error \"" + r.error + "\", body \"" + r.body.substr(0, 200) + "\"";
}

::testing::AssertionResult Succeeded(const HttpResponse& r) {
  if (r.failure == HttpFailure::kNone) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << Describe(r);
}

// The failure expected, with the error text that must come with any failure.
::testing::AssertionResult FailedWith(const HttpResponse& r, HttpFailure want) {
  if (r.failure != want) {
    return ::testing::AssertionFailure() << "want " << FailureName(want) << ", got " << Describe(r);
  }
  if (r.error.empty()) return ::testing::AssertionFailure() << "an empty error with a failure";
  return ::testing::AssertionSuccess();
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Short timeouts so that a test that goes wrong fails in seconds instead of hanging.
HttpOptions TestOptions(long stall_timeout_s = 3) {
  HttpOptions o;
  o.connect_timeout_s = 3;
  o.stall_timeout_s = stall_timeout_s;
  o.user_agent = "plain-http-test/1.0";
  return o;
}

HttpRequest Request(std::string method, std::string url) {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.timeout_s = 10;
  return r;
}

HttpRequest Get(std::string url) { return Request("GET", std::move(url)); }

constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// ---- Requests ------------------------------------------------------------------------------

TEST(PlainHttpTest, GetSendsRequestLineHostAndHeaders) {
  ScriptedServer server(
      {{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "X-Mixed-CASE:   v1  \r\nX-Dup: a\r\nX-Dup: b\r\n"
        "Content-Length: 5\r\n\r\nhello"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Get(server.Url("/v2/repo/manifests/tag?n=1&last=a"));
  req.headers = {"Accept: application/vnd.oci.image.index.v1+json", "Authorization: Bearer tok"};
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "hello");
  EXPECT_EQ(resp.streamed, 0);
  EXPECT_FALSE(resp.body_too_large);
  EXPECT_EQ(resp.Header("content-type"), "application/json");
  EXPECT_EQ(resp.Header("x-mixed-case"), "v1");
  EXPECT_EQ(resp.Headers("x-dup"), (std::vector<std::string>{"a", "b"}));
  for (const auto& [name, value] : resp.headers) EXPECT_EQ(name, LowerHeaderName(name));

  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "GET");
  EXPECT_EQ(got[0].target, "/v2/repo/manifests/tag?n=1&last=a");
  EXPECT_EQ(got[0].version, "HTTP/1.1");
  EXPECT_EQ(got[0].Count("host"), 1);
  EXPECT_EQ(got[0].Header("host"), server.HostPort());
  EXPECT_EQ(got[0].Count("user-agent"), 1);
  EXPECT_EQ(got[0].Header("user-agent"), "plain-http-test/1.0");
  EXPECT_EQ(got[0].Header("accept"), "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(got[0].Header("authorization"), "Bearer tok");
  EXPECT_FALSE(got[0].Has("transfer-encoding"));
  EXPECT_EQ(got[0].body, "");
}

TEST(PlainHttpTest, Ipv6LoopbackUsesBracketedHostHeader) {
  ScriptedServer server({{kOk}}, AF_INET6);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  PlainHttpTransport http(TestOptions());
  HttpResponse resp = http.Perform(Get(server.Url("/v2/")));
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.body, "ok");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/v2/");
  EXPECT_EQ(got[0].Header("host"), server.HostPort());
}

TEST(PlainHttpTest, StringBodySendsContentLength) {
  ScriptedServer server({{"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Request("PUT", server.Url("/v2/r/manifests/t"));
  req.headers = {"Content-Type: application/vnd.oci.image.manifest.v1+json"};
  req.body = "{\"schemaVersion\":2}";
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 201);
  EXPECT_EQ(resp.body, "");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "PUT");
  EXPECT_EQ(got[0].Header("content-length"), std::to_string(req.body.size()));
  EXPECT_FALSE(got[0].Has("transfer-encoding"));
  EXPECT_EQ(got[0].Header("content-type"), "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(got[0].body, req.body);
}

TEST(PlainHttpTest, EmptyBodyPostPutPatchSendContentLengthZero) {
  // Servers may answer 411 Length Required to a body-less POST without Content-Length.
  ScriptedServer server({{kOk}, {kOk}, {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  for (const char* method : {"POST", "PUT", "PATCH"}) {
    EXPECT_TRUE(Succeeded(http.Perform(Request(method, server.Url("/v2/r/blobs/uploads/")))));
  }
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].method, (std::vector<std::string>{"POST", "PUT", "PATCH"})[i]);
    EXPECT_EQ(got[i].Header("content-length"), "0") << got[i].method;
    EXPECT_FALSE(got[i].Has("transfer-encoding")) << got[i].method;
  }
}

TEST(PlainHttpTest, SizedReaderSendsContentLength) {
  ScriptedServer server({{"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"}});
  ASSERT_TRUE(server.ok());
  std::string payload(300000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 % 251);
  size_t offset = 0;
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Request("PATCH", server.Url("/v2/r/blobs/uploads/u1"));
  req.body_size = static_cast<int64_t>(payload.size());
  req.body_reader = [&](char* buf, size_t n) {
    size_t take = std::min(n, payload.size() - offset);
    std::memcpy(buf, payload.data() + offset, take);
    offset += take;
    return take;
  };
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 202);
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Header("content-length"), "300000");
  EXPECT_FALSE(got[0].Has("transfer-encoding"));
  EXPECT_TRUE(got[0].body == payload) << "body of " << got[0].body.size() << " bytes differs";
}

TEST(PlainHttpTest, UnsizedReaderSendsChunkedUntilTheReaderEnds) {
  ScriptedServer server({{"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"}});
  ASSERT_TRUE(server.ok());
  const std::vector<std::string> pieces = {"first,", "second,", std::string(70000, 'z'), "end"};
  size_t piece = 0;
  size_t offset = 0;
  int calls_at_end = 0;
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Request("PATCH", server.Url("/v2/r/blobs/uploads/u1"));
  req.body_size = -1;
  req.body_reader = [&](char* buf, size_t n) -> size_t {
    if (piece == pieces.size()) {
      ++calls_at_end;
      return 0;
    }
    size_t take = std::min(n, pieces[piece].size() - offset);
    std::memcpy(buf, pieces[piece].data() + offset, take);
    offset += take;
    if (offset == pieces[piece].size()) {
      ++piece;
      offset = 0;
    }
    return take;
  };
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 202);
  EXPECT_GE(calls_at_end, 1);
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Lower(got[0].Header("transfer-encoding")), "chunked");
  EXPECT_FALSE(got[0].Has("content-length"));
  EXPECT_TRUE(got[0].body == pieces[0] + pieces[1] + pieces[2] + pieces[3])
      << "body of " << got[0].body.size() << " bytes differs";
}

TEST(PlainHttpTest, ReaderAbortFailsWithAbortedAndLeavesNoBrokenConnection) {
  for (int64_t body_size : {int64_t{10}, int64_t{-1}}) {
    SCOPED_TRACE("body_size " + std::to_string(body_size));
    ScriptedServer server({{kOk}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    int calls = 0;
    HttpRequest req = Request("PUT", server.Url("/upload"));
    req.body_size = body_size;
    req.body_reader = [&](char* buf, size_t n) -> size_t {
      if (++calls > 1) return HttpRequest::kAbortUpload;
      EXPECT_GE(n, 3u);
      std::memcpy(buf, "abc", 3);
      return 3;
    };
    EXPECT_TRUE(FailedWith(http.Perform(req), HttpFailure::kAborted));
    // The half-sent request must not leave its connection for the next request.
    HttpResponse next = http.Perform(Get(server.Url("/after")));
    ASSERT_TRUE(Succeeded(next));
    EXPECT_EQ(next.body, "ok");
    std::vector<Received> got = server.received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].method, "GET");
    EXPECT_EQ(got[0].target, "/after");
  }
}

TEST(PlainHttpTest, UnparsableUrlFailsWithoutConnecting) {
  ScriptedServer server({{kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  for (std::string url : {"http://u:p@" + server.HostPort() + "/",
                          "http://" + server.HostPort() + ":x/", std::string("not a url")}) {
    HttpResponse resp = http.Perform(Get(url));
    EXPECT_NE(resp.failure, HttpFailure::kNone) << url << ": " << Describe(resp);
    EXPECT_FALSE(resp.error.empty()) << url;
  }
  EXPECT_EQ(server.accepts(), 0);
}

// ---- Response framing ----------------------------------------------------------------------

TEST(PlainHttpTest, ContentLengthResponsesKeepTheConnection) {
  ScriptedServer server({{kOk},
                         {"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"},
                         {"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 4\r\n\r\nnope"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpResponse a = http.Perform(Get(server.Url("/a")));
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  HttpResponse c = http.Perform(Get(server.Url("/c")));
  ASSERT_TRUE(Succeeded(a));
  ASSERT_TRUE(Succeeded(b));
  ASSERT_TRUE(Succeeded(c));
  EXPECT_EQ(a.body, "ok");
  EXPECT_EQ(b.body, "abc");
  EXPECT_EQ(c.status, 404);
  EXPECT_EQ(c.body, "nope");
  EXPECT_EQ(server.accepts(), 1);
  for (const Received& r : server.received()) EXPECT_EQ(r.connection, 0) << r.target;
}

TEST(PlainHttpTest, ChunkedResponseWithExtensionsAndTrailers) {
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5;name=value\r\nhello\r\n"
                          "a;x=\"q\"\r\n world 123\r\n"
                          "0\r\nX-Trailer: t\r\n\r\n"},
                         {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpResponse a = http.Perform(Get(server.Url("/chunked")));
  ASSERT_TRUE(Succeeded(a));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "hello world 123");
  // The trailer was consumed: the next response on the same connection reads cleanly.
  HttpResponse b = http.Perform(Get(server.Url("/next")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.body, "ok");
  EXPECT_EQ(server.accepts(), 1);
}

TEST(PlainHttpTest, CloseDelimitedResponseEndsAtCloseAndIsNotReused) {
  ScriptedServer server(
      {{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", After::kClose}, {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpResponse a = http.Perform(Get(server.Url("/a")));
  ASSERT_TRUE(Succeeded(a));
  EXPECT_EQ(a.body, "until the end");
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.body, "ok");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].connection, 1);
}

TEST(PlainHttpTest, ConnectionCloseIsNotReused) {
  // The server keeps the connection open: only the client's own decision opens a new one.
  ScriptedServer server(
      {{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"}, {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpResponse a = http.Perform(Get(server.Url("/a")));
  ASSERT_TRUE(Succeeded(a));
  EXPECT_EQ(a.body, "hi");
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.body, "ok");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].connection, 1);
  EXPECT_EQ(server.accepts(), 2);
}

TEST(PlainHttpTest, NoBodyForHead204And304) {
  // Each response is followed by another on the same connection: reading a body that is not
  // there would eat into it or wait for the stall timeout.
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: x/y\r\n\r\n"},
                         {"HTTP/1.1 204 No Content\r\n\r\n"},
                         {"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\n"},
                         {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/2));
  HttpResponse head = http.Perform(Request("HEAD", server.Url("/v2/r/blobs/sha256:x")));
  ASSERT_TRUE(Succeeded(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.Header("content-length"), "1234");
  HttpResponse del = http.Perform(Request("DELETE", server.Url("/v2/r/manifests/sha256:x")));
  ASSERT_TRUE(Succeeded(del));
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(del.body, "");
  HttpResponse cond = http.Perform(Get(server.Url("/cond")));
  ASSERT_TRUE(Succeeded(cond));
  EXPECT_EQ(cond.status, 304);
  EXPECT_EQ(cond.body, "");
  HttpResponse last = http.Perform(Get(server.Url("/last")));
  ASSERT_TRUE(Succeeded(last));
  EXPECT_EQ(last.body, "ok");
  EXPECT_EQ(server.accepts(), 1);
}

TEST(PlainHttpTest, InterimResponsesAreSkipped) {
  ScriptedServer server({{"HTTP/1.1 100 Continue\r\n\r\n"
                          "HTTP/1.1 201 Created\r\nLocation: /v2/r/blobs/x\r\n"
                          "Content-Length: 4\r\n\r\ndone"},
                         {"HTTP/1.1 100 Continue\r\n\r\n"
                          "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
                          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpRequest put = Request("PUT", server.Url("/v2/r/blobs/uploads/u?digest=sha256:x"));
  put.body = "data";
  HttpResponse a = http.Perform(put);
  ASSERT_TRUE(Succeeded(a));
  EXPECT_EQ(a.status, 201);
  EXPECT_EQ(a.Header("location"), "/v2/r/blobs/x");
  EXPECT_EQ(a.body, "done");
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.body, "ok");
}

TEST(PlainHttpTest, GoTlsServerAnswerToPlainHttpIsAResponse) {
  // What Go's TLS server writes to a client speaking plain HTTP to it, before closing.
  const std::string body = "Client sent an HTTP request to an HTTPS server.\n";
  ScriptedServer server({{"HTTP/1.0 400 Bad Request\r\n\r\n" + body, After::kClose}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpResponse resp = http.Perform(Get(server.Url("/v2/")));
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(resp.body, body);
}

// ---- Streaming and body limits -------------------------------------------------------------

TEST(PlainHttpTest, OnBodyStreamsSuccessfulBodies) {
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"},
                         {"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  for (long want_status : {200L, 206L}) {
    std::string streamed;
    std::vector<long> statuses;
    HttpRequest req = Get(server.Url("/blob"));
    req.on_body = [&](long status, const char* data, size_t n) {
      statuses.push_back(status);
      streamed.append(data, n);
      return true;
    };
    HttpResponse resp = http.Perform(req);
    ASSERT_TRUE(Succeeded(resp));
    EXPECT_EQ(resp.status, want_status);
    EXPECT_EQ(streamed, "hello world");
    EXPECT_EQ(resp.streamed, 11);
    EXPECT_EQ(resp.body, "");
    ASSERT_FALSE(statuses.empty());
    for (long s : statuses) EXPECT_EQ(s, want_status);
  }
}

TEST(PlainHttpTest, OnBodyIsNotLimitedByMaxBody) {
  // max_body bounds kept bodies; a streamed blob goes to its sink whatever its size.
  const std::string blob(100000, 'b');
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + blob}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  size_t total = 0;
  HttpRequest req = Get(server.Url("/blob"));
  req.max_body = 10;
  req.on_body = [&](long, const char*, size_t n) {
    total += n;
    return true;
  };
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_FALSE(resp.body_too_large);
  EXPECT_EQ(total, blob.size());
  EXPECT_EQ(resp.streamed, static_cast<int64_t>(blob.size()));
}

TEST(PlainHttpTest, OnBodyIsNotUsedForErrorBodies) {
  ScriptedServer server({{"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  int calls = 0;
  HttpRequest req = Get(server.Url("/blob"));
  req.on_body = [&](long, const char*, size_t) {
    ++calls;
    return true;
  };
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(resp.body, "not found");
  EXPECT_EQ(resp.streamed, 0);
  EXPECT_EQ(calls, 0);
}

TEST(PlainHttpTest, OnBodyFalseAborts) {
  ScriptedServer server(
      {{"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'x')}, {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Get(server.Url("/blob"));
  req.on_body = [](long, const char*, size_t) { return false; };
  EXPECT_TRUE(FailedWith(http.Perform(req), HttpFailure::kAborted));
  // The rest of the abandoned body must not be read as the next response.
  HttpResponse next = http.Perform(Get(server.Url("/next")));
  ASSERT_TRUE(Succeeded(next));
  EXPECT_EQ(next.body, "ok");
}

TEST(PlainHttpTest, KeptBodyOverMaxBodyFails) {
  const std::string big(100, 'x');
  for (const Step& step : {Step{"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n" + big},
                           Step{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" +
                                big.substr(50) + "\r\n32\r\n" + big.substr(50) + "\r\n0\r\n\r\n"},
                           Step{"HTTP/1.1 200 OK\r\n\r\n" + big, After::kClose}}) {
    SCOPED_TRACE(step.response.substr(0, 50));
    ScriptedServer server({step});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    HttpRequest req = Get(server.Url("/json"));
    req.max_body = 10;
    HttpResponse resp = http.Perform(req);
    EXPECT_TRUE(resp.body_too_large) << Describe(resp);
    EXPECT_NE(resp.failure, HttpFailure::kNone);
    EXPECT_FALSE(resp.error.empty());
  }
}

TEST(PlainHttpTest, KeptBodyAtMaxBodyIsFine) {
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  HttpRequest req = Get(server.Url("/json"));
  req.max_body = 10;
  HttpResponse resp = http.Perform(req);
  ASSERT_TRUE(Succeeded(resp));
  EXPECT_FALSE(resp.body_too_large);
  EXPECT_EQ(resp.body, "0123456789");
}

// ---- Pooled connections --------------------------------------------------------------------

TEST(PlainHttpTest, IdleConnectionClosedByTheServerIsReplaced) {
  ScriptedServer server(
      {{kOk, After::kClose}, {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  ASSERT_TRUE(Succeeded(http.Perform(Get(server.Url("/a")))));
  ASSERT_TRUE(server.WaitForCloses(1));
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.body, "new");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].connection, 1);
}

TEST(PlainHttpTest, ReusedConnectionClosedBeforeAnsweringIsRetried) {
  // The server reads the second request on the pooled connection and closes without answering:
  // a GET may be sent again, on a new connection.
  ScriptedServer server(
      {{kOk}, {"", After::kClose}, {"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  ASSERT_TRUE(Succeeded(http.Perform(Get(server.Url("/a")))));
  HttpResponse b = http.Perform(Get(server.Url("/b")));
  ASSERT_TRUE(Succeeded(b));
  EXPECT_EQ(b.body, "second");
  std::vector<Received> got = server.received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].target, "/b");
  EXPECT_EQ(got[1].connection, 0);
  EXPECT_EQ(got[2].target, "/b");
  EXPECT_EQ(got[2].connection, 1);
}

TEST(PlainHttpTest, RetryOnANewConnectionHappensOnce) {
  // A fresh connection closing before the answer is a real failure, not a stale pool entry.
  ScriptedServer server({{kOk}, {"", After::kClose}, {"", After::kClose}, {kOk}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  ASSERT_TRUE(Succeeded(http.Perform(Get(server.Url("/a")))));
  EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/b"))), HttpFailure::kReset));
  EXPECT_EQ(server.accepts(), 2);
  EXPECT_EQ(server.received().size(), 3u);
}

TEST(PlainHttpTest, PoolKeepsConnectionsPerHostAndPort) {
  ScriptedServer a({{kOk}, {kOk}, {kOk}});
  ScriptedServer b({{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"},
                    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"},
                    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"}});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  PlainHttpTransport http(TestOptions());
  for (int i = 0; i < 3; ++i) {
    HttpResponse ra = http.Perform(Get(a.Url("/a")));
    HttpResponse rb = http.Perform(Get(b.Url("/b")));
    ASSERT_TRUE(Succeeded(ra));
    ASSERT_TRUE(Succeeded(rb));
    EXPECT_EQ(ra.body, "ok");
    EXPECT_EQ(rb.body, "b");
  }
  EXPECT_EQ(a.accepts(), 1);
  EXPECT_EQ(b.accepts(), 1);
}

TEST(PlainHttpTest, ConcurrentRequestsShareOneTransport) {
  // One server per thread: each thread's requests reuse its own connection, never another's.
  constexpr int kThreads = 4;
  constexpr int kRequests = 10;
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  for (int t = 0; t < kThreads; ++t) {
    std::string body = "t" + std::to_string(t);
    servers.push_back(std::make_unique<ScriptedServer>(
        std::vector<Step>(kRequests, Step{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body})));
    ASSERT_TRUE(servers.back()->ok());
  }
  PlainHttpTransport http(TestOptions());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        HttpResponse r = http.Perform(Get(servers[t]->Url("/x")));
        if (r.transport_ok() && r.body == "t" + std::to_string(t)) ++good;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(good, kThreads * kRequests);
  for (const auto& server : servers) EXPECT_EQ(server->accepts(), 1);
}

TEST(PlainHttpTest, KeepsAtMostMaxIdleConnections) {
  // One idle connection to each of kMaxIdle + 1 servers: the longest idle one is closed.
  constexpr size_t kServers = PlainHttpTransport::kMaxIdle + 1;
  std::vector<std::unique_ptr<ScriptedServer>> servers;
  for (size_t i = 0; i < kServers; ++i) {
    servers.push_back(std::make_unique<ScriptedServer>(std::vector<Step>{{kOk}, {kOk}}));
    ASSERT_TRUE(servers.back()->ok());
  }
  PlainHttpTransport http(TestOptions());
  for (const auto& server : servers) ASSERT_TRUE(Succeeded(http.Perform(Get(server->Url("/")))));
  EXPECT_TRUE(servers.front()->WaitForCloses(1));
  for (size_t i = 1; i < kServers; ++i) EXPECT_EQ(servers[i]->closes(), 0) << i;
  // The newest is still pooled; the evicted one needs a new connection.
  ASSERT_TRUE(Succeeded(http.Perform(Get(servers.back()->Url("/")))));
  EXPECT_EQ(servers.back()->accepts(), 1);
  ASSERT_TRUE(Succeeded(http.Perform(Get(servers.front()->Url("/")))));
  EXPECT_EQ(servers.front()->accepts(), 2);
}

// ---- Failures ------------------------------------------------------------------------------

TEST(PlainHttpTest, NobodyListeningIsConnect) {
  // A bound socket that never listens: its port refuses connections and stays ours.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  PlainHttpTransport http(TestOptions());
  HttpResponse resp =
      http.Perform(Get("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v2/"));
  close(fd);
  EXPECT_TRUE(FailedWith(resp, HttpFailure::kConnect));
  EXPECT_EQ(resp.status, 0);
}

TEST(PlainHttpTest, CloseOrResetBeforeAnyResponseIsReset) {
  for (After after : {After::kClose, After::kReset}) {
    SCOPED_TRACE(after == After::kClose ? "close" : "reset");
    ScriptedServer server({{"", after}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    HttpResponse resp = http.Perform(Get(server.Url("/v2/")));
    EXPECT_TRUE(FailedWith(resp, HttpFailure::kReset));
    EXPECT_EQ(resp.status, 0);
  }
}

TEST(PlainHttpTest, TruncatedBodyIsPartial) {
  for (const std::string& response :
       {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(50, 'x'),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc")}) {
    SCOPED_TRACE(response);
    ScriptedServer server({{response, After::kClose}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kPartial));
  }
}

TEST(PlainHttpTest, GarbageStatusLineIsProtocol) {
  // The SSH server keeps the connection open: the complete head is enough to give up.
  for (const Step& step :
       {Step{"SSH-2.0-x\r\n\r\n", After::kStall}, Step{"SSH-2.0-x\r\n\r\n", After::kClose},
        Step{"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", After::kClose}}) {
    SCOPED_TRACE(step.response);
    ScriptedServer server({step});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/v2/"))), HttpFailure::kProtocol));
  }
}

TEST(PlainHttpTest, OversizedHeadersAreProtocol) {
  // 100 KiB of headers that never end, as many lines or as one: the 64 KiB bound stops the read
  // well before the stall timeout.
  std::string many = "HTTP/1.1 200 OK\r\n";
  while (many.size() < 100 * 1024) many += "X-Pad: " + std::string(1000, 'p') + "\r\n";
  const std::string one = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(100 * 1024, 'p');
  for (const std::string& response : {many, one}) {
    ScriptedServer server({{response, After::kStall}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/5));
    const auto start = Clock::now();
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/v2/"))), HttpFailure::kProtocol));
    EXPECT_LT(SecondsSince(start), 3.0);
  }
}

TEST(PlainHttpTest, CompleteOversizedHeadersAreProtocol) {
  // The same bound when the whole 100 KiB head, terminator included, arrives at once.
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() < 100 * 1024) head += "X-Pad: " + std::string(1000, 'p') + "\r\n";
  ScriptedServer server({{head + "Content-Length: 2\r\n\r\nok"}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions());
  EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/v2/"))), HttpFailure::kProtocol));
}

TEST(PlainHttpTest, BadChunkSizeIsProtocol) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& chunks :
       {std::string("zz\r\nhello\r\n0\r\n\r\n"), std::string("\r\nhello\r\n0\r\n\r\n"),
        std::string("-1\r\nhello\r\n0\r\n\r\n"), std::string("0x5\r\nhello\r\n0\r\n\r\n"),
        std::string("FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n")}) {
    SCOPED_TRACE(chunks.substr(0, chunks.find('\r')));
    ScriptedServer server({{head + chunks, After::kStall}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions());
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kProtocol));
  }
}

TEST(PlainHttpTest, EndlessChunkSizeLineIsProtocol) {
  // A chunk-size line is bounded like the headers; this one never ends.
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=" +
                              std::string(100 * 1024, 'e'),
                          After::kStall}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/5));
  const auto start = Clock::now();
  EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kProtocol));
  EXPECT_LT(SecondsSince(start), 3.0);
}

TEST(PlainHttpTest, BadContentLengthIsProtocol) {
  // The server stays silent after the head: a length misread as "none" would wait for a close.
  for (const char* lengths : {"Content-Length: abc", "Content-Length: 12abc", "Content-Length: -1",
                              "Content-Length: 1 1", "Content-Length: 5\r\nContent-Length: 6"}) {
    SCOPED_TRACE(lengths);
    ScriptedServer server(
        {{std::string("HTTP/1.1 200 OK\r\n") + lengths + "\r\n\r\nhello world", After::kStall}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/2));
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kProtocol));
  }
}

TEST(PlainHttpTest, EmptyContentLengthIsProtocol) {
  // Content-Length is 1*DIGIT: an empty value is as malformed as "abc", not an absent header.
  for (const char* lengths : {"Content-Length:", "Content-Length: ", "Content-Length: ,"}) {
    SCOPED_TRACE(lengths);
    ScriptedServer server(
        {{std::string("HTTP/1.1 200 OK\r\n") + lengths + "\r\n\r\nhello world", After::kStall}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/1));
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kProtocol));
  }
}

TEST(PlainHttpTest, StallTimesOut) {
  // Stalled after the headers, or before any byte of a response.
  for (const std::string& response :
       {std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), std::string()}) {
    SCOPED_TRACE(response);
    ScriptedServer server({{response, After::kStall}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/1));
    const auto start = Clock::now();
    EXPECT_TRUE(FailedWith(http.Perform(Get(server.Url("/blob"))), HttpFailure::kTimeout));
    const double took = SecondsSince(start);
    EXPECT_GE(took, 0.8);
    EXPECT_LT(took, 4.0);
  }
}

TEST(PlainHttpTest, RequestTimeoutStopsATrickle) {
  // A byte every 200 ms is progress, so only the request's own limit ends it: in the body, or
  // in a header that never ends.
  for (const std::string& response :
       {std::string("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nX-Slow: ")}) {
    SCOPED_TRACE(response);
    ScriptedServer server({{response, After::kTrickle}});
    ASSERT_TRUE(server.ok());
    PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/5));
    HttpRequest req = Get(server.Url("/blob"));
    req.timeout_s = 1;
    const auto start = Clock::now();
    EXPECT_TRUE(FailedWith(http.Perform(req), HttpFailure::kTimeout));
    const double took = SecondsSince(start);
    EXPECT_GE(took, 0.8);
    EXPECT_LT(took, 3.5);
  }
}

TEST(PlainHttpTest, RequestTimeoutStopsAnEndlessFastStream) {
  // Data always waiting to be read must not keep the request's own limit from firing.
  ScriptedServer server({{"HTTP/1.1 200 OK\r\n\r\n", After::kFlood}});
  ASSERT_TRUE(server.ok());
  PlainHttpTransport http(TestOptions(/*stall_timeout_s=*/5));
  HttpRequest req = Get(server.Url("/blob"));
  req.timeout_s = 1;
  req.on_body = [](long, const char*, size_t) { return true; };
  const auto start = Clock::now();
  HttpResponse resp = http.Perform(req);
  EXPECT_TRUE(FailedWith(resp, HttpFailure::kTimeout));
  EXPECT_GT(resp.streamed, 0);
  const double took = SecondsSince(start);
  EXPECT_GE(took, 0.8);
  EXPECT_LT(took, 3.5);
}

}  // namespace
}  // namespace regfs
