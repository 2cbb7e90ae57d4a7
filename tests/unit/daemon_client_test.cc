#include "transports/daemon/daemon_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"  // UniqueFd

namespace regfs {
namespace {

// An engine that fails on purpose, on a unix socket: it answers each connection's requests, in
// order, with the canned responses it was given (whole HTTP responses), and records each
// request's first line.
class CannedEngine {
 public:
  CannedEngine(const std::string& socket, std::vector<std::string> responses)
      : responses_(std::move(responses)) {
    listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socket.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listener_.get(), 4), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedEngine() {
    shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  const std::vector<std::string>& request_lines() const { return lines_; }

 private:
  void Serve() {
    size_t next = 0;
    while (next < responses_.size()) {
      UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) return;
      // One request per connection is enough here: answers say "Connection: close".
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(conn.get(), buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      lines_.push_back(request.substr(0, request.find("\r\n")));
      const std::string& response = responses_[next++];
      // MSG_NOSIGNAL: a client that stops reading (a body over its limit) must not SIGPIPE us.
      for (size_t off = 0; off < response.size();) {
        ssize_t n = send(conn.get(), response.data() + off, response.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    }
  }

  std::vector<std::string> responses_;
  std::vector<std::string> lines_;  // written by the thread; read after it ended
  UniqueFd listener_;
  std::thread thread_;
};

std::string Response(const std::string& status, const std::string& headers,
                     const std::string& body) {
  return "HTTP/1.1 " + status +
         "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         headers + "\r\n" + body;
}

TEST(ParseDaemonHostTest, UnixSocket) {
  auto h = ParseDaemonHost("unix:///var/run/docker.sock");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->unix_socket, "/var/run/docker.sock");
  EXPECT_EQ(h->base_url, "http://docker");
  EXPECT_EQ(h->given, "unix:///var/run/docker.sock");
}

TEST(ParseDaemonHostTest, TcpIsTlsAndHttpIsPlain) {
  // As containers/image: tcp:// gets a TLS client, http:// none.
  auto tcp = ParseDaemonHost("tcp://127.0.0.1:2376");
  ASSERT_TRUE(tcp.ok()) << tcp.error().message;
  EXPECT_EQ(tcp->base_url, "https://127.0.0.1:2376");
  EXPECT_EQ(tcp->unix_socket, "");
  auto http = ParseDaemonHost("http://127.0.0.1:2375/");
  ASSERT_TRUE(http.ok()) << http.error().message;
  EXPECT_EQ(http->base_url, "http://127.0.0.1:2375");
  auto https = ParseDaemonHost("https://[::1]:2376");
  ASSERT_TRUE(https.ok()) << https.error().message;
  EXPECT_EQ(https->base_url, "https://[::1]:2376");
}

TEST(ParseDaemonHostTest, RefusesOtherForms) {
  for (const char* bad : {"", "/var/run/docker.sock", "unix://relative.sock", "unix://",
                          "npipe:////./pipe/docker_engine", "ssh://user@host", "tcp://",
                          "http://host:2375/v1.41", "ftp://host"}) {
    auto h = ParseDaemonHost(bad);
    ASSERT_FALSE(h.ok()) << bad;
    EXPECT_EQ(h.error().errnum, EINVAL) << bad;
    EXPECT_NE(h.error().message.find("daemon host"), std::string::npos) << h.error().message;
  }
  auto long_path = ParseDaemonHost("unix:///" + std::string(200, 'x'));
  ASSERT_FALSE(long_path.ok());
  EXPECT_NE(long_path.error().message.find("too long"), std::string::npos);
}

TEST(DaemonHostFromTest, FlagThenDockerHostThenDefault) {
  testing::ScopedEnv env;
  env.Unset("DOCKER_HOST");
  EXPECT_EQ(DaemonHostFrom(""), kDefaultDaemonHost);
  env.Set("DOCKER_HOST", "unix:///run/user/1000/docker.sock");
  EXPECT_EQ(DaemonHostFrom(""), "unix:///run/user/1000/docker.sock");
  EXPECT_EQ(DaemonHostFrom("tcp://127.0.0.1:2376"), "tcp://127.0.0.1:2376");
}

TEST(DaemonClientTest, AnEngineThatIsNotThereIsNamedAndDoesNotHang) {
  auto host = ParseDaemonHost("unix:///nonexistent-dir/docker.sock");
  ASSERT_TRUE(host.ok());
  DaemonClient client(*host, std::make_shared<HttpClient>());
  auto r = client.InspectImage("busybox:latest");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot connect to the Docker daemon at "
                                   "unix:///nonexistent-dir/docker.sock"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("Is the docker daemon running?"), std::string::npos);
}

TEST(DaemonClientTest, NegotiatesTheEnginesOlderVersionAndMapsItsErrors) {
  testing::TempDir tmp("regfs-daemon");
  const std::string sock = tmp.Sub("engine.sock");
  std::vector<std::string> lines;
  {
    CannedEngine engine(sock, {Response("200 OK", "Api-Version: 1.25\r\n", "OK"),
                               Response("404 Not Found", "Content-Type: application/json\r\n",
                                        R"({"message":"No such image: team/app:v1"})"),
                               Response("500 Internal Server Error", "", "not json\n")});
    DaemonClient client(*ParseDaemonHost("unix://" + sock), std::make_shared<HttpClient>());
    auto missing = client.InspectImage("team/app:v1");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().errnum, ENOENT);
    EXPECT_NE(missing.error().message.find("Error response from daemon: No such image: "
                                           "team/app:v1"),
              std::string::npos)
        << missing.error().message;
    auto broken = client.InspectImage("sha256:abc");
    ASSERT_FALSE(broken.ok());
    EXPECT_EQ(broken.error().errnum, EIO);
    EXPECT_NE(broken.error().message.find("Error response from daemon: not json"),
              std::string::npos)
        << broken.error().message;
    lines = engine.request_lines();
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"GET /_ping HTTP/1.1",
                                             "GET /v1.25/images/team/app%3Av1/json HTTP/1.1",
                                             "GET /v1.25/images/sha256%3Aabc/json HTTP/1.1"}));
}

TEST(DaemonClientTest, AnEngineWithoutAVersionIsSpokenToIn124AndBodiesAreBounded) {
  testing::TempDir tmp("regfs-daemon");
  const std::string sock = tmp.Sub("engine.sock");
  std::vector<std::string> lines;
  {
    CannedEngine engine(
        sock, {Response("200 OK", "", "OK"), Response("200 OK", "", std::string(5 << 20, ' '))});
    DaemonClient client(*ParseDaemonHost("unix://" + sock), std::make_shared<HttpClient>());
    auto huge = client.InspectImage("team/app:v1");
    ASSERT_FALSE(huge.ok());
    EXPECT_EQ(huge.error().errnum, EFBIG) << huge.error().message;
    lines = engine.request_lines();
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "GET /v1.24/images/team/app%3Av1/json HTTP/1.1");
}

}  // namespace
}  // namespace regfs
