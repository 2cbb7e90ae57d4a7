#include "transports/sync/sync_config.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using Kind = SyncRepository::Kind;
using Strings = std::vector<std::string>;

const char kSkopeoExample[] = R"(
registry.example.com:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    images-by-tag-regex:
        nginx: ^1\.13\.[12]-alpine-perl$
    images-by-semver:
        alpine: ">= 3.12.0"
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
)";

SyncConfig Parse(const std::string& text) {
  auto c = ParseSyncYaml(text);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? std::move(c).value() : SyncConfig{};
}

SyncRepository Repo(Kind kind, std::string name) {
  SyncRepository r;
  r.kind = kind;
  r.name = std::move(name);
  return r;
}

TEST(SyncConfigTest, ParsesSkopeoExample) {
  SyncConfig c = Parse(kSkopeoExample);
  EXPECT_TRUE(c.warnings.empty());

  SyncRegistry example;
  example.name = "registry.example.com";
  SyncRepository busybox = Repo(Kind::kAllTags, "busybox");
  SyncRepository redis = Repo(Kind::kRefs, "redis");
  redis.refs = {"1.0", "2.0",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000"};
  SyncRepository nginx = Repo(Kind::kTagRegex, "nginx");
  nginx.tag_regex = R"(^1\.13\.[12]-alpine-perl$)";
  SyncRepository alpine = Repo(Kind::kSemver, "alpine");
  alpine.semver = ">= 3.12.0";
  example.repositories = {busybox, redis, nginx, alpine};
  example.credentials = SyncCredentials{"john", "this is a secret"};
  example.tls_verify = true;
  example.cert_dir = "/home/john/certs";

  SyncRegistry quay;
  quay.name = "quay.io";
  SyncRepository etcd = Repo(Kind::kRefs, "coreos/etcd");
  etcd.refs = {"latest"};
  quay.repositories = {etcd};
  quay.tls_verify = false;

  ASSERT_EQ(c.registries.size(), 2u);
  EXPECT_EQ(c.registries[0], quay);  // sorted by name
  EXPECT_EQ(c.registries[1], example);
}

TEST(SyncConfigTest, EmptyAndMinimalFiles) {
  EXPECT_TRUE(Parse("").registries.empty());
  EXPECT_TRUE(Parse("# nothing\n").registries.empty());
  SyncConfig c = Parse("127.0.0.1:5000:\nlocalhost:\n  images:\n  credentials:\n");
  ASSERT_EQ(c.registries.size(), 2u);
  EXPECT_EQ(c.registries[0].name, "127.0.0.1:5000");
  EXPECT_EQ(c.registries[1].name, "localhost");
  EXPECT_TRUE(c.registries[1].repositories.empty());
  EXPECT_FALSE(c.registries[1].credentials.has_value());
  EXPECT_FALSE(c.registries[1].tls_verify.has_value());
}

TEST(SyncConfigTest, OrdersRepositoriesByKindThenName) {
  SyncConfig c = Parse(R"(
r.io:
  images-by-semver: {zz: "1.x", aa: "2.x"}
  images-by-tag-regex: {zz: a, aa: b}
  images: {zz: [], aa: ["1"], mm: ~}
)");
  ASSERT_EQ(c.registries.size(), 1u);
  Strings order;
  for (const SyncRepository& r : c.registries[0].repositories) {
    order.push_back(std::to_string(static_cast<int>(r.kind)) + r.name);
  }
  EXPECT_EQ(order, (Strings{"0aa", "1mm", "1zz", "2aa", "2zz", "3aa", "3zz"}));
}

TEST(SyncConfigTest, RefsKeepFileOrderWithoutRepeats) {
  SyncConfig c = Parse("r.io:\n  images:\n    a: [b, \"1.0\", b, 1.10, v2]\n");
  ASSERT_EQ(c.registries.size(), 1u);
  EXPECT_EQ(c.registries[0].repositories[0].refs, (Strings{"b", "1.0", "1.10", "v2"}));
}

TEST(SyncConfigTest, ExtensionsAndRegistryDefaults) {
  SyncConfig c = Parse(R"(
r.io/team:
  include: ["v.*"]
  exclude: [".*-debug"]
  platforms: [linux/amd64]
  images:
    plain: ["v1"]
    own:
      tags: ["1.0", "2.0"]
      include: ["[0-9.]+"]
      exclude: []
      platforms: [linux/arm64/v8, linux/amd64]
      target: mirror/own
    every: {target: copies/every}
    emptytags: {tags: []}
  images-by-tag-regex:
    nginx: {regex: "^1\\.13", include: ["1\\..*"]}
  images-by-semver:
    alpine: {semver: ">= 3.12", platforms: []}
)");
  ASSERT_EQ(c.registries.size(), 1u);
  const SyncRegistry& r = c.registries[0];
  EXPECT_EQ(r.name, "r.io/team");
  ASSERT_EQ(r.repositories.size(), 6u);

  SyncRepository emptytags = Repo(Kind::kAllTags, "emptytags");
  emptytags.include = {"v.*"};
  emptytags.exclude = {".*-debug"};
  emptytags.platforms = {"linux/amd64"};
  EXPECT_EQ(r.repositories[0], emptytags);

  SyncRepository every = emptytags;
  every.name = "every";
  every.target = "copies/every";
  EXPECT_EQ(r.repositories[1], every);

  SyncRepository own = Repo(Kind::kRefs, "own");
  own.refs = {"1.0", "2.0"};
  own.include = {"[0-9.]+"};
  own.platforms = {"linux/arm64/v8", "linux/amd64"};
  own.target = "mirror/own";
  EXPECT_EQ(r.repositories[2], own);

  SyncRepository plain = emptytags;
  plain.kind = Kind::kRefs;
  plain.name = "plain";
  plain.refs = {"v1"};
  EXPECT_EQ(r.repositories[3], plain);

  SyncRepository nginx = Repo(Kind::kTagRegex, "nginx");
  nginx.tag_regex = R"(^1\.13)";
  nginx.include = {R"(1\..*)"};
  nginx.exclude = {".*-debug"};
  nginx.platforms = {"linux/amd64"};
  EXPECT_EQ(r.repositories[4], nginx);

  SyncRepository alpine = Repo(Kind::kSemver, "alpine");
  alpine.semver = ">= 3.12";
  alpine.include = {"v.*"};
  alpine.exclude = {".*-debug"};
  EXPECT_EQ(r.repositories[5], alpine);
}

TEST(SyncConfigTest, CredentialsOnlyWhenSet) {
  SyncConfig c = Parse(R"(
a.io: {credentials: {username: "", password: ""}}
b.io: {credentials: {username: bob}}
c.io: {credentials: {password: 1234}}
)");
  ASSERT_EQ(c.registries.size(), 3u);
  EXPECT_FALSE(c.registries[0].credentials.has_value());
  EXPECT_EQ(c.registries[1].credentials, (SyncCredentials{"bob", ""}));
  EXPECT_EQ(c.registries[2].credentials, (SyncCredentials{"", "1234"}));
}

TEST(SyncConfigTest, TlsVerifySpellings) {
  for (const char* yes : {"true", "True", "TRUE", "yes", "on"}) {
    SyncConfig c = Parse(std::string("r.io: {tls-verify: ") + yes + "}");
    ASSERT_EQ(c.registries.size(), 1u);
    EXPECT_EQ(c.registries[0].tls_verify, std::optional<bool>(true)) << yes;
  }
  for (const char* no : {"false", "False", "FALSE", "no", "off"}) {
    SyncConfig c = Parse(std::string("r.io: {tls-verify: ") + no + "}");
    ASSERT_EQ(c.registries.size(), 1u);
    EXPECT_EQ(c.registries[0].tls_verify, std::optional<bool>(false)) << no;
  }
}

TEST(SyncConfigTest, WarnsAboutUnknownKeys) {
  SyncConfig c = Parse(R"(
r.io:
  images:
    a: {tags: [x], colour: red}
  tls_verify: false
  credentials: {username: u, identitytoken: t}
  images-by-semver:
    b: {semver: "1.x", sign: true}
)");
  ASSERT_EQ(c.registries.size(), 1u);
  EXPECT_FALSE(c.registries[0].tls_verify.has_value());
  ASSERT_EQ(c.warnings.size(), 4u);
  auto warned = [&](const std::string& what) {
    for (const std::string& w : c.warnings) {
      if (w.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(warned(R"(registry "r.io", images "a": unknown key "colour" ignored (line 4))"))
      << c.warnings[0];
  EXPECT_TRUE(warned(R"(registry "r.io": unknown key "tls_verify" ignored (line 5))"));
  EXPECT_TRUE(warned(R"(registry "r.io", credentials: unknown key "identitytoken")"));
  EXPECT_TRUE(warned(R"(registry "r.io", images-by-semver "b": unknown key "sign")"));
}

struct ErrorCase {
  const char* yaml;
  std::vector<const char*> message_has;
};

TEST(SyncConfigTest, BadInputIsEinvalNamingThePlace) {
  const ErrorCase cases[] = {
      {"r.io: [\n", {"not valid YAML", "line"}},
      {"- r.io\n", {"must be a mapping of registry names"}},
      {"just text", {"must be a mapping of registry names"}},
      {"r.io: [a]\n", {"registry \"r.io\"", "must be a mapping"}},
      {"? [a]\n: {}\n", {"a key is a list"}},
      {"r.io: {}\nr.io: {}\n", {"\"r.io\" appears twice"}},
      {"Bad Host!: {}\n", {"registry \"Bad Host!\"", "not a valid registry"}},
      {"r.io:99999999: {}\n", {"not a valid registry"}},
      {"r.io/Team: {}\n", {"\"Team\" is not a valid namespace"}},
      {"r.io: {images: [a]}\n", {"registry \"r.io\", images", "must be a mapping"}},
      {"r.io: {images: {a: latest}}\n", {"images \"a\"", "must be a list of strings"}},
      {"r.io: {images: {a: [[x]]}}\n", {"images \"a\"", "must be strings, not a list"}},
      {"r.io: {images: {a: [\"bad tag\"]}}\n",
       {"images \"a\"", "\"bad tag\" is neither a valid tag nor a sha256 digest"}},
      {"r.io: {images: {a: [\"sha256:abc\"]}}\n", {"\"sha256:abc\" is neither"}},
      {"r.io: {images: {a: [\"-x\"]}}\n", {"\"-x\" is neither"}},
      {"r.io: {images: {Busybox: []}}\n",
       {"registry \"r.io\", images", "\"Busybox\" is not a valid repository name"}},
      {"r.io: {images: {a//b: []}}\n", {"\"a//b\" is not a valid repository name"}},
      {"r.io: {images: {a: {b: [], b: []}}}\n", {"images \"a\"", "\"b\" appears twice"}},
      {"r.io: {images: {a: {tags: latest}}}\n", {"images \"a\", tags", "must be a list"}},
      {"r.io: {images: {a: {target: Up/Per}}}\n",
       {"images \"a\", target", "\"Up/Per\" is not a valid repository name"}},
      {"r.io: {images: {a: {target: [x]}}}\n", {"images \"a\", target", "must be a string"}},
      {"r.io: {images-by-tag-regex: {a: \"(\"}}\n",
       {"images-by-tag-regex \"a\"", "bad regular expression \"(\""}},
      {"r.io: {images-by-tag-regex: {a: [x]}}\n",
       {"images-by-tag-regex \"a\"", "must be a string"}},
      {"r.io: {images-by-tag-regex: {a: {include: [x]}}}\n",
       {"images-by-tag-regex \"a\"", "needs a \"regex\" key"}},
      {"r.io: {images-by-semver: {a: \">= bar\"}}\n",
       {"images-by-semver \"a\"", "improper semver constraint \">= bar\""}},
      {"r.io: {images-by-semver: {a: }}\n", {"images-by-semver \"a\"", "improper semver"}},
      {"r.io: {images-by-semver: {a: {semver: \"1.2.3.4\"}}}\n",
       {"images-by-semver \"a\", semver", "improper semver"}},
      {"r.io: {images-by-semver: {a: {tags: [x]}}}\n", {"needs a \"semver\" key"}},
      {"r.io: {include: [\"[\"]}\n", {"registry \"r.io\", include", "bad regular expression"}},
      {"r.io: {exclude: \"x\"}\n", {"registry \"r.io\", exclude", "must be a list"}},
      {"r.io: {images: {a: {exclude: [\"*x\"]}}}\n", {"images \"a\", exclude", "bad regular"}},
      {"r.io: {platforms: [linux]}\n",
       {"registry \"r.io\", platforms", "\"linux\" is not a platform"}},
      {"r.io: {images: {a: {platforms: [linux/arm/v7/x]}}}\n",
       {"images \"a\", platforms", "\"linux/arm/v7/x\""}},
      {"r.io: {platforms: [\"linux//amd64\"]}\n", {"is not a platform"}},
      {"r.io: {tls-verify: maybe}\n", {"registry \"r.io\", tls-verify", "must be true or false"}},
      {"r.io: {tls-verify: [true]}\n", {"tls-verify", "must be true or false"}},
      {"r.io: {cert-dir: {a: b}}\n", {"registry \"r.io\", cert-dir", "must be a string"}},
      {"r.io: {credentials: [u, p]}\n", {"registry \"r.io\", credentials", "must be a mapping"}},
      {"r.io: {credentials: {username: [u]}}\n", {"credentials, username", "must be a string"}},
  };
  for (const ErrorCase& c : cases) {
    auto r = ParseSyncYaml(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().errnum, EINVAL) << c.yaml;
    for (const char* part : c.message_has) {
      EXPECT_NE(r.error().message.find(part), std::string::npos)
          << c.yaml << "gave: " << r.error().message << "\nwanted: " << part;
    }
  }
}

TEST(SyncConfigTest, ErrorsNameTheLine) {
  auto r = ParseSyncYaml("r.io:\n  images:\n    a:\n      - ok\n      - \"no good\"\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("(line 4)"), std::string::npos) << r.error().message;
}

TEST(SyncConfigTest, LoadsFiles) {
  testing::TempDir tmp("regfs-sync-config-test");
  std::string path = tmp.Sub("sync.yaml");
  ASSERT_TRUE(WriteFileAtomic(path, kSkopeoExample, 0644).ok());
  auto c = LoadSyncYaml(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->registries.size(), 2u);

  std::string bad = tmp.Sub("bad.yaml");
  ASSERT_TRUE(WriteFileAtomic(bad, "r.io: {tls-verify: 3}\n", 0644).ok());
  auto b = LoadSyncYaml(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().errnum, EINVAL);
  EXPECT_EQ(b.error().message.rfind(bad + ": ", 0), 0u) << b.error().message;

  auto missing = LoadSyncYaml(tmp.Sub("missing.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, ENOENT);
  EXPECT_NE(missing.error().message.find(tmp.Sub("missing.yaml")), std::string::npos)
      << missing.error().message;

  std::string big = tmp.Sub("big.yaml");
  {
    UniqueFd fd(open(big.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(ftruncate(fd.get(), (off_t{16} << 20) + 1), 0);  // sparse
  }
  auto too_big = LoadSyncYaml(big);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().errnum, EFBIG);
  EXPECT_NE(too_big.error().message.find(big), std::string::npos) << too_big.error().message;
}

TEST(SyncConfigTest, ParsesPlatforms) {
  auto p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->os, "linux");
  EXPECT_EQ(p->architecture, "arm64");
  EXPECT_EQ(p->variant, "v8");
  auto q = ParsePlatform("windows/amd64");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->os, "windows");
  EXPECT_EQ(q->variant, "");
  for (const char* bad :
       {"", "linux", "linux/", "/amd64", "linux/amd64/", "a/b/c/d", "linux/am d"}) {
    auto r = ParsePlatform(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, EINVAL);
  }
}

Strings Selected(const SyncRepository& repo, const Strings& tags) {
  auto s = TagSelector::For(repo);
  EXPECT_TRUE(s.ok()) << s.error().message;
  Strings out;
  if (!s.ok()) return out;
  for (const std::string& t : tags) {
    if (s->Selects(t)) out.push_back(t);
  }
  return out;
}

const Strings kTags = {"latest",
                       "1.13.1-alpine-perl",
                       "1.13.2-alpine-perl",
                       "1.13.12-alpine-perl-x",
                       "3.11.6",
                       "3.12.0",
                       "3.12.1-rc.1",
                       "v3.13",
                       "3.14-debug",
                       "edge"};

TEST(TagSelectorTest, AllTags) { EXPECT_EQ(Selected(Repo(Kind::kAllTags, "a"), kTags), kTags); }

TEST(TagSelectorTest, TagRegexSearchesUnanchored) {
  SyncRepository r = Repo(Kind::kTagRegex, "nginx");
  r.tag_regex = R"(^1\.13\.[12]-alpine-perl$)";
  EXPECT_EQ(Selected(r, kTags), (Strings{"1.13.1-alpine-perl", "1.13.2-alpine-perl"}));
  r.tag_regex = R"(1\.13\.1)";  // found inside "1.13.12-alpine-perl-x" too
  EXPECT_EQ(Selected(r, kTags), (Strings{"1.13.1-alpine-perl", "1.13.12-alpine-perl-x"}));
  r.tag_regex = "";
  EXPECT_EQ(Selected(r, kTags), kTags);
}

TEST(TagSelectorTest, SemverSkipsNonVersionsAndPrereleases) {
  SyncRepository r = Repo(Kind::kSemver, "alpine");
  r.semver = ">= 3.12.0";
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.12.0", "v3.13"}));
  r.semver = ">= 3.12.0-0";
  // "3.14-debug" is the prerelease 3.14.0-debug.
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.12.0", "3.12.1-rc.1", "v3.13", "3.14-debug"}));
  r.semver = "~3.11 || ^3.13";
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.11.6", "v3.13"}));
}

TEST(TagSelectorTest, RefsSelectTheirTags) {
  SyncRepository r = Repo(Kind::kRefs, "a");
  r.refs = {"3.12.0", "edge",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"};
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.12.0", "edge"}));
}

TEST(TagSelectorTest, IncludeAndExcludeAreAnchored) {
  SyncRepository r = Repo(Kind::kAllTags, "a");
  r.include = {R"(3\.1[0-9])", "v.*"};
  EXPECT_EQ(Selected(r, kTags), (Strings{"v3.13"}));  // "3.12.0" only contains a match
  r.include = {R"(3\.1[0-9].*)", "edge"};
  r.exclude = {".*-debug", ".*rc.*"};
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.11.6", "3.12.0", "edge"}));
  r.include.clear();
  r.exclude = {"1", "latest"};  // "1" matches no whole tag
  Strings all_but_latest(kTags.begin() + 1, kTags.end());
  EXPECT_EQ(Selected(r, kTags), all_but_latest);
}

TEST(TagSelectorTest, FiltersApplyAfterTheKind) {
  SyncRepository r = Repo(Kind::kSemver, "alpine");
  r.semver = ">= 3";
  r.exclude = {"3\\.12\\..*"};
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.11.6", "v3.13"}));
  SyncRepository t = Repo(Kind::kTagRegex, "nginx");
  t.tag_regex = "alpine";
  t.include = {".*perl"};
  EXPECT_EQ(Selected(t, kTags), (Strings{"1.13.1-alpine-perl", "1.13.2-alpine-perl"}));
}

TEST(TagSelectorTest, PatternsAreGoRegexpsAsSkopeoReadsThem) {
  SyncRepository r = Repo(Kind::kTagRegex, "alpine");
  r.tag_regex = R"((?i)^V3\.13|EDGE)";  // Go's inline flags
  EXPECT_EQ(Selected(r, kTags), (Strings{"v3.13", "edge"}));
  r.tag_regex = R"(^\d+\.\d+\.\d+$)";  // Perl classes
  EXPECT_EQ(Selected(r, kTags), (Strings{"3.11.6", "3.12.0"}));
  r.tag_regex = R"((3)\.\1)";  // no backreferences in Go, nor here
  auto s = TagSelector::For(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("bad regular expression"), std::string::npos)
      << s.error().message;
}

TEST(TagSelectorTest, ABacktrackingPatternMatchesInLinearTime) {
  // A backtracking matcher tries 2^n ways to split the a's between the groups before it
  // fails (std::regex did: a tag list could stall sync for good); RE2 reads the tag once.
  SyncRepository r = Repo(Kind::kTagRegex, "a");
  r.tag_regex = "^(a|a)*(a|a)*(a|a)*b$";
  r.include = {"(a*)*(a*)*c"};
  auto s = TagSelector::For(r);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->Selects(std::string(120, 'a')));
  EXPECT_FALSE(s->Selects(std::string(120, 'a') + "b"));  // a match, but no whole-tag include
}

TEST(TagSelectorTest, BadPatternsAreErrors) {
  SyncRepository r = Repo(Kind::kTagRegex, "a");
  r.tag_regex = "(";
  auto s = TagSelector::For(r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, EINVAL);
  EXPECT_NE(s.error().message.find("repository \"a\", tag regex"), std::string::npos)
      << s.error().message;

  SyncRepository i = Repo(Kind::kAllTags, "b");
  i.exclude = {"[z-a]"};
  auto e = TagSelector::For(i);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("exclude"), std::string::npos) << e.error().message;

  SyncRepository v = Repo(Kind::kSemver, "c");
  v.semver = "newest";
  auto c = TagSelector::For(v);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("improper semver constraint"), std::string::npos);
}

TEST(TagSelectorTest, WorksFromAParsedFile) {
  SyncConfig c = Parse(kSkopeoExample);
  ASSERT_EQ(c.registries.size(), 2u);
  const SyncRepository& nginx = c.registries[1].repositories[2];
  ASSERT_EQ(nginx.name, "nginx");
  EXPECT_EQ(Selected(nginx, kTags), (Strings{"1.13.1-alpine-perl", "1.13.2-alpine-perl"}));
  const SyncRepository& alpine = c.registries[1].repositories[3];
  ASSERT_EQ(alpine.name, "alpine");
  EXPECT_EQ(Selected(alpine, kTags), (Strings{"3.12.0", "v3.13"}));
}

}  // namespace
}  // namespace regfs
