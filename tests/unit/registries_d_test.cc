#include "transports/config/registries_d.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr char kDigest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

RegistriesD Config(const std::string& yaml) {
  RegistriesD c;
  Status s = c.Merge(yaml, "test.yaml");
  EXPECT_TRUE(s.ok()) << s.error().message;
  return c;
}

DockerReference Ref(const std::string& s) {
  auto r = ParseDockerReference(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : DockerReference{};
}

void Write(const std::string& path, const std::string& text) {
  Status s = WriteFileAtomic(path, text, 0644);
  ASSERT_TRUE(s.ok()) << s.error().message;
}

TEST(RegistriesDTest, ScopesAreTriedFromTheMostSpecific) {
  EXPECT_EQ(RegistriesDScopes(Ref("reg.example.com:5000/ns/repo:v1")),
            (std::vector<std::string>{"reg.example.com:5000/ns/repo:v1",
                                      "reg.example.com:5000/ns/repo", "reg.example.com:5000/ns",
                                      "reg.example.com:5000", "*.example.com", "*.com"}));
  EXPECT_EQ(
      RegistriesDScopes(Ref("busybox")),
      (std::vector<std::string>{"docker.io/library/busybox:latest", "docker.io/library/busybox",
                                "docker.io/library", "docker.io", "*.io"}));
  EXPECT_EQ(RegistriesDScopes(Ref(std::string("localhost/a@") + kDigest)),
            (std::vector<std::string>{std::string("localhost/a@") + kDigest, "localhost/a",
                                      "localhost"}));
}

TEST(RegistriesDTest, MostSpecificScopeWins) {
  RegistriesD c = Config(R"(
default-docker:
  lookaside: file:///default
docker:
  example.com:
    lookaside: https://host.example/sigs
  example.com/ns:
    lookaside: https://ns.example/sigs
  example.com/ns/repo:
    lookaside: https://repo.example/sigs
  example.com/ns/repo:v1:
    lookaside: https://tag.example/sigs
  "*.example.org":
    lookaside: https://wild.example/sigs
)");
  EXPECT_EQ(c.For(Ref("example.com/ns/repo:v1")).lookaside, "https://tag.example/sigs");
  EXPECT_EQ(c.For(Ref("example.com/ns/repo:v2")).lookaside, "https://repo.example/sigs");
  EXPECT_EQ(c.For(Ref("example.com/ns/other")).lookaside, "https://ns.example/sigs");
  EXPECT_EQ(c.For(Ref("example.com/x/y")).lookaside, "https://host.example/sigs");
  EXPECT_EQ(c.For(Ref("reg.example.org:5000/a/b")).lookaside, "https://wild.example/sigs");
  EXPECT_EQ(c.For(Ref("quay.io/a/b")).lookaside, "file:///default");
  // A scope names whole path components only.
  EXPECT_EQ(c.For(Ref("example.com/nsx/repo")).lookaside, "https://host.example/sigs");
  EXPECT_TRUE(c.For(Ref("example.com/ns/repo")).lookaside_staging.empty());
}

TEST(RegistriesDTest, EachKeyFallsBackToLessSpecificScopes) {
  RegistriesD c = Config(R"(
default-docker:
  lookaside-staging: file:///staging
  use-sigstore-attachments: true
docker:
  example.com:
    lookaside: https://host.example/sigs
    use-sigstore-attachments: false
  example.com/ns:
    use-sigstore-attachments: yes
)");
  SignatureStorage s = c.For(Ref("example.com/ns/repo"));
  EXPECT_EQ(s.lookaside, "https://host.example/sigs");
  // The write location is the first scope's that has one: example.com's lookaside, before
  // default-docker's staging (as containers/image resolves it).
  EXPECT_EQ(s.WriteUrl(), "https://host.example/sigs");
  EXPECT_EQ(s.use_sigstore_attachments, std::optional<bool>(true));
  EXPECT_EQ(c.For(Ref("example.com/other")).use_sigstore_attachments, std::optional<bool>(false));

  SignatureStorage d = c.For(Ref("quay.io/a"));
  EXPECT_EQ(d.lookaside_staging, "file:///staging");
  EXPECT_EQ(d.WriteUrl(), "file:///staging");
  EXPECT_EQ(d.use_sigstore_attachments, std::optional<bool>(true));
}

TEST(RegistriesDTest, LegacySigstoreKeys) {
  RegistriesD c = Config(R"(
docker:
  old.example:
    sigstore: https://old.example/sigs
    sigstore-staging: file:///old-staging
  both.example:
    lookaside: https://new.example/sigs
    sigstore: https://ignored.example/sigs
    lookaside-staging: file:///new-staging
    sigstore-staging: file:///ignored
)");
  SignatureStorage old = c.For(Ref("old.example/a"));
  EXPECT_EQ(old.lookaside, "https://old.example/sigs");
  EXPECT_EQ(old.lookaside_staging, "file:///old-staging");
  SignatureStorage both = c.For(Ref("both.example/a"));
  EXPECT_EQ(both.lookaside, "https://new.example/sigs");
  EXPECT_EQ(both.lookaside_staging, "file:///new-staging");
}

TEST(RegistriesDTest, BuiltinDefaultWhenNothingIsConfigured) {
  if (geteuid() == 0) {
    EXPECT_EQ(RegistriesD().For(Ref("a.example/b")).lookaside,
              "file:///var/lib/containers/sigstore");
    return;
  }
  testing::ScopedEnv env("HOME", "/home/someone");
  SignatureStorage s = RegistriesD().For(Ref("a.example/b"));
  EXPECT_EQ(s.lookaside, "file:///home/someone/.local/share/containers/sigstore");
  EXPECT_TRUE(s.lookaside_staging.empty());
  EXPECT_FALSE(s.use_sigstore_attachments.has_value());
  // A scope without locations falls through to the default too.
  RegistriesD c = Config("docker:\n  a.example:\n    use-sigstore-attachments: false\n");
  EXPECT_EQ(c.For(Ref("a.example/b")).lookaside,
            "file:///home/someone/.local/share/containers/sigstore");
}

TEST(RegistriesDTest, LoadsEveryYamlFileOfTheDirectory) {
  testing::TempDir tmp("regfs-registries-d");
  Write(tmp.Sub("a.yaml"), "docker:\n  a.example:\n    lookaside: file:///a\n");
  Write(tmp.Sub("b.yaml"), "default-docker:\n  lookaside: file:///b\n");
  Write(tmp.Sub("c.yml"), "this is: [not read");
  Write(tmp.Sub("README"), "docker:\n  a.example:\n    lookaside: file:///x\n");
  auto c = RegistriesD::Load(tmp.path());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->For(Ref("a.example/r")).lookaside, "file:///a");
  EXPECT_EQ(c->For(Ref("other.example/r")).lookaside, "file:///b");
}

TEST(RegistriesDTest, MissingDirectoryIsEmpty) {
  testing::TempDir tmp("regfs-registries-d");
  auto c = RegistriesD::Load(tmp.Sub("nope"));
  ASSERT_TRUE(c.ok()) << c.error().message;
}

TEST(RegistriesDTest, DefaultDirectoryPrefersTheUsersOwn) {
  testing::TempDir tmp("regfs-registries-d");
  testing::ScopedEnv env("HOME", tmp.path());
  ASSERT_TRUE(MakeDirs(tmp.Sub(".config/containers/registries.d"), 0755).ok());
  Write(tmp.Sub(".config/containers/registries.d/u.yaml"),
        "default-docker:\n  lookaside: https://user.example/sigs\n");
  auto c = RegistriesD::Load("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->For(Ref("x.example/y")).lookaside, "https://user.example/sigs");
}

TEST(RegistriesDTest, ScopeInTwoFilesIsAnError) {
  testing::TempDir tmp("regfs-registries-d");
  Write(tmp.Sub("a.yaml"), "docker:\n  a.example:\n    lookaside: file:///a\n");
  Write(tmp.Sub("b.yaml"), "docker:\n  a.example:\n    lookaside: file:///b\n");
  auto c = RegistriesD::Load(tmp.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().errnum, EINVAL);
  EXPECT_NE(c.error().message.find("\"a.example\""), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(tmp.Sub("a.yaml")), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(tmp.Sub("b.yaml")), std::string::npos) << c.error().message;
}

TEST(RegistriesDTest, DefaultDockerInTwoFilesIsAnError) {
  RegistriesD c = Config("default-docker:\n  lookaside: file:///a\n");
  Status s = c.Merge("default-docker:\n  lookaside: file:///b\n", "second.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("default-docker"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("second.yaml"), std::string::npos) << s.error().message;
  // A file that fails changes nothing.
  EXPECT_FALSE(c.Merge("docker:\n  new.example: {}\ndefault-docker: {}\n", "third.yaml").ok());
  EXPECT_TRUE(c.Merge("docker:\n  new.example: {}\n", "fourth.yaml").ok());
}

TEST(RegistriesDTest, MalformedFilesAreRefused) {
  for (const char* yaml : {
           "docker: [a, b]\n",
           "default-docker: just a string\n",
           "docker:\n  a.example:\n    lookaside: [x]\n",
           "docker:\n  a.example:\n    use-sigstore-attachments: maybe\n",
           "docker:\n  a.example: {}\n  a.example: {}\n",
           "- a list\n",
           "docker: {\n",
       }) {
    RegistriesD c;
    Status s = c.Merge(yaml, "bad.yaml");
    EXPECT_FALSE(s.ok()) << yaml;
    if (!s.ok()) {
      EXPECT_EQ(s.error().errnum, EINVAL) << yaml;
      EXPECT_NE(s.error().message.find("bad.yaml"), std::string::npos) << s.error().message;
    }
  }
  // Unknown keys are ignored, as yaml.v3 ignores unknown fields; an empty file is fine.
  EXPECT_TRUE(RegistriesD().Merge("other: 1\ndocker:\n  a.example:\n    x: y\n", "ok").ok());
  EXPECT_TRUE(RegistriesD().Merge("", "empty").ok());
}

TEST(RegistriesDTest, LookasideUrlLayout) {
  const std::string hex = std::string(kDigest).substr(7);
  EXPECT_EQ(LookasideSignatureUrl("file:///var/sigs", Ref("busybox"), kDigest, 0),
            "file:///var/sigs/library/busybox@sha256=" + hex + "/signature-1");
  EXPECT_EQ(LookasideSignatureUrl("https://sigs.example/base", Ref("example.com:5000/a/b:v1"),
                                  kDigest, 2),
            "https://sigs.example/base/a/b@sha256=" + hex + "/signature-3");
  EXPECT_EQ(LookasideSignatureUrl("https://sigs.example", Ref("example.com/a"), kDigest, 0),
            "https://sigs.example/a@sha256=" + hex + "/signature-1");
  EXPECT_EQ(
      LookasideSignatureUrl("https://sigs.example/x?token=1", Ref("example.com/a"), kDigest, 0),
      "https://sigs.example/x/a@sha256=" + hex + "/signature-1?token=1");
}

}  // namespace
}  // namespace regfs
