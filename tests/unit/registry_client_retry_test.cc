// RegistryClient's retries against a registry on a loopback port that goes away and comes back
// on the same port: a refused connection is retried, and a blob read's retry window
// (RegistryOptions::blob_retry_seconds) waits for a restart that retry_times alone would not.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "transports/docker/registry_client.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"  // UniqueFd

namespace regfs {
namespace {

using Clock = std::chrono::steady_clock;

// A registry serving one blob over plain HTTP on 127.0.0.1, one request per connection
// ("Connection: close"), which can be stopped (its port then refuses connections) and started
// again on the same port.
class RestartableRegistry {
 public:
  explicit RestartableRegistry(std::string blob)
      : blob_(std::move(blob)), digest_(DigestOf(blob_)) {}
  ~RestartableRegistry() { Stop(); }

  // Listens on `port` (0: a free one); false when it cannot.
  bool Start(int port = 0) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int on = 1;
    setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    if (listen(listener_.get(), 16) != 0) return false;
    socklen_t len = sizeof(addr);
    getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
    return true;
  }
  void Stop() {
    if (!listener_.valid()) return;
    shutdown(listener_.get(), SHUT_RDWR);  // wakes accept()
    thread_.join();
    listener_ = UniqueFd();
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& digest() const { return digest_; }
  int blob_requests() const { return blob_requests_; }

 private:
  void Serve() {
    while (true) {
      UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(conn.get(), buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
        if (request[0] != 'G' && request[0] != 'H') break;  // a TLS hello: not spoken here
      }
      Send(conn.get(), Answer(request));
    }
  }

  std::string Answer(const std::string& request) {
    if (request.rfind("GET /v2/ ", 0) == 0) return Response("200 OK", "", "{}");
    if (request.rfind("GET /v2/app/blobs/" + digest_ + " ", 0) != 0) {
      return Response("400 Bad Request", "", "");
    }
    ++blob_requests_;
    size_t from = 0, to = blob_.size() - 1;
    size_t at = request.find("\r\nRange: bytes=");
    if (at == std::string::npos) return Response("200 OK", "", blob_);
    from = std::stoull(request.substr(at + 15));
    size_t dash = request.find('-', at + 15);
    if (dash + 1 < request.size() && std::isdigit(static_cast<unsigned char>(request[dash + 1]))) {
      to = std::min<size_t>(to, std::stoull(request.substr(dash + 1)));
    }
    return Response("206 Partial Content",
                    "Content-Range: bytes " + std::to_string(from) + "-" + std::to_string(to) +
                        "/" + std::to_string(blob_.size()) + "\r\n",
                    blob_.substr(from, to - from + 1));
  }

  static std::string Response(const std::string& status, const std::string& headers,
                              const std::string& body) {
    return "HTTP/1.1 " + status +
           "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
           headers + "\r\n" + body;
  }

  static void Send(int fd, const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  const std::string blob_;
  const std::string digest_;
  UniqueFd listener_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> blob_requests_{0};
};

class RegistryClientRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Over 1 MiB: streamed, as the mount's ranges are.
    for (int i = 0; blob_.size() < (2 << 20); ++i) blob_ += std::to_string(i) + " ";
    server_ = std::make_unique<RestartableRegistry>(blob_);
    ASSERT_TRUE(server_->Start());
  }

  // A client with no count of retries: only the window (if any) retries.
  std::shared_ptr<RegistryClient> Client(int window_seconds) {
    RegistryOptions o;
    o.retry_times = 0;
    o.blob_retry_seconds = window_seconds;
    return std::make_shared<RegistryClient>(server_->host(), o, std::make_shared<HttpClient>());
  }

  Status Read(RegistryClient& c, std::string* out) {
    out->clear();
    return c.GetBlobRange("app", server_->digest(), 0, -1, static_cast<int64_t>(blob_.size()),
                          [&](const char* data, size_t n) {
                            out->append(data, n);
                            return Ok();
                          });
  }

  std::string blob_;
  std::unique_ptr<RestartableRegistry> server_;
};

TEST_F(RegistryClientRetryTest, ABlobReadWaitsWithinItsWindowForARegistryRestartedOnItsPort) {
  auto client = Client(10);
  std::string got;
  Status first = Read(*client, &got);  // settles the endpoint
  ASSERT_TRUE(first.ok()) << first.error().message;
  const int port = server_->port();
  server_->Stop();  // the port refuses connections now
  std::thread back([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(server_->Start(port));
  });
  auto t0 = Clock::now();
  Status s = Read(*client, &got);
  auto waited = Clock::now() - t0;
  back.join();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(got == blob_);
  EXPECT_GE(waited, std::chrono::milliseconds(900));  // it did meet the refused port
  EXPECT_LT(waited, std::chrono::seconds(5));         // and went on within 2 s of the restart
}

TEST_F(RegistryClientRetryTest, ARegistryAwayForLongerThanTheWindowFailsSoonAfterIt) {
  auto client = Client(2);
  std::string got;
  ASSERT_TRUE(Read(*client, &got).ok());
  server_->Stop();
  auto t0 = Clock::now();
  Status s = Read(*client, &got);
  auto waited = Clock::now() - t0;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, EHOSTUNREACH) << s.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(1900));  // retried, briskly, to the window's end
  EXPECT_LE(waited, std::chrono::seconds(4));
}

TEST_F(RegistryClientRetryTest, WithoutAWindowARefusedConnectionUsesRetryTimesAlone) {
  RegistryOptions o;
  o.retry_times = 2;  // 250 ms, then 500 ms
  auto client =
      std::make_shared<RegistryClient>(server_->host(), o, std::make_shared<HttpClient>());
  std::string got;
  ASSERT_TRUE(Read(*client, &got).ok());
  const int port = server_->port();
  server_->Stop();
  std::thread back([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(server_->Start(port));
  });
  Status s = Read(*client, &got);  // back before the second retry: a refusal was retried
  back.join();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(got == blob_);
  server_->Stop();
  auto t0 = Clock::now();
  Status gone = Read(*client, &got);
  ASSERT_FALSE(gone.ok());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));  // two retries, no window
}

}  // namespace
}  // namespace regfs
