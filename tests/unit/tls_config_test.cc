#include "transports/tls_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "transports/file_util.h"

namespace regfs {
namespace {

class TlsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/regfs-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (const char* old = getenv("REGFS_CERTS_D")) old_env_ = old;
    had_env_ = getenv("REGFS_CERTS_D") != nullptr;
  }
  void TearDown() override {
    if (had_env_) {
      setenv("REGFS_CERTS_D", old_env_.c_str(), 1);
    } else {
      unsetenv("REGFS_CERTS_D");
    }
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(MakeDirs(DirName(dir_ + "/" + name), 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name, text, 0600).ok());
  }

  std::string dir_;
  std::string old_env_;
  bool had_env_ = false;
};

TEST_F(TlsConfigTest, RootsFromTheEnvironmentReplaceTheDefaults) {
  setenv("REGFS_CERTS_D", "/a::/b/c:", 1);
  EXPECT_EQ(CertsDRoots(), (std::vector<std::string>{"/a", "/b/c"}));
  unsetenv("REGFS_CERTS_D");
  auto roots = CertsDRoots();
  ASSERT_GE(roots.size(), 2u);
  EXPECT_EQ(roots[roots.size() - 2], "/etc/containers/certs.d");
  EXPECT_EQ(roots.back(), "/etc/docker/certs.d");
}

TEST_F(TlsConfigTest, TheFirstExistingHostDirectoryWins) {
  ASSERT_TRUE(MakeDirs(dir_ + "/two/127.0.0.1:5000", 0700).ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/three/127.0.0.1:5000", 0700).ok());
  setenv("REGFS_CERTS_D", (dir_ + "/one:" + dir_ + "/two:" + dir_ + "/three").c_str(), 1);
  EXPECT_EQ(CertDirFor("", "127.0.0.1:5000"), dir_ + "/two/127.0.0.1:5000");
  EXPECT_EQ(CertDirFor("", "127.0.0.1:5001"), "");
  // --cert-dir is used as given, without a host component.
  EXPECT_EQ(CertDirFor("/flag/dir", "127.0.0.1:5000"), "/flag/dir");
  auto none = LoadTlsConfigFor("", "127.0.0.1:5001");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  auto empty = LoadTlsConfigFor("", "127.0.0.1:5000");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  ASSERT_NE(*empty, nullptr);
  EXPECT_EQ((*empty)->ca_count(), 0u);
  EXPECT_FALSE((*empty)->has_client_certificate());
}

TEST_F(TlsConfigTest, UnpairedClientFilesAreErrors) {
  Write("a/client.cert", "x");
  auto r = TlsConfig::LoadDir(dir_ + "/a");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing key client.key"), std::string::npos)
      << r.error().message;
  Write("b/client.key", "x");
  r = TlsConfig::LoadDir(dir_ + "/b");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing client certificate client.cert"), std::string::npos)
      << r.error().message;
}

TEST_F(TlsConfigTest, ACrtThatIsNotPemIsAnError) {
  Write("c/ca.crt", "not a certificate\n");
  Write("c/README", "other files are ignored\n");
  auto r = TlsConfig::LoadDir(dir_ + "/c");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ca.crt holds no PEM certificate"), std::string::npos)
      << r.error().message;
}

TEST_F(TlsConfigTest, AMissingDirectoryIsAnError) {
  auto r = TlsConfig::LoadDir(dir_ + "/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, ENOENT);
}

}  // namespace
}  // namespace regfs
