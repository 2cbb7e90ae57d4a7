#include "transports/http/tls_config.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <cstdio>
#include <string>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

class TlsConfigTest : public ::testing::Test {
 protected:
  // The tests set REGFS_CERTS_D as they need; it is restored afterwards.
  void SetUp() override { env_.Unset("REGFS_CERTS_D"); }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(MakeDirs(DirName(dir_ + "/" + name), 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name, text, 0600).ok());
  }

  testing::TempDir tmp_{"regfs-tls"};
  const std::string dir_ = tmp_.path();
  testing::ScopedEnv env_;
};

// A CA and a leaf it signed, made with the openssl command in `dir`; the leaf's PEM.
std::string MakeCaAndLeaf(const std::string& dir) {
  std::string cmd = "cd " + dir +
                    " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                    " -keyout ca.key -out ca.pem -days 2 -subj /CN=regfs-bundle-test-ca"
                    " >/dev/null 2>&1"
                    " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                    " -keyout leaf.key -out leaf.csr -subj /CN=leaf >/dev/null 2>&1"
                    " && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
                    " -out leaf.pem -days 2 >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "";
  auto pem = ReadFileBounded(dir + "/leaf.pem", 1 << 20);
  return pem.ok() ? *pem : "";
}

// Whether the system trust store (as ApplySystemTrust installs it) verifies `leaf_pem`.
bool SystemTrustVerifies(const std::string& leaf_pem) {
  X509StorePtr store = NewSystemTrustStore();
  BIO* bio = BIO_new_mem_buf(leaf_pem.data(), static_cast<int>(leaf_pem.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = store && leaf && ctx && X509_STORE_CTX_init(ctx, store.get(), leaf, nullptr) == 1 &&
            X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_free(leaf);
  return ok;
}

// The bundle is parsed once per process, so each case runs in a child of its own.
TEST_F(TlsConfigTest, AnIssuerMissingFromTheHashedDirectoryIsFoundInTheBundle) {
  std::string leaf = MakeCaAndLeaf(dir_);
  ASSERT_FALSE(leaf.empty());
  ASSERT_TRUE(MakeDirs(dir_ + "/hashed", 0700).ok());
  EXPECT_EXIT(
      {
        setenv("SSL_CERT_DIR", (dir_ + "/hashed").c_str(), 1);
        setenv("SSL_CERT_FILE", (dir_ + "/ca.pem").c_str(), 1);
        std::exit(SystemTrustVerifies(leaf) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("SSL_CERT_DIR", (dir_ + "/hashed").c_str(), 1);
        setenv("SSL_CERT_FILE", (dir_ + "/no-such-bundle.pem").c_str(), 1);
        std::exit(SystemTrustVerifies(leaf) ? 0 : 1);
      },
      ::testing::ExitedWithCode(1), "");
}

TEST_F(TlsConfigTest, AnIssuerInTheHashedDirectoryNeedsNoBundle) {
  std::string leaf = MakeCaAndLeaf(dir_);
  ASSERT_FALSE(leaf.empty());
  ASSERT_TRUE(MakeDirs(dir_ + "/hashed", 0700).ok());
  ASSERT_EQ(std::system(("cp " + dir_ + "/ca.pem " + dir_ + "/hashed/ && openssl rehash " + dir_ +
                         "/hashed >/dev/null 2>&1")
                            .c_str()),
            0);
  EXPECT_EXIT(
      {
        setenv("SSL_CERT_DIR", (dir_ + "/hashed").c_str(), 1);
        setenv("SSL_CERT_FILE", (dir_ + "/no-such-bundle.pem").c_str(), 1);
        std::exit(SystemTrustVerifies(leaf) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

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
