#include "transports/docker/www_authenticate.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace regfs {
namespace {

using Params = std::map<std::string, std::string>;

TEST(WwwAuthenticateTest, DockerHubBearer) {
  auto cs = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/busybox:pull")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params, (Params{{"realm", "https://auth.docker.io/token"},
                                  {"service", "registry.docker.io"},
                                  {"scope", "repository:library/busybox:pull"}}));
}

TEST(WwwAuthenticateTest, CommasInsideQuotesStayInTheValue) {
  auto cs = ParseWwwAuthenticate(
      R"(Bearer realm="https://r.example/token", scope="repository:a/b:pull,push",)"
      R"( error="insufficient_scope")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params, (Params{{"realm", "https://r.example/token"},
                                  {"scope", "repository:a/b:pull,push"},
                                  {"error", "insufficient_scope"}}));
}

TEST(WwwAuthenticateTest, EscapedQuotesAndBackslashes) {
  auto cs = ParseWwwAuthenticate(R"(Bearer realm="a\"b\\c\d",service="x")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params.at("realm"), R"(a"b\cd)");
  EXPECT_EQ(cs[0].params.at("service"), "x");
}

TEST(WwwAuthenticateTest, EmptyQuotedValue) {
  auto cs = ParseWwwAuthenticate(R"(Bearer realm="",service="s")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params, (Params{{"realm", ""}, {"service", "s"}}));
}

TEST(WwwAuthenticateTest, Basic) {
  auto cs = ParseWwwAuthenticate(R"(Basic realm="Registry Realm")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params, (Params{{"realm", "Registry Realm"}}));
}

TEST(WwwAuthenticateTest, SchemeWithoutParams) {
  auto cs = ParseWwwAuthenticate("Negotiate");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "negotiate");
  EXPECT_TRUE(cs[0].params.empty());
}

TEST(WwwAuthenticateTest, TwoChallengesInOneHeader) {
  auto cs = ParseWwwAuthenticate(
      R"(Bearer realm="https://t.example/token",service="reg", Basic realm="fallback")");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params, (Params{{"realm", "https://t.example/token"}, {"service", "reg"}}));
  EXPECT_EQ(cs[1].scheme, "basic");
  EXPECT_EQ(cs[1].params, (Params{{"realm", "fallback"}}));
}

TEST(WwwAuthenticateTest, ChallengeWithoutParamsFollowedByAnother) {
  auto cs = ParseWwwAuthenticate(R"(Negotiate, Basic realm="r")");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "negotiate");
  EXPECT_TRUE(cs[0].params.empty());
  EXPECT_EQ(cs[1].scheme, "basic");
  EXPECT_EQ(cs[1].params.at("realm"), "r");
}

TEST(WwwAuthenticateTest, UnquotedTokenValues) {
  auto cs = ParseWwwAuthenticate("Bearer realm=token-server.example,service=reg.example,x=1");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params,
            (Params{{"realm", "token-server.example"}, {"service", "reg.example"}, {"x", "1"}}));
}

TEST(WwwAuthenticateTest, MixedQuotedAndUnquoted) {
  auto cs = ParseWwwAuthenticate(R"(Bearer service=reg,realm="https://a/b")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params, (Params{{"service", "reg"}, {"realm", "https://a/b"}}));
}

TEST(WwwAuthenticateTest, WhitespaceAroundSeparators) {
  auto cs = ParseWwwAuthenticate("  Bearer   realm = \"r\" ,\tservice=\t\"s\"  ,  scope=\"x\"  ");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params, (Params{{"realm", "r"}, {"service", "s"}, {"scope", "x"}}));
}

TEST(WwwAuthenticateTest, SchemeAndParamNamesAreCaseInsensitive) {
  auto cs = ParseWwwAuthenticate(R"(BEARER Realm="https://A.example/Token",SERVICE="Reg")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  // Names are lowercased; values are kept as they are.
  EXPECT_EQ(cs[0].params, (Params{{"realm", "https://A.example/Token"}, {"service", "Reg"}}));

  auto basic = ParseWwwAuthenticate(R"(bAsIc REALM="x")");
  ASSERT_EQ(basic.size(), 1u);
  EXPECT_EQ(basic[0].scheme, "basic");
  EXPECT_EQ(basic[0].params, (Params{{"realm", "x"}}));
}

TEST(WwwAuthenticateTest, EmptyHeader) {
  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("   ").empty());
  EXPECT_TRUE(ParseWwwAuthenticate(" , ,").empty());
}

TEST(WwwAuthenticateTest, Garbage) {
  EXPECT_TRUE(ParseWwwAuthenticate("\"just a string\"").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("=value").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("(){}<>").empty());
  EXPECT_TRUE(ParseWwwAuthenticate(std::string("\0\0", 2)).empty());
}

TEST(WwwAuthenticateTest, GarbageAfterAChallengeKeepsTheChallenge) {
  auto cs = ParseWwwAuthenticate(R"(Bearer realm="r",service="s" @@@ junk)");
  ASSERT_GE(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params, (Params{{"realm", "r"}, {"service", "s"}}));
}

TEST(WwwAuthenticateTest, UnterminatedQuoteDropsThatChallenge) {
  EXPECT_TRUE(ParseWwwAuthenticate(R"(Bearer realm="https://never.closed)").empty());
  EXPECT_TRUE(ParseWwwAuthenticate(R"(Bearer realm="ends with escape\")").empty());

  auto cs = ParseWwwAuthenticate(R"(Basic realm="ok", Bearer realm="unterminated)");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params, (Params{{"realm", "ok"}}));
}

TEST(WwwAuthenticateTest, ParamWithoutValue) {
  // "realm=" followed by nothing: an empty token value, not a crash.
  auto cs = ParseWwwAuthenticate("Bearer realm=");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params, (Params{{"realm", ""}}));
}

TEST(WwwAuthenticateTest, RepeatedParamKeepsOneValue) {
  auto cs = ParseWwwAuthenticate(R"(Bearer realm="first",realm="second")");
  ASSERT_EQ(cs.size(), 1u);
  ASSERT_EQ(cs[0].params.size(), 1u);
  EXPECT_TRUE(cs[0].params.at("realm") == "first" || cs[0].params.at("realm") == "second");
}

}  // namespace
}  // namespace regfs
