#include "transports/config/auth_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using testing::ScopedEnv;
using testing::TempDir;

// base64("user:pass"), base64("alice:s3cr:et"), base64("nocolon").
constexpr char kUserPass[] = "dXNlcjpwYXNz";
constexpr char kAlice[] = "YWxpY2U6czNjcjpldA==";
constexpr char kNoColon[] = "bm9jb2xvbg==";

std::string B64(const std::string& plain) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < plain.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(plain[i]) << 16) |
                 (static_cast<unsigned char>(plain[i + 1]) << 8) |
                 static_cast<unsigned char>(plain[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t rest = plain.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(plain[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(plain[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string AuthsFile(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out = R"({"auths":{)";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ",";
    out += "\"" + entries[i].first + "\":" + entries[i].second;
  }
  return out + "}}";
}

std::string AuthEntry(const std::string& b64) { return R"({"auth":")" + b64 + R"("})"; }

std::optional<Credentials> MustLookupIn(std::string_view contents, std::string_view registry,
                                        std::string_view repository) {
  auto r = LookupCredentialsIn(contents, registry, repository);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::nullopt;
}

// ---- --creds ----------------------------------------------------------------------------------

TEST(ParseCredsFlagTest, UserAndPassword) {
  auto c = ParseCredsFlag("user:pass");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pass");
  EXPECT_EQ(c->identity_token, "");
}

TEST(ParseCredsFlagTest, PasswordMayHoldColonsOrBeEmpty) {
  auto c = ParseCredsFlag("user:pa:ss:");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pa:ss:");

  auto empty = ParseCredsFlag("user:");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(empty->username, "user");
  EXPECT_EQ(empty->password, "");
}

TEST(ParseCredsFlagTest, Malformed) {
  for (const char* bad : {"", "user", ":pass", ":"}) {
    auto c = ParseCredsFlag(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().errnum, EINVAL) << bad;
  }
}

// ---- One file's contents ----------------------------------------------------------------------

TEST(LookupCredentialsInTest, HostKey) {
  auto c = MustLookupIn(AuthsFile({{"quay.io", AuthEntry(kUserPass)}}), "quay.io", "ns/app");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pass");
  EXPECT_EQ(c->identity_token, "");
}

TEST(LookupCredentialsInTest, NoEntryIsNullopt) {
  const std::string file = AuthsFile({{"quay.io", AuthEntry(kUserPass)}});
  EXPECT_FALSE(MustLookupIn(file, "docker.io", "library/busybox").has_value());
  EXPECT_FALSE(MustLookupIn(file, "quay.io:5000", "ns/app").has_value());
  EXPECT_FALSE(MustLookupIn(file, "quay", "ns/app").has_value());
  EXPECT_FALSE(MustLookupIn(R"({"auths":{}})", "quay.io", "ns/app").has_value());
  EXPECT_FALSE(MustLookupIn("{}", "quay.io", "ns/app").has_value());
}

TEST(LookupCredentialsInTest, HostWithPortIsItsOwnKey) {
  const std::string file =
      AuthsFile({{"localhost:5000", AuthEntry(kUserPass)}, {"localhost", AuthEntry(kAlice)}});
  auto c = MustLookupIn(file, "localhost:5000", "app");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
  auto other = MustLookupIn(file, "localhost", "app");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->username, "alice");
}

TEST(LookupCredentialsInTest, MostSpecificKeyWins) {
  const std::string file = AuthsFile({{"quay.io", AuthEntry(B64("host:h"))},
                                      {"quay.io/ns", AuthEntry(B64("ns:n"))},
                                      {"quay.io/ns/app", AuthEntry(B64("repo:r"))},
                                      {"quay.io/n", AuthEntry(B64("prefix:p"))}});
  auto repo = MustLookupIn(file, "quay.io", "ns/app");
  ASSERT_TRUE(repo.has_value());
  EXPECT_EQ(repo->username, "repo");

  auto ns = MustLookupIn(file, "quay.io", "ns/other");
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(ns->username, "ns");

  auto deeper = MustLookupIn(file, "quay.io", "ns/app/sub");
  ASSERT_TRUE(deeper.has_value());
  EXPECT_EQ(deeper->username, "repo");

  // "quay.io/n" is not a prefix of namespace "ns": components match whole.
  auto host = MustLookupIn(file, "quay.io", "nsx/app");
  ASSERT_TRUE(host.has_value());
  EXPECT_EQ(host->username, "host");

  // An entry for another registry never matches, even with the same path.
  EXPECT_FALSE(MustLookupIn(file, "quay.io.evil.com", "ns/app").has_value());
}

TEST(LookupCredentialsInTest, NamespaceKeyWithoutHostKey) {
  const std::string file = AuthsFile({{"quay.io/ns", AuthEntry(kUserPass)}});
  EXPECT_TRUE(MustLookupIn(file, "quay.io", "ns/app").has_value());
  EXPECT_FALSE(MustLookupIn(file, "quay.io", "other/app").has_value());
}

TEST(LookupCredentialsInTest, LegacyDockerHubKeys) {
  for (const char* key :
       {"https://index.docker.io/v1/", "index.docker.io", "http://index.docker.io",
        "https://registry-1.docker.io/v2/", "docker.io"}) {
    const std::string file = AuthsFile({{key, AuthEntry(kUserPass)}});
    auto c = MustLookupIn(file, "docker.io", "library/busybox");
    ASSERT_TRUE(c.has_value()) << key;
    EXPECT_EQ(c->username, "user") << key;
    EXPECT_EQ(c->password, "pass") << key;
  }
}

TEST(LookupCredentialsInTest, SchemeAndPathAreStrippedFromLegacyKeys) {
  const std::string file = AuthsFile({{"https://quay.io/v1/", AuthEntry(kUserPass)}});
  auto c = MustLookupIn(file, "quay.io", "ns/app");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
}

TEST(LookupCredentialsInTest, LegacyDockercfgFormatWithoutAuths) {
  const std::string file = R"({"https://index.docker.io/v1/":{"auth":")" + std::string(kUserPass) +
                           R"(","email":"x@example.com"}})";
  auto c = MustLookupIn(file, "docker.io", "library/busybox");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
}

TEST(LookupCredentialsInTest, PasswordWithColonsAndPadding) {
  auto c = MustLookupIn(AuthsFile({{"r.example", AuthEntry(kAlice)}}), "r.example", "a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "s3cr:et");

  for (const std::string plain : {"u:p", "u:p1", "u:p12", "u:", "a:\xff\x01"}) {
    auto d = MustLookupIn(AuthsFile({{"r.example", AuthEntry(B64(plain))}}), "r.example", "a");
    ASSERT_TRUE(d.has_value()) << plain;
    EXPECT_EQ(d->username + ":" + d->password, plain);
  }
}

TEST(LookupCredentialsInTest, OtherFieldsAreIgnored) {
  const std::string file = R"({"auths":{"r.example":{"auth":")" + std::string(kUserPass) +
                           R"(","email":"a@b"}},"credHelpers":{"x.example":"helper"},)"
                           R"("HttpHeaders":{"X":"y"}})";
  auto c = MustLookupIn(file, "r.example", "a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
}

TEST(LookupCredentialsInTest, BadBase64IsAnError) {
  for (const char* bad : {"!!!!", "dXNlcjpwYXN", "dXNl cjpw", "====", "dXNlcjpwYXNz=="}) {
    auto r = LookupCredentialsIn(AuthsFile({{"r.example", AuthEntry(bad)}}), "r.example", "a");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().errnum, EINVAL) << bad;
      EXPECT_NE(r.error().message.find("r.example"), std::string::npos) << r.error().message;
    }
  }
}

TEST(LookupCredentialsInTest, NoColonIsAnError) {
  auto r = LookupCredentialsIn(AuthsFile({{"r.example", AuthEntry(kNoColon)}}), "r.example", "a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EINVAL);
  // The message must not leak the decoded secret.
  EXPECT_EQ(r.error().message.find("nocolon"), std::string::npos) << r.error().message;
}

TEST(LookupCredentialsInTest, BrokenEntryForAnotherRegistryDoesNotMatter) {
  const std::string file =
      AuthsFile({{"bad.example", AuthEntry("!!!!")}, {"r.example", AuthEntry(kUserPass)}});
  auto c = MustLookupIn(file, "r.example", "a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
}

TEST(LookupCredentialsInTest, IdentityTokenOnly) {
  auto c = MustLookupIn(AuthsFile({{"r.example", R"({"identitytoken":"refresh-123"})"}}),
                        "r.example", "a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "");
  EXPECT_EQ(c->password, "");
  EXPECT_EQ(c->identity_token, "refresh-123");
}

TEST(LookupCredentialsInTest, IdentityTokenWithAuth) {
  auto c = MustLookupIn(
      AuthsFile({{"r.example", R"({"auth":")" + B64("user:") + R"(","identitytoken":"tok"})"}}),
      "r.example", "a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->identity_token, "tok");
}

TEST(LookupCredentialsInTest, EmptyCredentialHelperMarkerIsNoCredentials) {
  // Docker writes "auths": {"<host>": {}} when a credential helper (credsStore) holds the secret;
  // containers/image treats such an entry as no credentials, not as a broken file.
  const std::string file = R"({"auths":{"https://index.docker.io/v1/":{}},"credsStore":"desktop"})";
  auto r = LookupCredentialsIn(file, "docker.io", "library/busybox");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->has_value());
}

TEST(LookupCredentialsInTest, WrongJsonTypesAreErrorsNotExceptions) {
  for (const std::string entry : {R"({"auth":5})", R"({"auth":null})", R"({"identitytoken":7})",
                                  R"("dXNlcjpwYXNz")", R"([])"}) {
    Result<std::optional<Credentials>> r = MakeError(0, "");
    EXPECT_NO_THROW(r = LookupCredentialsIn(AuthsFile({{"r.example", entry}}), "r.example", "a"))
        << entry;
    EXPECT_FALSE(r.ok() && r->has_value() && !(*r)->username.empty()) << entry;
  }
}

TEST(LookupCredentialsInTest, NotJson) {
  for (const char* bad :
       {"", "not json", "{", "[]", "\"auths\"", R"({"auths":[]})", R"({"auths":"x"})"}) {
    auto r = LookupCredentialsIn(bad, "r.example", "a");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL) << bad;
  }
}

// ---- The search path ------------------------------------------------------------------------

TEST(AuthFileSearchPathTest, AuthfileFlagAlone) {
  ScopedEnv env;
  env.Set("REGISTRY_AUTH_FILE", "/env/auth.json");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath("/flag/auth.json"), std::vector<std::string>{"/flag/auth.json"});
}

TEST(AuthFileSearchPathTest, RegistryAuthFileAlone) {
  ScopedEnv env;
  env.Set("REGISTRY_AUTH_FILE", "/env/auth.json");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""), std::vector<std::string>{"/env/auth.json"});
}

TEST(AuthFileSearchPathTest, DefaultOrder) {
  ScopedEnv env;
  env.Unset("REGISTRY_AUTH_FILE");
  env.Unset("DOCKER_CONFIG");
  env.Unset("XDG_CONFIG_HOME");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""), (std::vector<std::string>{
                                        "/run/user/1000/containers/auth.json",
                                        "/home/u/.config/containers/auth.json",
                                        "/home/u/.docker/config.json",
                                        "/home/u/.dockercfg",
                                    }));
}

TEST(AuthFileSearchPathTest, XdgConfigHome) {
  ScopedEnv env;
  env.Unset("REGISTRY_AUTH_FILE");
  env.Unset("DOCKER_CONFIG");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  env.Set("XDG_CONFIG_HOME", "/cfg");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""), (std::vector<std::string>{
                                        "/run/user/1000/containers/auth.json",
                                        "/cfg/containers/auth.json",
                                        "/home/u/.docker/config.json",
                                        "/home/u/.dockercfg",
                                    }));
}

TEST(AuthFileSearchPathTest, NoXdgRuntimeDir) {
  ScopedEnv env;
  env.Unset("REGISTRY_AUTH_FILE");
  env.Unset("XDG_RUNTIME_DIR");
  env.Unset("XDG_CONFIG_HOME");
  env.Unset("DOCKER_CONFIG");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""),
            (std::vector<std::string>{
                "/run/containers/" + std::to_string(getuid()) + "/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json",
                "/home/u/.dockercfg",
            }));
}

TEST(AuthFileSearchPathTest, EmptyVariablesCountAsUnset) {
  ScopedEnv env;
  env.Set("REGISTRY_AUTH_FILE", "");
  env.Set("XDG_RUNTIME_DIR", "");
  env.Set("XDG_CONFIG_HOME", "");
  env.Set("DOCKER_CONFIG", "");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""),
            (std::vector<std::string>{
                "/run/containers/" + std::to_string(getuid()) + "/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json",
                "/home/u/.dockercfg",
            }));
}

TEST(AuthFileSearchPathTest, DockerConfigNamesTheDockerDirectory) {
  ScopedEnv env;
  env.Unset("REGISTRY_AUTH_FILE");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  env.Unset("XDG_CONFIG_HOME");
  env.Set("DOCKER_CONFIG", "/dcfg");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(AuthFileSearchPath(""), (std::vector<std::string>{
                                        "/run/user/1000/containers/auth.json",
                                        "/home/u/.config/containers/auth.json",
                                        "/dcfg/config.json",
                                        "/home/u/.dockercfg",
                                    }));
}

TEST(AuthFileWritePathTest, Order) {
  ScopedEnv env;
  env.Set("REGISTRY_AUTH_FILE", "/env/auth.json");
  env.Set("XDG_RUNTIME_DIR", "/run/user/1000");
  EXPECT_EQ(AuthFileWritePath("/flag.json"), "/flag.json");
  EXPECT_EQ(AuthFileWritePath(""), "/env/auth.json");
  env.Unset("REGISTRY_AUTH_FILE");
  EXPECT_EQ(AuthFileWritePath(""), "/run/user/1000/containers/auth.json");
  env.Unset("XDG_RUNTIME_DIR");
  EXPECT_EQ(AuthFileWritePath(""), "/run/containers/" + std::to_string(getuid()) + "/auth.json");
}

TEST(NormalizeLoginKeyTest, Forms) {
  EXPECT_EQ(*NormalizeLoginKey("quay.io"), "quay.io");
  EXPECT_EQ(*NormalizeLoginKey("https://Quay.IO/"), "quay.io");
  EXPECT_EQ(*NormalizeLoginKey("127.0.0.1:5000/ns/app"), "127.0.0.1:5000/ns/app");
  EXPECT_EQ(*NormalizeLoginKey("index.docker.io"), "docker.io");
  EXPECT_EQ(*NormalizeLoginKey("[::1]:5000"), "[::1]:5000");
  for (const char* bad : {"", "/ns", "bad host", "host/UPPER", "host//x", "host:port"}) {
    EXPECT_FALSE(NormalizeLoginKey(bad).ok()) << bad;
  }
}

TEST(CredentialHelperInTest, CredHelpersBeforeCredsStore) {
  const char* text = R"({"credHelpers":{"a.io":"pass"},"credsStore":"secretservice"})";
  HelperChoice a = CredentialHelperIn(text, "a.io");
  EXPECT_EQ(a.helper, "pass");
  EXPECT_FALSE(a.from_store);
  HelperChoice b = CredentialHelperIn(text, "b.io");
  EXPECT_EQ(b.helper, "secretservice");
  EXPECT_TRUE(b.from_store);
  EXPECT_EQ(CredentialHelperIn(R"({"auths":{}})", "a.io").helper, "");
  EXPECT_EQ(CredentialHelperIn("not json", "a.io").helper, "");
}

// ---- Lookup over real files -----------------------------------------------------------------

class LookupCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.Unset("REGISTRY_AUTH_FILE");
    env_.Set("XDG_RUNTIME_DIR", dir_ + "/run");
    env_.Set("XDG_CONFIG_HOME", dir_ + "/config");
    env_.Set("HOME", dir_ + "/home");
  }
  void Write(const std::string& rel, const std::string& contents) {
    std::string path = dir_ + "/" + rel;
    ASSERT_TRUE(MakeDirs(DirName(path), 0700).ok());
    std::ofstream(path) << contents;
  }
  std::string RuntimeAuth() const { return "run/containers/auth.json"; }
  std::string ConfigAuth() const { return "config/containers/auth.json"; }
  std::string DockerConfig() const { return "home/.docker/config.json"; }
  std::string Dockercfg() const { return "home/.dockercfg"; }

  TempDir tmp_{"regfs-auth-test"};
  const std::string dir_ = tmp_.path();
  ScopedEnv env_;
};

TEST_F(LookupCredentialsTest, NoFilesIsNoCredentials) {
  auto r = LookupCredentials("", "quay.io", "ns/app");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->has_value());
}

TEST_F(LookupCredentialsTest, FirstFileWithAnEntryWins) {
  Write(RuntimeAuth(), AuthsFile({{"other.example", AuthEntry(B64("runtime:x"))}}));
  Write(ConfigAuth(), AuthsFile({{"quay.io", AuthEntry(B64("config:x"))}}));
  Write(DockerConfig(), AuthsFile({{"quay.io/ns/app", AuthEntry(B64("docker:x"))}}));
  auto r = LookupCredentials("", "quay.io", "ns/app");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  // A host entry in an earlier file beats a more specific entry in a later one.
  EXPECT_EQ((*r)->username, "config");

  auto other = LookupCredentials("", "other.example", "a");
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(other->has_value());
  EXPECT_EQ((*other)->username, "runtime");
}

TEST_F(LookupCredentialsTest, MissingFilesAreSkipped) {
  Write(Dockercfg(),
        R"({"https://index.docker.io/v1/":{"auth":")" + B64("legacy:pw") + R"(","email":"e"}})");
  auto r = LookupCredentials("", "docker.io", "library/busybox");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "legacy");
  EXPECT_EQ((*r)->password, "pw");
}

TEST_F(LookupCredentialsTest, UnparsableFileIsAnErrorNamingIt) {
  Write(ConfigAuth(), "{ this is not json");
  Write(DockerConfig(), AuthsFile({{"quay.io", AuthEntry(kUserPass)}}));
  auto r = LookupCredentials("", "quay.io", "ns/app");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EINVAL);
  EXPECT_NE(r.error().message.find(dir_ + "/" + ConfigAuth()), std::string::npos)
      << r.error().message;
}

TEST_F(LookupCredentialsTest, UnparsableFileAfterAMatchIsNotRead) {
  Write(RuntimeAuth(), AuthsFile({{"quay.io", AuthEntry(kUserPass)}}));
  Write(ConfigAuth(), "garbage");
  auto r = LookupCredentials("", "quay.io", "ns/app");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "user");
}

TEST_F(LookupCredentialsTest, AuthfileFlagIsTheOnlyFileSearched) {
  Write(RuntimeAuth(), AuthsFile({{"quay.io", AuthEntry(B64("runtime:x"))}}));
  Write("flag.json", AuthsFile({{"r.example", AuthEntry(B64("flag:x"))}}));
  auto hit = LookupCredentials(dir_ + "/flag.json", "r.example", "a");
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->username, "flag");

  auto miss = LookupCredentials(dir_ + "/flag.json", "quay.io", "ns/app");
  ASSERT_TRUE(miss.ok()) << miss.error().message;
  EXPECT_FALSE(miss->has_value());

  // A missing --authfile is skipped like any other missing file.
  auto missing = LookupCredentials(dir_ + "/nope.json", "quay.io", "ns/app");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
}

TEST_F(LookupCredentialsTest, RegistryAuthFileEnvironment) {
  Write("env.json", AuthsFile({{"quay.io", AuthEntry(B64("env:x"))}}));
  Write(RuntimeAuth(), AuthsFile({{"quay.io", AuthEntry(B64("runtime:x"))}}));
  env_.Set("REGISTRY_AUTH_FILE", dir_ + "/env.json");
  auto r = LookupCredentials("", "quay.io", "ns/app");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "env");
}

TEST_F(LookupCredentialsTest, DirectoryInPlaceOfAFileIsAnError) {
  ASSERT_TRUE(MakeDirs(dir_ + "/" + ConfigAuth(), 0700).ok());
  auto r = LookupCredentials("", "quay.io", "ns/app");
  EXPECT_FALSE(r.ok());
}

// ---- Credential helpers (a stand-in runner; the real protocol is exercised by the
// integration suite with a docker-credential-* program on $PATH) ----------------------------

struct FakeHelper {
  std::map<std::string, std::string> answers;  // "helper action input" → stdout
  std::vector<std::string> calls;
  HelperRunner Runner() {
    return [this](const std::string& helper, const std::string& action,
                  const std::string& input) -> Result<std::string> {
      std::string call = helper + " " + action + " " + input;
      calls.push_back(call);
      auto it = answers.find(call);
      if (it == answers.end()) {
        return MakeError(ENODATA, "docker-credential-" + helper + " " + action +
                                      " failed: credentials not found in native keychain");
      }
      return it->second;
    };
  }
};

TEST_F(LookupCredentialsTest, CredHelpersEntryAsksTheHelper) {
  Write(RuntimeAuth(), R"({"auths":{"quay.io":{"auth":")" + std::string(kUserPass) +
                           R"("}},"credHelpers":{"quay.io":"fake"}})");
  FakeHelper fake;
  fake.answers["fake get quay.io"] =
      R"({"ServerURL":"quay.io","Username":"helped","Secret":"s3cret"})";
  auto r = LookupCredentials("", "quay.io", "ns/app", fake.Runner());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "helped");
  EXPECT_EQ((*r)->password, "s3cret");
}

TEST_F(LookupCredentialsTest, HelperTokenUsernameMeansAnIdentityToken) {
  Write(RuntimeAuth(), R"({"credHelpers":{"quay.io":"fake"}})");
  FakeHelper fake;
  fake.answers["fake get quay.io"] = R"({"Username":"<token>","Secret":"refresh-me"})";
  auto r = LookupCredentials("", "quay.io", "ns/app", fake.Runner());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "");
  EXPECT_EQ((*r)->identity_token, "refresh-me");
}

TEST_F(LookupCredentialsTest, HelperWithoutCredentialsMovesOnToTheNextFile) {
  Write(RuntimeAuth(), R"({"credHelpers":{"quay.io":"fake"}})");
  Write(ConfigAuth(), AuthsFile({{"quay.io", AuthEntry(B64("config:x"))}}));
  FakeHelper fake;
  auto r = LookupCredentials("", "quay.io", "ns/app", fake.Runner());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "config");
  EXPECT_EQ(fake.calls, std::vector<std::string>{"fake get quay.io"});
}

TEST_F(LookupCredentialsTest, CredsStoreIsAskedWhenAuthsHasNothing) {
  Write(DockerConfig(), R"({"auths":{"quay.io":{},"b.io":{"auth":")" + std::string(kUserPass) +
                            R"("}},"credsStore":"store"})");
  FakeHelper fake;
  fake.answers["store get quay.io"] = R"({"Username":"stored","Secret":"pw"})";
  auto r = LookupCredentials("", "quay.io", "x", fake.Runner());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->username, "stored");
  auto b = LookupCredentials("", "b.io", "x", fake.Runner());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)->username, "user");  // an "auths" entry is used without asking the store
  EXPECT_EQ(fake.calls, std::vector<std::string>{"store get quay.io"});
}

TEST_F(LookupCredentialsTest, AHelperThatFailsIsAnError) {
  Write(RuntimeAuth(), R"({"credHelpers":{"quay.io":"broken"}})");
  HelperRunner broken = [](const std::string&, const std::string&,
                           const std::string&) -> Result<std::string> {
    return MakeError(ENOENT, "cannot run credential helper docker-credential-broken");
  };
  auto r = LookupCredentials("", "quay.io", "x", broken);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("docker-credential-broken"), std::string::npos);
}

// ---- Writing ---------------------------------------------------------------------------------

TEST_F(LookupCredentialsTest, StoreCreatesAPrivateFileAndKeepsOtherContents) {
  const std::string path = dir_ + "/new/dir/auth.json";
  FakeHelper fake;
  ASSERT_TRUE(StoreCredentials(path, "quay.io/ns", {"u", "p:w", ""}, fake.Runner()).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/new/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto text = ReadFileBounded(path, 1 << 20);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "{\n\t\"auths\": {\n\t\t\"quay.io/ns\": {\n\t\t\t\"auth\": \"" + B64("u:p:w") +
                       "\"\n\t\t}\n\t}\n}");

  Write("keep.json", R"({"auths":{"a.io":{"auth":"x"}},"credHelpers":{},"other":1})");
  ASSERT_TRUE(StoreCredentials(dir_ + "/keep.json", "b.io", {"u", "p", ""}, fake.Runner()).ok());
  auto kept = ReadFileBounded(dir_ + "/keep.json", 1 << 20);
  ASSERT_TRUE(kept.ok());
  EXPECT_NE(kept->find("\"a.io\""), std::string::npos);
  EXPECT_NE(kept->find("\"b.io\""), std::string::npos);
  EXPECT_NE(kept->find("\"other\": 1"), std::string::npos);

  auto got = CredentialsForKey(dir_ + "/keep.json", "b.io", fake.Runner());
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "u");
}

TEST_F(LookupCredentialsTest, StoreGoesToTheFilesCredHelper) {
  Write("h.json", R"({"credHelpers":{"quay.io":"fake"}})");
  FakeHelper fake;
  fake.answers[R"(fake store {"Secret":"p","ServerURL":"quay.io","Username":"u"})"] = "";
  ASSERT_TRUE(StoreCredentials(dir_ + "/h.json", "quay.io", {"u", "p", ""}, fake.Runner()).ok());
  auto text = ReadFileBounded(dir_ + "/h.json", 1 << 20);
  EXPECT_EQ(text->find("auths"), std::string::npos);  // the file is left alone
}

TEST_F(LookupCredentialsTest, RemoveOneAndAll) {
  const std::string path = dir_ + "/auth.json";
  FakeHelper fake;
  ASSERT_TRUE(StoreCredentials(path, "a.io", {"u", "p", ""}, fake.Runner()).ok());
  ASSERT_TRUE(StoreCredentials(path, "b.io", {"u", "p", ""}, fake.Runner()).ok());
  auto removed = RemoveCredentials(path, "a.io", fake.Runner());
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  removed = RemoveCredentials(path, "a.io", fake.Runner());
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
  ASSERT_TRUE(RemoveAllCredentials(path).ok());
  EXPECT_EQ(*ReadFileBounded(path, 1 << 20), "{\n\t\"auths\": {}\n}");
  EXPECT_TRUE(RemoveAllCredentials(dir_ + "/missing.json").ok());
  EXPECT_FALSE(PathExists(dir_ + "/missing.json"));
}

TEST_F(LookupCredentialsTest, StampChangesWhenAFileIsReplaced) {
  std::string before = AuthFilesStamp("");
  EXPECT_EQ(before, AuthFilesStamp(""));
  Write(ConfigAuth(), AuthsFile({{"quay.io", AuthEntry(kUserPass)}}));
  std::string written = AuthFilesStamp("");
  EXPECT_NE(before, written);
  FakeHelper fake;
  ASSERT_TRUE(
      StoreCredentials(dir_ + "/" + ConfigAuth(), "quay.io", {"x", "y", ""}, fake.Runner()).ok());
  EXPECT_NE(written, AuthFilesStamp(""));
}

}  // namespace
}  // namespace regfs
