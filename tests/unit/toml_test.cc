#include "transports/toml.h"

#include <gtest/gtest.h>

#include <string>

namespace regfs {
namespace {

const TomlValue& Get(const TomlTable& t, const std::string& key) {
  const TomlValue* v = t.Find(key);
  EXPECT_NE(v, nullptr) << key;
  static const TomlValue kMissing;
  return v ? *v : kMissing;
}

std::string ErrorOf(const std::string& text) {
  auto r = ParseToml(text);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().errnum, EINVAL);
  return r.error().message;
}

TEST(TomlTest, RegistriesConfShape) {
  auto r = ParseToml(R"(# a comment
unqualified-search-registries = ["docker.io", "quay.io"]  # trailing comment
short-name-mode = "enforcing"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com:5000/foo"
insecure = true
blocked = false

[[registry.mirror]]
location = "mirror-1.example.com"
insecure = false

[[registry.mirror]]
location = 'mirror-2.example.com'

[[registry]]
location = "quay.io"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const TomlTable& root = *r;
  EXPECT_EQ(root.keys, (std::vector<std::string>{"unqualified-search-registries", "short-name-mode",
                                                 "registry", "aliases"}));
  const TomlValue& search = Get(root, "unqualified-search-registries");
  ASSERT_EQ(search.kind, TomlValue::Kind::kArray);
  ASSERT_EQ(search.array.size(), 2u);
  EXPECT_EQ(search.array[1].string, "quay.io");
  EXPECT_EQ(Get(root, "short-name-mode").string, "enforcing");

  const TomlValue& regs = Get(root, "registry");
  ASSERT_EQ(regs.kind, TomlValue::Kind::kArray);
  ASSERT_EQ(regs.array.size(), 2u);
  const TomlTable& first = regs.array[0].table;
  EXPECT_EQ(Get(first, "prefix").string, "example.com/foo");
  EXPECT_EQ(Get(first, "location").string, "internal.example.com:5000/foo");
  EXPECT_EQ(Get(first, "insecure").kind, TomlValue::Kind::kBool);
  EXPECT_TRUE(Get(first, "insecure").boolean);
  EXPECT_FALSE(Get(first, "blocked").boolean);
  const TomlValue& mirrors = Get(first, "mirror");
  ASSERT_EQ(mirrors.array.size(), 2u);
  EXPECT_EQ(Get(mirrors.array[0].table, "location").string, "mirror-1.example.com");
  EXPECT_EQ(Get(mirrors.array[1].table, "location").string, "mirror-2.example.com");
  const TomlTable& second = regs.array[1].table;
  EXPECT_EQ(Get(second, "location").string, "quay.io");
  EXPECT_EQ(second.Find("mirror"), nullptr);
  EXPECT_EQ(Get(Get(root, "aliases").table, "fedora").string, "registry.fedoraproject.org/fedora");
}

TEST(TomlTest, EmptyAndCommentOnlyDocuments) {
  for (const char* text : {"", "\n\n", "# only a comment", "  \t\n# x\r\n"}) {
    auto r = ParseToml(text);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_TRUE(r->keys.empty());
  }
}

TEST(TomlTest, BasicStringEscapes) {
  auto r = ParseToml(R"(a = "tab\there \"q\" back\\slash \u00e9 \U0001F600 \n")");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Get(*r, "a").string, "tab\there \"q\" back\\slash \xC3\xA9 \xF0\x9F\x98\x80 \n");
}

TEST(TomlTest, LiteralStringsKeepBackslashes) {
  auto r = ParseToml(R"(path = 'C:\Users\x' )");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Get(*r, "path").string, R"(C:\Users\x)");
}

TEST(TomlTest, HashInsideStringIsNotAComment) {
  auto r = ParseToml(R"(a = "x # y" # z)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Get(*r, "a").string, "x # y");
}

TEST(TomlTest, MultiLineArraysWithCommentsAndTrailingComma) {
  auto r = ParseToml(
      "a = [\n  \"x\", # first\n\n  \"y\",\n  # nothing\n]\nb = []\nc = [[\"n\"], true]\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const TomlValue& a = Get(*r, "a");
  ASSERT_EQ(a.array.size(), 2u);
  EXPECT_EQ(a.array[0].string, "x");
  EXPECT_EQ(a.array[1].string, "y");
  EXPECT_TRUE(Get(*r, "b").array.empty());
  const TomlValue& c = Get(*r, "c");
  ASSERT_EQ(c.array.size(), 2u);
  EXPECT_EQ(c.array[0].array[0].string, "n");
  EXPECT_TRUE(c.array[1].boolean);
}

TEST(TomlTest, DottedAndQuotedTableHeaders) {
  auto r = ParseToml("[a.\"b.c\" . d]\nx = true\n[a]\ny = false\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const TomlTable& a = Get(*r, "a").table;
  EXPECT_TRUE(Get(Get(Get(a, "b.c").table, "d").table, "x").boolean);
  EXPECT_FALSE(Get(a, "y").boolean);  // an implicit table may be defined once afterwards
}

TEST(TomlTest, SubTableOfAnArrayOfTablesGoesToItsLastElement) {
  auto r = ParseToml("[[r]]\nn = \"1\"\n[[r]]\nn = \"2\"\n[r.sub]\nk = \"v\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const TomlValue& arr = Get(*r, "r");
  ASSERT_EQ(arr.array.size(), 2u);
  EXPECT_EQ(arr.array[0].table.Find("sub"), nullptr);
  EXPECT_EQ(Get(Get(arr.array[1].table, "sub").table, "k").string, "v");
}

TEST(TomlTest, CrLfLineEnds) {
  auto r = ParseToml("[[registry]]\r\nlocation = \"a\"\r\ninsecure = true\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(Get(Get(*r, "registry").array[0].table, "insecure").boolean);
}

TEST(TomlTest, ErrorsNameTheLine) {
  EXPECT_EQ(ErrorOf("a = \"x\"\nb = \n"), "line 2: expected a value");
  EXPECT_EQ(ErrorOf("a = \"x\"\na = \"y\"\n"), "line 2: key \"a\" defined twice");
  EXPECT_EQ(ErrorOf("\n\n[t]\n[t]\n"), "line 4: table [t] defined twice");
}

TEST(TomlTest, UnsupportedSyntaxIsAnError) {
  for (const char* text : {
           "a = 1",                        // integers
           "a = 1.5",                      // floats
           "a = 1979-05-27",               // dates
           "a = {x = \"y\"}",              // inline tables
           "a = \"\"\"multi\nline\"\"\"",  // multi-line strings
           "a = '''x'''",                  // multi-line literal strings
           "a.b = \"x\"",                  // dotted keys
           "a = truthy",                   // not a boolean
           "a = TRUE",                     // booleans are lowercase
           "a",                            // no value
           "= \"x\"",                      // no key
       }) {
    EXPECT_FALSE(ParseToml(text).ok()) << text;
  }
}

TEST(TomlTest, MalformedInputIsAnError) {
  for (const char* text : {
           "a = \"unterminated",
           "a = \"line\nbreak\"",
           "a = 'unterminated",
           "a = [\"x\"",
           "a = [\"x\" \"y\"]",
           "a = [,]",
           "a = \"x\" \"y\"",
           "a = \"bad \\q escape\"",
           "a = \"\\u12\"",
           "a = \"\\uD800\"",
           "a = \"\\U00110000\"",
           "a = \"ctl \x01 char\"",
           "[unclosed",
           "[[unclosed]",
           "[]",
           "[a.]",
           "a = \"x\"\n[a]",
           "[[a]]\n[a]",
           "[a]\n[[a]]",
           "a = \"x\"\n[a.b]",
       }) {
    EXPECT_FALSE(ParseToml(text).ok()) << text;
  }
}

TEST(TomlTest, DeepNestingIsBounded) {
  std::string text = "a = " + std::string(1000, '[') + std::string(1000, ']');
  EXPECT_FALSE(ParseToml(text).ok());
}

}  // namespace
}  // namespace regfs
