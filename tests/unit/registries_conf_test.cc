#include "transports/registries_conf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "transports/file_util.h"

namespace regfs {
namespace {

RegistriesConf Conf(const std::string& text) {
  RegistriesConf c;
  Status s = c.Merge(text, "test.conf");
  EXPECT_TRUE(s.ok()) << s.error().message;
  return c;
}

DockerReference Ref(const std::string& s) {
  auto r = ParseDockerReference(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : DockerReference{};
}

std::vector<std::string> Sources(const RegistriesConf& c, const std::string& ref) {
  auto sources = c.PullSources(Ref(ref));
  EXPECT_TRUE(sources.ok()) << sources.error().message;
  std::vector<std::string> out;
  if (!sources.ok()) return out;
  for (const PullSource& s : *sources) {
    out.push_back((s.mirror ? "mirror " : "") + s.ref.String() + (s.insecure ? " insecure" : ""));
  }
  return out;
}

TEST(RegistriesConfTest, ReadsRegistryEntriesAndMirrors) {
  RegistriesConf c = Conf(R"(
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "example.com:5000/"
insecure = true
mirror-by-digest-only = false
[[registry.mirror]]
location = "mirror.example.com/cache"
insecure = true
[[registry.mirror]]
location = "m2.example.com"
pull-from-mirror = "digest-only"

[aliases]
"x" = "example.com:5000/x"
)");
  ASSERT_EQ(c.entries().size(), 1u);
  const RegistryEntry& e = c.entries()[0];
  EXPECT_EQ(e.prefix, "example.com:5000");
  EXPECT_EQ(e.location, "example.com:5000");
  EXPECT_TRUE(e.insecure);
  ASSERT_EQ(e.mirrors.size(), 2u);
  EXPECT_EQ(e.mirrors[0].location, "mirror.example.com/cache");
  EXPECT_TRUE(e.mirrors[0].insecure);
  EXPECT_EQ(e.mirrors[1].pull_from_mirror, "digest-only");
}

TEST(RegistriesConfTest, PullSourcesTryMirrorsThenTheOrigin) {
  RegistriesConf c = Conf(R"(
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "mirror.example.com/cache"
insecure = true
[[registry.mirror]]
location = "m2.example.com"
pull-from-mirror = "digest-only"
)");
  EXPECT_EQ(Sources(c, "example.com/ns/app:1"),
            (std::vector<std::string>{"mirror mirror.example.com/cache/ns/app:1 insecure",
                                      "example.com/ns/app:1"}));
  const std::string digest = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(Sources(c, "example.com/app@" + digest),
            (std::vector<std::string>{"mirror mirror.example.com/cache/app@" + digest + " insecure",
                                      "mirror m2.example.com/app@" + digest,
                                      "example.com/app@" + digest}));
  // No entry: the reference itself.
  EXPECT_EQ(Sources(c, "other.example/app:1"), (std::vector<std::string>{"other.example/app:1"}));
}

TEST(RegistriesConfTest, MirrorByDigestOnly) {
  RegistriesConf c = Conf(R"(
[[registry]]
location = "example.com"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror.example.com"
)");
  EXPECT_EQ(Sources(c, "example.com/app:1"), (std::vector<std::string>{"example.com/app:1"}));
  const std::string digest = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(Sources(c, "example.com/app@" + digest).size(), 2u);
}

TEST(RegistriesConfTest, PrefixRewritesToLocation) {
  RegistriesConf c = Conf(R"(
[[registry]]
prefix = "example.com/foo"
location = "internal.example.com:5000/bar"
)");
  EXPECT_EQ(Sources(c, "example.com/foo/app:2"),
            (std::vector<std::string>{"internal.example.com:5000/bar/app:2"}));
  // "example.com/foobar" does not lie below the prefix "example.com/foo".
  EXPECT_EQ(Sources(c, "example.com/foobar/app:2"),
            (std::vector<std::string>{"example.com/foobar/app:2"}));
}

TEST(RegistriesConfTest, LongestPrefixWinsAndWildcardsLose) {
  RegistriesConf c = Conf(R"(
[[registry]]
prefix = "*.example.com"
insecure = true
[[registry]]
location = "a.example.com"
[[registry]]
location = "a.example.com/team"
blocked = true
)");
  EXPECT_EQ(c.Find("a.example.com/x")->location, "a.example.com");
  EXPECT_TRUE(c.Find("a.example.com/team/x")->blocked);
  EXPECT_EQ(c.Find("b.example.com/x")->prefix, "*.example.com");
  EXPECT_EQ(c.Find("example.com/x"), nullptr);
  EXPECT_TRUE(c.IsInsecure("b.example.com"));
  EXPECT_FALSE(c.IsInsecure("a.example.com:5000"));
  auto blocked = c.PullSources(Ref("a.example.com/team/x:1"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.error().errnum, EACCES);
  EXPECT_FALSE(c.CheckNotBlocked(Ref("a.example.com/team/x:1")).ok());
  EXPECT_TRUE(c.CheckNotBlocked(Ref("a.example.com/x:1")).ok());
}

TEST(RegistriesConfTest, InsecureCoversLocationsAndMirrors) {
  RegistriesConf c = Conf(R"(
[[registry]]
location = "secure.example.com"
[[registry.mirror]]
location = "127.0.0.1:5001/cache"
insecure = true
[[registry]]
location = "plain.example.com:8080/ns"
insecure = true
)");
  EXPECT_TRUE(c.IsInsecure("127.0.0.1:5001"));
  EXPECT_TRUE(c.IsInsecure("plain.example.com:8080"));
  EXPECT_FALSE(c.IsInsecure("secure.example.com"));
  EXPECT_FALSE(c.IsInsecure("127.0.0.1:5002"));
}

TEST(RegistriesConfTest, LaterFilesReplaceEntriesWithTheSamePrefix) {
  RegistriesConf c;
  ASSERT_TRUE(c.Merge("[[registry]]\nlocation = \"a.example\"\ninsecure = true\n", "one").ok());
  ASSERT_TRUE(
      c.Merge("[[registry]]\nlocation = \"a.example\"\n[[registry]]\nlocation = \"b\"\n", "two")
          .ok());
  ASSERT_EQ(c.entries().size(), 2u);
  EXPECT_FALSE(c.entries()[0].insecure);
  EXPECT_EQ(c.entries()[1].location, "b");
}

TEST(RegistriesConfTest, InvalidEntriesNameTheFile) {
  for (const char* text : {
           "[[registry]]\nlocation = \"https://x.example\"\n",
           "[[registry]]\ninsecure = true\n",
           "[[registry]]\nprefix = \"x.example\"\n",
           "[[registry]]\nlocation = \"x\"\ninsecure = \"yes\"\n",
           "[[registry]]\nlocation = true\n",
           "[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\ninsecure = true\n",
           "[[registry]]\nlocation = \"x\"\n[[registry.mirror]]\nlocation = \"m\"\n"
           "pull-from-mirror = \"sometimes\"\n",
           "registry = \"x\"\n",
           "[[registry]]\nlocation = \"x\"\nmirror = \"m\"\n",
           "[[registry]\n",
       }) {
    RegistriesConf c;
    Status s = c.Merge(text, "/etc/bad.conf");
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.error().message.rfind("/etc/bad.conf: ", 0), 0u) << s.error().message;
  }
}

TEST(RegistriesConfTest, TheDebianShortNamesFileParses) {
  // The drop-in Debian ships, in its shape: quoted keys under [aliases].
  RegistriesConf c = Conf(R"([aliases]
  # almalinux
  "almalinux" = "docker.io/library/almalinux"
  "opensuse/leap" = "registry.opensuse.org/opensuse/leap"
)");
  EXPECT_TRUE(c.entries().empty());
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(RegistriesConfTest, EnvironmentNamesTheMainFile) {
  char tmpl[] = "/tmp/regfs-regconf-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/registries.conf";
  ASSERT_TRUE(WriteFileAtomic(path, "[[registry]]\nlocation = \"env.example\"\n", 0600).ok());
  {
    ScopedEnv env("CONTAINERS_REGISTRIES_CONF", path);
    EXPECT_EQ(RegistriesConfPaths().front(), path);
    auto conf = LoadRegistriesConf();
    ASSERT_TRUE(conf.ok()) << conf.error().message;
    EXPECT_NE((*conf)->Find("env.example/x"), nullptr);
  }
  {
    ScopedEnv env("CONTAINERS_REGISTRIES_CONF", dir + "/missing.conf");
    EXPECT_FALSE(LoadRegistriesConf().ok());  // a file named explicitly must exist
  }
  ASSERT_TRUE(RemoveAll(dir).ok());
}

}  // namespace
}  // namespace regfs
