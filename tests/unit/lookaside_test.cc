#include "transports/docker/lookaside.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr char kDigest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

DockerReference Ref(const std::string& s) {
  auto r = ParseDockerReference(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : DockerReference{};
}

// Bytes that start as an OpenPGP packet does.
std::string Pgp(const std::string& rest) { return "\x89" + rest; }

Signature Simple(const std::string& bytes) {
  Signature s;
  s.format = Signature::Format::kSimpleSigning;
  s.simple_signing = bytes;
  return s;
}

Signature Sigstore(const std::string& payload) {
  Signature s;
  s.format = Signature::Format::kSigstore;
  s.mime_type = "application/vnd.dev.cosign.simplesigning.v1+json";
  s.payload = payload;
  s.annotations["dev.cosignproject.cosign/signature"] = "MEUCIQ==";
  return s;
}

std::string SigDir(const testing::TempDir& tmp) {
  return tmp.Sub("sigs/ns/repo@sha256=" + std::string(kDigest).substr(7));
}

// A one-thread HTTP/1.0-style server on 127.0.0.1: GET of a path in `files` is a 200 with its
// bytes, anything else a 404 (or `status` for every request when set). One request per
// connection.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::map<std::string, std::string> files) : files_(std::move(files)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  TinyHttpServer(const TinyHttpServer&) = delete;
  TinyHttpServer& operator=(const TinyHttpServer&) = delete;
  ~TinyHttpServer() {
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/sigs"; }
  void set_status(int status) { status_ = status; }
  std::vector<std::string> paths() {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_;
  }

 private:
  void Serve() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      size_t sp1 = req.find(' ');
      size_t sp2 = sp1 == std::string::npos ? sp1 : req.find(' ', sp1 + 1);
      std::string path = sp2 == std::string::npos ? "" : req.substr(sp1 + 1, sp2 - sp1 - 1);
      {
        std::lock_guard<std::mutex> lock(mu_);
        paths_.push_back(path);
      }
      auto it = files_.find(path);
      const int forced = status_.load();
      int status = forced != 0 ? forced : it != files_.end() ? 200 : 404;
      std::string body = status == 200 && it != files_.end() ? it->second : "not here";
      std::string resp =
          "HTTP/1.1 " + std::to_string(status) +
          " X\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
          body;
      (void)WriteAll(c, resp.data(), resp.size(), "socket");
      close(c);
    }
  }

  std::map<std::string, std::string> files_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> status_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> paths_;
};

TEST(LookasideTest, WritesAndReadsBackFileSignatures) {
  testing::TempDir tmp("regfs-lookaside");
  const std::string base = "file://" + tmp.Sub("sigs");
  std::vector<Signature> sigs = {Simple("\x89openpgp-one"), Sigstore("{\"a\":1}"),
                                 Simple("\xa3two")};
  Status w = WriteLookasideSignatures(base, Ref("example.com/ns/repo:v1"), kDigest, sigs);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(PathExists(SigDir(tmp) + "/signature-1"));
  EXPECT_TRUE(PathExists(SigDir(tmp) + "/signature-3"));
  auto one = ReadFileBounded(SigDir(tmp) + "/signature-1", 1 << 20);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, "\x89openpgp-one");  // simple signing: the bare OpenPGP message

  HttpClient http;
  auto back = ReadLookasideSignatures(http, base, Ref("example.com/ns/repo:v1"), kDigest);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, sigs);
}

TEST(LookasideTest, ShorterListRemovesStaleSignatures) {
  testing::TempDir tmp("regfs-lookaside");
  const std::string base = "file://" + tmp.Sub("sigs");
  DockerReference ref = Ref("example.com/ns/repo");
  ASSERT_TRUE(WriteLookasideSignatures(base, ref, kDigest,
                                       {Simple(Pgp("a")), Simple(Pgp("b")), Simple(Pgp("c"))})
                  .ok());
  ASSERT_TRUE(WriteLookasideSignatures(base, ref, kDigest, {Simple("\x89new")}).ok());
  EXPECT_TRUE(PathExists(SigDir(tmp) + "/signature-1"));
  EXPECT_FALSE(PathExists(SigDir(tmp) + "/signature-2"));
  EXPECT_FALSE(PathExists(SigDir(tmp) + "/signature-3"));
  HttpClient http;
  auto back = ReadLookasideSignatures(http, base, ref, kDigest);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, std::vector<Signature>{Simple("\x89new")});
  // No signatures: nothing is touched, as containers/image does.
  ASSERT_TRUE(WriteLookasideSignatures(base, ref, kDigest, {}).ok());
  EXPECT_TRUE(PathExists(SigDir(tmp) + "/signature-1"));
}

TEST(LookasideTest, ReadingStopsAtTheFirstMissing) {
  testing::TempDir tmp("regfs-lookaside");
  ASSERT_TRUE(MakeDirs(SigDir(tmp), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(SigDir(tmp) + "/signature-1", "\x89one", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(SigDir(tmp) + "/signature-3", "\x89three", 0644).ok());
  HttpClient http;
  auto back =
      ReadLookasideSignatures(http, "file://" + tmp.Sub("sigs"), Ref("a.example/ns/repo"), kDigest);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, std::vector<Signature>{Simple("\x89one")});
  // Nothing there at all is no signatures.
  auto none =
      ReadLookasideSignatures(http, "file://" + tmp.Sub("nothing"), Ref("a.example/x"), kDigest);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST(LookasideTest, RefusesBadInput) {
  testing::TempDir tmp("regfs-lookaside");
  HttpClient http;
  const std::string base = "file://" + tmp.Sub("sigs");
  DockerReference ref = Ref("a.example/ns/repo");
  // A file that is not a signature.
  ASSERT_TRUE(MakeDirs(SigDir(tmp), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(SigDir(tmp) + "/signature-1", "<html>", 0644).ok());
  auto bad = ReadLookasideSignatures(http, base, ref, kDigest);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, EINVAL);
  EXPECT_NE(bad.error().message.find("signature-1"), std::string::npos) << bad.error().message;
  // Too big.
  ASSERT_TRUE(WriteFileAtomic(SigDir(tmp) + "/signature-1",
                              std::string(kMaxSignatureSize + 1, '\x89'), 0644)
                  .ok());
  auto big = ReadLookasideSignatures(http, base, ref, kDigest);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().errnum, EFBIG);
  // A digest that is not one is never made a path.
  EXPECT_EQ(ReadLookasideSignatures(http, base, ref, "sha256:../../etc").error().errnum, EINVAL);
  EXPECT_EQ(WriteLookasideSignatures(base, ref, "sha256:../x", {Simple("\x89")}).error().errnum,
            EINVAL);
  // Writing goes to a local staging directory only.
  Status http_write =
      WriteLookasideSignatures("https://sigs.example/x", ref, kDigest, {Simple("\x89")});
  ASSERT_FALSE(http_write.ok());
  EXPECT_EQ(http_write.error().errnum, EOPNOTSUPP);
  EXPECT_NE(http_write.error().message.find("lookaside-staging"), std::string::npos);
  EXPECT_EQ(WriteLookasideSignatures("ftp://x/y", ref, kDigest, {Simple("\x89")}).error().errnum,
            EOPNOTSUPP);
  EXPECT_EQ(ReadLookasideSignatures(http, "ftp://x/y", ref, kDigest).error().errnum, EOPNOTSUPP);
}

TEST(LookasideTest, ReadsOverHttpUntilA404) {
  const std::string dir = "/sigs/ns/repo@sha256=" + std::string(kDigest).substr(7);
  const std::string sigstore_blob = SignatureBlob(Sigstore("{}"));
  TinyHttpServer server({{dir + "/signature-1", "\x89one"},
                         {dir + "/signature-2", sigstore_blob},
                         {dir + "/signature-4", Pgp("four")}});
  HttpClient http;
  auto back = ReadLookasideSignatures(http, server.base(), Ref("a.example/ns/repo"), kDigest);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, (std::vector<Signature>{Simple("\x89one"), Sigstore("{}")}));
  EXPECT_EQ(server.paths(), (std::vector<std::string>{dir + "/signature-1", dir + "/signature-2",
                                                      dir + "/signature-3"}));
  // Another status is an error, not the end of the list.
  server.set_status(500);
  auto failed = ReadLookasideSignatures(http, server.base(), Ref("a.example/ns/repo"), kDigest);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().errnum, EIO);
  EXPECT_NE(failed.error().message.find("500"), std::string::npos) << failed.error().message;
}

}  // namespace
}  // namespace regfs
