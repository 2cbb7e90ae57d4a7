#include "transports/config/registries_conf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/file_util.h"

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
  EXPECT_FALSE(c.CheckNotBlocked(Ref("a.example.com/team/x:1").Name()).ok());
  EXPECT_TRUE(c.CheckNotBlocked(Ref("a.example.com/x:1").Name()).ok());
  // A host is blocked only by an entry for the host itself, not one for a namespace in it.
  EXPECT_TRUE(c.CheckNotBlocked("a.example.com").ok());
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

// The message of the error Merge gives for `text`, read as /etc/bad.conf.
std::string MergeError(const std::string& text) {
  RegistriesConf c;
  Status s = c.Merge(text, "/etc/bad.conf");
  EXPECT_FALSE(s.ok()) << text;
  if (s.ok()) return "";
  EXPECT_EQ(s.error().errnum, EINVAL);
  EXPECT_TRUE(c.entries().empty()) << "a file with an error adds nothing";
  return s.error().message;
}

TEST(RegistriesConfTest, MirrorsMayBeAnArrayOfInlineTables) {
  // As containers-registries.conf(5) itself writes them (issue 10).
  RegistriesConf c = Conf(R"(
[[registry]]
location = "example.com"
mirror = [{ location = "m.example", insecure = true }, { location = "m2.example/cache", pull-from-mirror = "tag-only" }]
)");
  ASSERT_EQ(c.entries().size(), 1u);
  const RegistryEntry& e = c.entries()[0];
  ASSERT_EQ(e.mirrors.size(), 2u);
  EXPECT_EQ(e.mirrors[0].location, "m.example");
  EXPECT_TRUE(e.mirrors[0].insecure);
  EXPECT_EQ(e.mirrors[1].location, "m2.example/cache");
  EXPECT_FALSE(e.mirrors[1].insecure);
  EXPECT_EQ(e.mirrors[1].pull_from_mirror, "tag-only");
  EXPECT_TRUE(c.IsInsecure("m.example"));
  EXPECT_EQ(Sources(c, "example.com/app:1"),
            (std::vector<std::string>{"mirror m.example/app:1 insecure",
                                      "mirror m2.example/cache/app:1", "example.com/app:1"}));
}

TEST(RegistriesConfTest, RegistryEntriesMayBeInlineTables) {
  RegistriesConf c = Conf(R"(
registry = [
  { location = "a.example", mirror = [{ location = "m.example" }] },
  { prefix = "b.example/team", location = "c.example:5000/team", insecure = true, blocked = false },
  { prefix = "*.blocked.example", blocked = true },
]
)");
  ASSERT_EQ(c.entries().size(), 3u);
  EXPECT_EQ(c.entries()[0].location, "a.example");
  ASSERT_EQ(c.entries()[0].mirrors.size(), 1u);
  EXPECT_EQ(c.entries()[0].mirrors[0].location, "m.example");
  EXPECT_EQ(Sources(c, "b.example/team/app:1"),
            (std::vector<std::string>{"c.example:5000/team/app:1 insecure"}));
  EXPECT_FALSE(c.CheckNotBlocked(Ref("x.blocked.example/app:1").Name()).ok());
  EXPECT_EQ(c.CheckNotBlocked("x.blocked.example").error().errnum, EACCES);
}

TEST(RegistriesConfTest, MultiLineArraysAndCommentsAreRead) {
  RegistriesConf c = Conf(R"(# registries.conf
unqualified-search-registries = [
  "docker.io",  # the default
  # "quay.io",
  "registry.fedoraproject.org",
]

[[registry]]  # the origin
location = "example.com"  # where images come from
# insecure = true
mirror = [
  # the nearest first
  { location = "near.example" },

  { location = "far.example" },  # then this one
]
)");
  ASSERT_EQ(c.entries().size(), 1u);
  EXPECT_FALSE(c.entries()[0].insecure);
  ASSERT_EQ(c.entries()[0].mirrors.size(), 2u);
  EXPECT_EQ(c.entries()[0].mirrors[0].location, "near.example");
  EXPECT_EQ(c.entries()[0].mirrors[1].location, "far.example");
}

TEST(RegistriesConfTest, LiteralAndEscapedStringsAreRead) {
  RegistriesConf c = Conf(R"(
[[registry]]
prefix = 'example.com/foo'
location = '''internal.example.com:5000/bar'''
[[registry.mirror]]
location = "m\u002eexample"
[[registry]]
"location" = 'second.example'
)");
  ASSERT_EQ(c.entries().size(), 2u);
  EXPECT_EQ(c.entries()[0].prefix, "example.com/foo");
  EXPECT_EQ(c.entries()[0].location, "internal.example.com:5000/bar");
  ASSERT_EQ(c.entries()[0].mirrors.size(), 1u);
  EXPECT_EQ(c.entries()[0].mirrors[0].location, "m.example");
  EXPECT_EQ(c.entries()[1].location, "second.example");
}

TEST(RegistriesConfTest, KeysRegfsDoesNotUseAreReadPast) {
  RegistriesConf c = Conf(R"(
unqualified-search-registries = ["docker.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json", "secretservice"]
some-future-setting = { retries = 3, timeout = 1.5, since = 2024-01-01T00:00:00Z }

[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = []

[[registry]]
location = "example.com"
some-future-key = 42

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
)");
  ASSERT_EQ(c.entries().size(), 1u);
  EXPECT_EQ(c.entries()[0].location, "example.com");
}

TEST(RegistriesConfTest, ASyntaxErrorNamesTheFileAndTheLine) {
  std::string missing = MergeError("[[registry]]\nlocation = \"x\"\ninsecure =\n");
  EXPECT_EQ(missing.rfind("/etc/bad.conf: line 3: ", 0), 0u) << missing;
  std::string unterminated = MergeError("# c\n\n[[registry]]\n\nlocation = \"x\n");
  EXPECT_EQ(unterminated.rfind("/etc/bad.conf: line 5: ", 0), 0u) << unterminated;
  std::string twice = MergeError("[[registry]]\nlocation = \"x\"\nlocation = \"y\"\n");
  EXPECT_EQ(twice.rfind("/etc/bad.conf: line 3: ", 0), 0u) << twice;
  EXPECT_NE(twice.find("location"), std::string::npos) << twice;
  // One line, without toml11's source excerpt.
  EXPECT_EQ(twice.find('\n'), std::string::npos) << twice;
  // TOML 1.0 keeps an inline table on one line.
  std::string split =
      MergeError("[[registry]]\nmirror = [{ location = \"m\",\n  insecure = true }]\n");
  EXPECT_EQ(split.rfind("/etc/bad.conf: line 2: ", 0), 0u) << split;
}

// Found by fuzzing (tests/fuzz/corpus/registries_conf/crash-bf0c70d3): toml11 3.7 read past
// the end of its buffer on a literal string of bytes that are not UTF-8. TOML is UTF-8, and
// such a file is refused before toml11 sees it.
TEST(RegistriesConfTest, BytesThatAreNotUtf8AreAnErrorNamingTheLine) {
  std::string crash = MergeError(std::string("s= '") + std::string(32, '\xb1') + "''\".");
  EXPECT_EQ(crash, "/etc/bad.conf: line 1: not valid UTF-8 (TOML files are UTF-8)");
  std::string later = MergeError("# comment\n[[registry]]\nlocation = \"caf\xc3\" # \xe9\n");
  EXPECT_EQ(later.rfind("/etc/bad.conf: line 3: not valid UTF-8", 0), 0u) << later;
  EXPECT_NE(MergeError("s = '\xed\xa0\x80'\n").find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(MergeError("s = '\xc0\xaf'\n").find("not valid UTF-8"), std::string::npos);
  // UTF-8 is read as ever, in strings and comments alike.
  RegistriesConf c =
      Conf("# caf\xc3\xa9 \xf0\x9f\x90\xb3\n[[registry]]\nlocation = \"x\" # \xe2\x82\xac\n");
  EXPECT_EQ(c.entries().size(), 1u);
}

TEST(RegistriesConfTest, AValueOfTheWrongTypeIsAnErrorNamingTheKey) {
  EXPECT_EQ(MergeError("[[registry]]\nlocation = \"x\"\ninsecure = \"yes\"\n"),
            "/etc/bad.conf: line 3: [[registry]] \"insecure\" must be true or false");
  EXPECT_EQ(MergeError("[[registry]]\nlocation = \"x\"\nblocked = 1\n"),
            "/etc/bad.conf: line 3: [[registry]] \"blocked\" must be true or false");
  EXPECT_EQ(MergeError("registry = [{ location = 5000 }]\n"),
            "/etc/bad.conf: line 1: [[registry]] \"location\" must be a string");
  EXPECT_EQ(MergeError("[[registry]]\nlocation = \"x\"\nmirror = [{ location = \"m\", "
                       "pull-from-mirror = true }]\n"),
            "/etc/bad.conf: line 3: [[registry.mirror]] \"pull-from-mirror\" must be a string");
  EXPECT_EQ(MergeError("[[registry]]\nlocation = \"x\"\nmirror = [\"m\"]\n"),
            "/etc/bad.conf: line 3: [[registry.mirror]] must be a table");
  EXPECT_EQ(MergeError("[registry]\nlocation = \"x\"\n"),
            "/etc/bad.conf: line 1: \"registry\" must be an array of tables ([[registry]])");
  EXPECT_EQ(MergeError("\n[[registry]]\ninsecure = true\n"),
            "/etc/bad.conf: line 2: [[registry]] needs a location or a prefix");
}

TEST(RegistriesConfTest, CommentsAreLeftOutButNotHashesInStrings) {
  RegistriesConf c = Conf(
      "# a comment with \"quotes\", 'apostrophes', [brackets and {braces\n"
      "[[registry]] # [[registry]]\r\n"
      "prefix = \"p.example/#x\"  # prefix = \"no\"\n"
      "location = 'l.example/#y'#\n"
      "mirror = [ # {\n"
      "  { location = \"\"\"m.example/#z\"\"\" }, # ]\n"
      "]\n"
      "x = '''\n# not a comment\n'''\n"
      "# last, without a line break");
  ASSERT_EQ(c.entries().size(), 1u);
  EXPECT_EQ(c.entries()[0].prefix, "p.example/#x");
  EXPECT_EQ(c.entries()[0].location, "l.example/#y");
  ASSERT_EQ(c.entries()[0].mirrors.size(), 1u);
  EXPECT_EQ(c.entries()[0].mirrors[0].location, "m.example/#z");
  // Lines keep their numbers.
  EXPECT_EQ(MergeError("# one\n# two\n[[registry]] # three\nlocation = 4\n"),
            "/etc/bad.conf: line 4: [[registry]] \"location\" must be a string");
  // A comment TOML refuses is still refused.
  for (const char* text : {"# a \x01 control character\n", "# a lone \r in a comment\n"}) {
    EXPECT_EQ(MergeError(text).rfind("/etc/bad.conf: line 1: ", 0), 0u) << text;
  }
  // UTF-8 in comments is fine.
  EXPECT_TRUE(Conf("# caf\xC3\xA9\n[[registry]]\nlocation = \"a\"\n").entries().size() == 1u);
}

TEST(RegistriesConfTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "x = " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  EXPECT_NE(MergeError(deep).find("nested"), std::string::npos);
  EXPECT_NE(MergeError("x = " + std::string(100000, '{')).find("nested"), std::string::npos);
  // Brackets in comments and strings are not nesting.
  const std::string many(1000, '[');
  RegistriesConf c = Conf("# " + many + "\nx = \"" + many + "\"\ny = '" + many + "'\nz = \"\"\"\n" +
                          many + "\"\"\"\"\n[[registry]]\nlocation = \"a.example\"\n");
  EXPECT_EQ(c.entries().size(), 1u);
}

TEST(RegistriesConfTest, AnOversizedTextIsAnError) {
  RegistriesConf c;
  Status s = c.Merge(std::string(5 << 20, '#'), "/etc/big.conf");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message.rfind("/etc/big.conf: ", 0), 0u) << s.error().message;
}

TEST(RegistriesConfTest, CrLfLineEndsAndAByteOrderMarkAreRead) {
  RegistriesConf c = Conf("\xEF\xBB\xBF[[registry]]\r\nlocation = \"a\"\r\ninsecure = true\r\n");
  ASSERT_EQ(c.entries().size(), 1u);
  EXPECT_TRUE(c.entries()[0].insecure);
}

TEST(RegistriesConfTest, EnvironmentNamesTheMainFile) {
  testing::TempDir tmp("regfs-regconf");
  const std::string dir = tmp.path();
  const std::string path = dir + "/registries.conf";
  ASSERT_TRUE(WriteFileAtomic(path, "[[registry]]\nlocation = \"env.example\"\n", 0600).ok());
  {
    testing::ScopedEnv env("CONTAINERS_REGISTRIES_CONF", path);
    EXPECT_EQ(RegistriesConfPaths().front(), path);
    auto conf = LoadRegistriesConf();
    ASSERT_TRUE(conf.ok()) << conf.error().message;
    EXPECT_NE((*conf)->Find("env.example/x"), nullptr);
  }
  {
    testing::ScopedEnv env("CONTAINERS_REGISTRIES_CONF", dir + "/missing.conf");
    EXPECT_FALSE(LoadRegistriesConf().ok());  // a file named explicitly must exist
  }
}

}  // namespace
}  // namespace regfs
