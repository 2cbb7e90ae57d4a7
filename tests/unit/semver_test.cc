#include "transports/sync/semver.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace regfs {
namespace {

SemverVersion V(const std::string& s) {
  auto v = ParseSemver(s);
  EXPECT_TRUE(v.ok()) << s << ": " << (v.ok() ? "" : v.error().message);
  return v.ok() ? *v : SemverVersion{};
}

TEST(SemverTest, ParsesLenientVersions) {
  struct Case {
    const char* text;
    const char* normalized;
  } cases[] = {
      {"1", "1.0.0"},
      {"1.2", "1.2.0"},
      {"1.2.3", "1.2.3"},
      {"v1.2.3", "1.2.3"},
      {"v2", "2.0.0"},
      {"01.002.3", "1.2.3"},  // leading zeros are coerced
      {"1.2.3-rc.1", "1.2.3-rc.1"},
      {"1.2-beta", "1.2.0-beta"},
      {"1.2.3+build.5", "1.2.3+build.5"},
      {"1.2.3-rc.1+build-5", "1.2.3-rc.1+build-5"},
      {"1.0.0-0abc", "1.0.0-0abc"},
      {"1.0.0-a-b--c", "1.0.0-a-b--c"},
      {"18446744073709551615.0.0", "18446744073709551615.0.0"},
  };
  for (const Case& c : cases) {
    auto v = ParseSemver(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.error().message;
    EXPECT_EQ(v->String(), c.normalized) << c.text;
  }
  SemverVersion v = V("v3.12.1-rc.2+meta");
  EXPECT_EQ(v.major, 3u);
  EXPECT_EQ(v.minor, 12u);
  EXPECT_EQ(v.patch, 1u);
  EXPECT_EQ(v.prerelease, "rc.2");
  EXPECT_EQ(v.metadata, "meta");
}

TEST(SemverTest, RejectsNonVersions) {
  for (const char* text : {"",
                           "v",
                           "latest",
                           "1.2.3.4",
                           "1.",
                           "1..2",
                           ".1",
                           "V1.2.3",
                           " 1.2.3",
                           "1.2.3 ",
                           "1.2.x",
                           "*",
                           "1.2.3-",
                           "1.2.3-rc..1",
                           "1.2.3-01",
                           "1.2.3-rc.01",
                           "1.2.3+",
                           "1.2.3+a..b",
                           "1.2.3_rc",
                           "alpine-3.12",
                           "18446744073709551616",
                           "3.12.0-alpine_3"}) {
    auto v = ParseSemver(text);
    ASSERT_FALSE(v.ok()) << '"' << text << '"';
    EXPECT_EQ(v.error().errnum, EINVAL);
    EXPECT_NE(v.error().message.find(text), std::string::npos) << v.error().message;
  }
}

TEST(SemverTest, OrdersAsSemver2) {
  // Each sorts strictly before the next (semver.org's example, and then some).
  const char* ordered[] = {
      "0.9.9",      "1.0.0-0",      "1.0.0-1",       "1.0.0-2",
      "1.0.0-10",   "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
      "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
      "1.0.0",      "1.0.1",        "1.1.0",         "1.10.0",
      "2.0.0",
  };
  for (size_t i = 0; i + 1 < std::size(ordered); ++i) {
    for (size_t j = i + 1; j < std::size(ordered); ++j) {
      EXPECT_LT(CompareSemver(V(ordered[i]), V(ordered[j])), 0)
          << ordered[i] << " < " << ordered[j];
      EXPECT_GT(CompareSemver(V(ordered[j]), V(ordered[i])), 0)
          << ordered[j] << " > " << ordered[i];
    }
  }
  EXPECT_EQ(CompareSemver(V("1.2.3+a"), V("1.2.3+b")), 0);  // metadata is ignored
  EXPECT_EQ(CompareSemver(V("v1.2"), V("1.2.0")), 0);
  EXPECT_LT(CompareSemver(V("1.0.0-BETA"), V("1.0.0-alpha")), 0);  // ASCII order
}

struct CheckCase {
  const char* constraint;
  const char* version;
  bool want;
};

TEST(SemverTest, ConstraintChecks) {
  const CheckCase cases[] = {
      // Plain comparisons.
      {"1.2.3", "1.2.3", true},
      {"=1.2.3", "1.2.3", true},
      {"= 2.0", "2.0.0", true},
      {"= 2.0", "2.0.5", true},  // a missing patch is a wildcard
      {"= 2.0", "1.2.3", false},
      {"4.1", "4.1.0", true},
      {"v1.2.3", "1.2.3+build", true},
      {"!=4.1.0", "4.1.0", false},
      {"!=4.1.0", "4.1.1", true},
      {"!=4.1", "4.1.1", false},
      {"!=4.1", "5.1.0", true},
      {"!=4.x", "4.1.0", false},
      {"!=4.x", "5.1.0", true},
      {"!=4.1.x", "4.2.0", true},
      {"!=4.1-alpha", "4.1.0", true},
      {"!=4.1-alpha", "4.1.0-alpha", false},
      {">1.1", "4.1.0", true},
      {">1.1", "1.1.0", false},
      {">1.1", "1.1.5", false},  // ">1.1" wants 1.2 or more
      {">1", "1.9.9", false},
      {">1", "2.0.0", true},
      {">1.2.3", "1.2.4", true},
      {">1.2.3", "1.2.3", false},
      {"<1.1", "0.1.0", true},
      {"<1.1", "1.1.0", false},
      {"<1.x", "0.1.1", true},
      {"<1.x", "1.1.1", false},
      {"<1.1.x", "1.0.500", true},
      {"<1.1.x", "1.1.500", false},
      {">=1.1", "1.1.0", true},
      {">=1.1", "0.0.9", false},
      {"=>1.1", "4.1.0", true},
      {">= 3.12.0", "3.12.0", true},
      {">= 3.12.0", "3.13", true},
      {">= 3.12.0", "3.11.9", false},
      {"<=1.1", "1.1.0", true},
      {"<=1.1", "1.1.1", true},  // "<=1.1" is "<1.2"
      {"=<1.1", "1.2.0", false},
      {"<=2.x", "2.9.0", true},
      {"<=2.x", "3.0.0", false},
      {"<=4.5", "4.6.3", false},
      // Wildcards.
      {"*", "1", true},
      {"*", "4.5.6", true},
      {"x", "0.0.1", true},
      {"1.x", "1.4", true},
      {"1.x", "2.0.0", false},
      {"1.2.x", "1.2.9", true},
      {"1.2.X", "1.3.0", false},
      {"1.2.*", "1.2.0", true},
      {">= 1.2.x", "1.2.0", true},
      {"0.x.x", "1.2.3", false},
      {"0.0.x", "1.2.3", false},
      // Tilde.
      {"~1.2.3", "1.2.5", true},
      {"~1.2.3", "1.2.2", false},
      {"~1.2.3", "1.3.0", false},
      {"~>1.2.3", "1.2.9", true},
      {"~1", "1.3.5", true},
      {"~1", "2.1.1", false},
      {"~1.x", "1.9.0", true},
      {"~1.1", "1.2.3", false},
      {"~*", "2.1.1", true},
      {"~0.0.0", "1.2.3", true},
      // Caret.
      {"^1.2.3", "1.9.0", true},
      {"^1.2.3", "2.0.0", false},
      {"^1.2.3", "1.2.2", false},
      {"^1.1", "1.1.1", true},
      {"^1.x", "1.1.1", true},
      {"^2.x", "1.1.1", false},
      {"^0.2.3", "0.2.9", true},
      {"^0.2.3", "0.3.0", false},
      {"^0.2", "0.2.0", true},
      {"^0.0.3", "0.0.3", true},
      {"^0.0.3", "0.0.4", false},
      {"^0.0", "0.0.9", true},
      {"^0.0", "0.1.0", false},
      {"^0", "0.9.0", true},
      {"^0", "1.0.0", false},
      {"^0.0.0", "1.2.3", false},
      // AND, by space or comma.
      {">1.1, <2", "1.1.1", false},
      {">1.1, <2", "1.2.1", true},
      {">1.1 <2", "1.2.1", true},
      {">1.1    <3", "4.3.2", false},
      {">=1.1,<2,!=1.2.3", "1.2.3", false},
      {">= 1.1 , < 2", "1.5.0", true},
      {"> 1.1 < 2", "1.2.1", true},
      // OR.
      {">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true},
      {">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false},
      {">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true},
      {"1.2.3||2.0.0", "2.0.0", true},
      // Hyphen ranges.
      {"1.1 - 2", "1.1.1", true},
      {"1.1 - 2", "2.9.0", true},  // "<= 2" is "< 3"
      {"1.1 - 2", "3.0.0", false},
      {"1.5.0 - 4.5", "3.7.0", true},
      {"1.2 - 1.4.5", "1.4.5", true},
      {"1.2 - 1.4.5", "1.4.6", false},
      {"1.2 - 1.4.5", "1.1.9", false},
      {"1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true},
      {"1 - 2 || 5", "5.0.1", true},
      {"1.1-3", "4.3.2", false},  // the version 1.1.0-3, not a range
      // Prereleases are only taken by an AND group that names one.
      {"*", "1.2.3-alpha.1", false},
      {">=1.1", "4.1.0-beta", false},
      {"<=1.1", "0.1.0-alpha", false},
      {"<=1.1-a", "0.1.0-alpha", true},
      {"~1.1", "1.1.1-alpha", false},
      {"~1.1-alpha", "1.1.1-beta", true},
      {"~1.1.1-beta", "1.1.1-alpha", false},
      {"~1.1.1-beta", "1.1.1", true},
      {"^1.x", "1.1.1-beta1", false},
      {"^1.1.2-alpha", "1.2.1-beta1", true},
      {"^1.2.x-alpha", "1.1.1-beta1", false},
      {">=1.2.3-0", "1.2.3-rc.1", true},
      {">=1.2.3", "1.2.3-rc.1", false},
      {">=1.2.3-rc.2", "1.2.3-rc.1", false},
      {">=1.2.3-rc.2", "1.2.3-rc.10", true},
      {">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true},
      {">= 1.0.0  <= 2.0.0-beta", "3.0.0", false},
      {">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false},
      {">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", false},
      {">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true},
      {"!=4.1-alpha", "4.1.1-alpha", false},
  };
  for (const CheckCase& c : cases) {
    auto constraint = SemverConstraint::Parse(c.constraint);
    ASSERT_TRUE(constraint.ok()) << c.constraint << ": " << constraint.error().message;
    EXPECT_EQ(constraint->Check(V(c.version)), c.want)
        << '"' << c.constraint << "\" against " << c.version;
  }
}

TEST(SemverTest, RejectsImproperConstraints) {
  for (const char* text : {"",
                           "   ",
                           "||",
                           "1.2 ||",
                           "|| 1.2",
                           ">= bar",
                           "BAR >= 1.2.3",
                           "latest",
                           "1.2.3.4",
                           "12.3.34~ 1.2.3",
                           ">1.2,,<2",
                           ",>1.2",
                           ">1.2,",
                           "1.2 -1.4",
                           "1.2 - ",
                           ">=1.2 - 1.4",
                           "1.2 - >1.4",
                           "1 - 2 - 3",
                           "> =1.2",
                           "v1.2.3-beta.01",
                           "1.xx",
                           "1x",
                           "1|2",
                           "1.2.3<2",
                           "=",
                           "~",
                           "1.2.3-",
                           "99999999999999999999.0.0"}) {
    auto c = SemverConstraint::Parse(text);
    ASSERT_FALSE(c.ok()) << '"' << text << '"';
    EXPECT_EQ(c.error().errnum, EINVAL);
    EXPECT_NE(c.error().message.find("semver constraint"), std::string::npos) << c.error().message;
  }
}

TEST(SemverTest, AcceptsEveryOperatorSpelling) {
  for (const char* text : {"=1", "!=1", ">1", "<1", ">=1", "=>1", "<=1", "=<1", "~1", "~>1", "^1",
                           "1", "v1", "> 1", ">=\t1", ">=1,<2", ">=1\n<2"}) {
    EXPECT_TRUE(SemverConstraint::Parse(text).ok()) << text;
  }
}

}  // namespace
}  // namespace regfs
