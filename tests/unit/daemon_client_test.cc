#include "transports/daemon/daemon_client.h"

#include <gtest/gtest.h>

#include "tests/unit/testing/scoped_env.h"

namespace regfs {
namespace {

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

}  // namespace
}  // namespace regfs
