// Semantic versions and version constraints as `skopeo sync` uses them for `images-by-semver`:
// the semantics of github.com/Masterminds/semver v3 (NewVersion, NewConstraint, Check).
//
// Versions are read leniently, as NewVersion does: an optional leading "v", one to three
// numeric parts (missing ones are 0, leading zeros are accepted), an optional prerelease
// ("-rc.1", numeric identifiers without leading zeros) and optional build metadata ("+build").
// Ordering is semver 2.0's: metadata is ignored, a prerelease sorts before its release, and
// prerelease identifiers compare numerically when both are numeric, numeric before
// alphanumeric, and in ASCII order otherwise.
//
// Constraints: comparisons `=` (or none), `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~` (`~>`)
// and `^`, versions with wildcards `x`, `X` or `*` in place of parts ("1.2.x", "*"), hyphen
// ranges "1.2 - 1.4.5" (whitespace around the hyphen is required: "1.2-1.4.5" is the version
// 1.2.0 with prerelease 1.4.5), AND by whitespace or a comma, OR by "||". As in Masterminds
// v3.3 and later, a prerelease version only satisfies an AND group in which some comparison
// names a prerelease (">=1.2.3-0" takes prereleases, ">=1.2.3" never does); the group's
// comparisons then order it as usual.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "transports/util/result.h"

namespace regfs {

struct SemverVersion {
  uint64_t major = 0, minor = 0, patch = 0;
  std::string prerelease;  // without the "-"; empty for a release
  std::string metadata;    // without the "+"

  // "1.2.3-rc.1+build", without any "v".
  std::string String() const;
};

// EINVAL when `text` is no version in the lenient form above.
Result<SemverVersion> ParseSemver(std::string_view text);

// <0, 0 or >0 as a sorts before, with or after b (metadata ignored).
int CompareSemver(const SemverVersion& a, const SemverVersion& b);

class SemverConstraint {
 public:
  // EINVAL naming the part that is not understood.
  static Result<SemverConstraint> Parse(std::string_view text);

  bool Check(const SemverVersion& v) const;

  // One comparison of an AND group, with its wildcards resolved.
  struct Comparison {
    enum class Op { kEqual, kNotEqual, kGreater, kLess, kGreaterEqual, kLessEqual, kTilde, kCaret };
    Op op = Op::kEqual;
    SemverVersion version;   // wildcard parts are 0
    bool any = false;        // the major part was a wildcard ("*", "x.1")
    bool minor_any = false;  // the minor part was a wildcard or absent ("1", "1.x")
    bool patch_any = false;  // the patch part was a wildcard or absent ("1.2", "1.2.x")
  };

 private:
  struct Group {
    std::vector<Comparison> all;
    bool takes_prereleases = false;
  };
  std::vector<Group> any_of_;
};

}  // namespace regfs
