#include "transports/sync/semver.h"

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace regfs {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }
bool IsIdentChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}
bool IsWildcard(std::string_view part) { return part == "x" || part == "X" || part == "*"; }
bool IsNumeric(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

bool ParseNumber(std::string_view digits, uint64_t* out) {
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return ec == std::errc() && end == digits.data() + digits.size();
}

// A version as written, split into its pieces but not yet interpreted.
struct VersionText {
  std::string_view parts[3];
  int nparts = 0;
  std::string_view prerelease, metadata;
};

// Reads dot-separated identifiers of [0-9A-Za-z-]+ at `pos`.
bool ReadIdentifiers(std::string_view s, size_t* pos, std::string_view* out) {
  size_t start = *pos;
  while (true) {
    size_t begin = *pos;
    while (*pos < s.size() && IsIdentChar(s[*pos])) ++*pos;
    if (*pos == begin) return false;
    if (*pos < s.size() && s[*pos] == '.') {
      ++*pos;
      continue;
    }
    break;
  }
  *out = s.substr(start, *pos - start);
  return true;
}

// Reads `v?PART(.PART){0,2}(-PRE)?(+META)?` at `pos`; a PART is digits, or with `wildcards`
// also runs of x, X and *. Stops at the first character that cannot continue it.
bool ReadVersionText(std::string_view s, size_t* pos, bool wildcards, VersionText* out) {
  if (*pos < s.size() && s[*pos] == 'v') ++*pos;
  auto part_char = [&](char c) {
    return IsDigit(c) || (wildcards && (c == 'x' || c == 'X' || c == '*'));
  };
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (*pos + 1 >= s.size() || s[*pos] != '.' || !part_char(s[*pos + 1])) break;
      ++*pos;
    }
    size_t begin = *pos;
    while (*pos < s.size() && part_char(s[*pos])) ++*pos;
    if (*pos == begin) return false;
    out->parts[i] = s.substr(begin, *pos - begin);
    out->nparts = i + 1;
  }
  if (*pos < s.size() && s[*pos] == '-') {
    ++*pos;
    if (!ReadIdentifiers(s, pos, &out->prerelease)) return false;
  }
  if (*pos < s.size() && s[*pos] == '+') {
    ++*pos;
    if (!ReadIdentifiers(s, pos, &out->metadata)) return false;
  }
  return true;
}

// Numeric prerelease identifiers may not have leading zeros.
bool ValidPrerelease(std::string_view pre) {
  if (pre.empty()) return true;  // none
  size_t start = 0;
  while (start <= pre.size()) {
    size_t dot = pre.find('.', start);
    std::string_view id = pre.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (id.empty() || (IsNumeric(id) && id.size() > 1 && id[0] == '0')) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

int CompareIdentifier(std::string_view a, std::string_view b) {
  if (a == b) return 0;
  if (a.empty()) return -1;
  if (b.empty()) return 1;
  bool an = IsNumeric(a), bn = IsNumeric(b);
  if (an && bn) {
    std::string_view ta = a.substr(std::min(a.find_first_not_of('0'), a.size()));
    std::string_view tb = b.substr(std::min(b.find_first_not_of('0'), b.size()));
    if (ta.size() != tb.size()) return ta.size() < tb.size() ? -1 : 1;
    return ta.compare(tb) < 0 ? -1 : (ta == tb ? 0 : 1);
  }
  if (an) return -1;
  if (bn) return 1;
  return a.compare(b) < 0 ? -1 : 1;
}

// Identifier by identifier; a missing identifier sorts first.
int ComparePrerelease(std::string_view a, std::string_view b) {
  size_t ia = 0, ib = 0;
  while (true) {
    size_t ea = a.find('.', ia), eb = b.find('.', ib);
    std::string_view pa = ia <= a.size() ? a.substr(ia, ea == std::string_view::npos ? ea : ea - ia)
                                         : std::string_view();
    std::string_view pb = ib <= b.size() ? b.substr(ib, eb == std::string_view::npos ? eb : eb - ib)
                                         : std::string_view();
    if (int d = CompareIdentifier(pa, pb); d != 0) return d;
    if (ea == std::string_view::npos && eb == std::string_view::npos) return 0;
    ia = ea == std::string_view::npos ? a.size() + 1 : ea + 1;
    ib = eb == std::string_view::npos ? b.size() + 1 : eb + 1;
  }
}

using Comparison = SemverConstraint::Comparison;
using Op = Comparison::Op;

bool Tilde(const SemverVersion& v, const Comparison& c) {
  if (CompareSemver(v, c.version) < 0) return false;
  const SemverVersion& cv = c.version;
  if (cv.major == 0 && cv.minor == 0 && cv.patch == 0 && !c.minor_any && !c.patch_any) {
    return true;  // "~*", "~0.0.0": anything
  }
  if (v.major != cv.major) return false;
  return v.minor == cv.minor || c.minor_any;
}

bool Caret(const SemverVersion& v, const Comparison& c) {
  const SemverVersion& cv = c.version;
  if (CompareSemver(v, cv) < 0) return false;
  if (cv.major > 0 || c.minor_any) return v.major == cv.major;
  if (v.major > 0) return false;
  if (cv.minor > 0 || c.patch_any) return v.minor == cv.minor;
  if (v.minor > 0) return false;
  return v.patch == cv.patch;
}

bool Satisfies(const SemverVersion& v, const Comparison& c) {
  const SemverVersion& cv = c.version;
  bool wild = c.any || c.minor_any || c.patch_any;
  switch (c.op) {
    case Op::kEqual:
      return wild ? Tilde(v, c) : CompareSemver(v, cv) == 0;
    case Op::kNotEqual:
      if (wild) {
        if (v.major != cv.major) return true;
        if (c.minor_any) return false;
        if (v.minor != cv.minor) return true;
        if (c.patch_any) {
          return (!v.prerelease.empty() || !cv.prerelease.empty()) &&
                 ComparePrerelease(v.prerelease, cv.prerelease) != 0;
        }
        if (v.patch != cv.patch) return true;
      }
      return CompareSemver(v, cv) != 0;
    case Op::kGreater:
      if (!wild || c.any) return CompareSemver(v, cv) > 0;
      if (v.major != cv.major) return v.major > cv.major;
      if (c.minor_any) return false;  // ">1" wants 2 or more
      return v.minor > cv.minor;      // ">1.1" wants 1.2 or more
    case Op::kLess:
      return CompareSemver(v, cv) < 0;
    case Op::kGreaterEqual:
      return CompareSemver(v, cv) >= 0;
    case Op::kLessEqual:
      if (!wild) return CompareSemver(v, cv) <= 0;
      if (v.major > cv.major) return false;
      return !(v.major == cv.major && v.minor > cv.minor && !c.minor_any);
    case Op::kTilde:
      return Tilde(v, c);
    case Op::kCaret:
      return Caret(v, c);
  }
  return false;
}

Error Improper(std::string_view text, const std::string& why) {
  return MakeError(EINVAL, "improper semver constraint \"" + std::string(text) + "\": " + why);
}

// Reads the operator at `pos` (none is "=").
Op ReadOp(std::string_view s, size_t* pos) {
  static constexpr struct {
    std::string_view text;
    Op op;
  } kOps[] = {
      {"!=", Op::kNotEqual},  {">=", Op::kGreaterEqual}, {"=>", Op::kGreaterEqual},
      {"<=", Op::kLessEqual}, {"=<", Op::kLessEqual},    {"~>", Op::kTilde},
      {"=", Op::kEqual},      {">", Op::kGreater},       {"<", Op::kLess},
      {"~", Op::kTilde},      {"^", Op::kCaret},
  };
  for (const auto& o : kOps) {
    if (s.substr(*pos).starts_with(o.text)) {
      *pos += o.text.size();
      return o.op;
    }
  }
  return Op::kEqual;
}

// Reads a constraint's version at `pos` and resolves its wildcards.
Result<Comparison> ReadConstraintVersion(std::string_view group, size_t* pos, Op op) {
  size_t begin = *pos;
  VersionText t;
  if (!ReadVersionText(group, pos, /*wildcards=*/true, &t)) {
    return Improper(group, "expected a version at \"" + std::string(group.substr(begin)) + "\"");
  }
  std::string_view written = group.substr(begin, *pos - begin);
  for (int i = 0; i < t.nparts; ++i) {
    if (!IsNumeric(t.parts[i]) && !IsWildcard(t.parts[i])) {
      return Improper(group, "\"" + std::string(written) + "\" is no version");
    }
  }
  Comparison c;
  c.op = op;
  int numeric = 0;  // how many leading parts are numbers
  if (IsWildcard(t.parts[0])) {
    c.any = true;
  } else if (t.nparts < 2 || IsWildcard(t.parts[1])) {
    c.minor_any = true;
    numeric = 1;
  } else if (t.nparts < 3 || IsWildcard(t.parts[2])) {
    c.patch_any = true;
    numeric = 2;
  } else {
    numeric = 3;
    c.version.metadata = std::string(t.metadata);
  }
  uint64_t* fields[3] = {&c.version.major, &c.version.minor, &c.version.patch};
  for (int i = 0; i < numeric; ++i) {
    if (!ParseNumber(t.parts[i], fields[i])) {
      return Improper(group, "\"" + std::string(written) + "\": a part is out of range");
    }
  }
  if (!ValidPrerelease(t.prerelease)) {
    return Improper(group, "\"" + std::string(written) + "\": a numeric prerelease identifier " +
                               "has a leading zero");
  }
  c.version.prerelease = std::string(t.prerelease);
  return c;
}

size_t SkipSpace(std::string_view s, size_t* pos) {
  size_t begin = *pos;
  while (*pos < s.size() && IsSpace(s[*pos])) ++*pos;
  return *pos - begin;
}

// One AND group: comparisons separated by whitespace or a comma, hyphen ranges among them.
Result<std::vector<Comparison>> ParseGroup(std::string_view group) {
  std::vector<Comparison> out;
  size_t pos = 0;
  SkipSpace(group, &pos);
  if (pos == group.size()) return Improper(group, "empty");
  while (true) {
    size_t op_begin = pos;
    Op op = ReadOp(group, &pos);
    bool bare = pos == op_begin;
    SkipSpace(group, &pos);
    ASSIGN_OR_RETURN(Comparison c, ReadConstraintVersion(group, &pos, op));
    size_t space = SkipSpace(group, &pos);
    if (bare && space > 0 && pos + 1 < group.size() && group[pos] == '-' &&
        IsSpace(group[pos + 1])) {
      // "A - B": >= A, <= B.
      ++pos;
      SkipSpace(group, &pos);
      ASSIGN_OR_RETURN(Comparison high, ReadConstraintVersion(group, &pos, Op::kLessEqual));
      c.op = Op::kGreaterEqual;
      out.push_back(std::move(c));
      c = std::move(high);
      space = SkipSpace(group, &pos);
    }
    out.push_back(std::move(c));
    if (pos == group.size()) break;
    if (group[pos] == ',') {
      ++pos;
      SkipSpace(group, &pos);
    } else if (space == 0) {
      return Improper(group, "expected whitespace or a comma before \"" +
                                 std::string(group.substr(pos)) + "\"");
    }
  }
  return out;
}

}  // namespace

std::string SemverVersion::String() const {
  std::string s = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (!prerelease.empty()) s += "-" + prerelease;
  if (!metadata.empty()) s += "+" + metadata;
  return s;
}

Result<SemverVersion> ParseSemver(std::string_view text) {
  auto invalid = [&](const std::string& why) {
    return MakeError(EINVAL, "\"" + std::string(text) + "\" is no semantic version: " + why);
  };
  size_t pos = 0;
  VersionText t;
  if (!ReadVersionText(text, &pos, /*wildcards=*/false, &t) || pos != text.size()) {
    return invalid("expected [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+METADATA]");
  }
  SemverVersion v;
  uint64_t* fields[3] = {&v.major, &v.minor, &v.patch};
  for (int i = 0; i < t.nparts; ++i) {
    if (!ParseNumber(t.parts[i], fields[i])) return invalid("a part is out of range");
  }
  if (!ValidPrerelease(t.prerelease)) {
    return invalid("a numeric prerelease identifier has a leading zero");
  }
  v.prerelease = std::string(t.prerelease);
  v.metadata = std::string(t.metadata);
  return v;
}

int CompareSemver(const SemverVersion& a, const SemverVersion& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  if (a.prerelease.empty() || b.prerelease.empty()) {
    if (a.prerelease.empty() && b.prerelease.empty()) return 0;
    return a.prerelease.empty() ? 1 : -1;
  }
  return ComparePrerelease(a.prerelease, b.prerelease);
}

Result<SemverConstraint> SemverConstraint::Parse(std::string_view text) {
  SemverConstraint out;
  size_t start = 0;
  while (true) {
    size_t bar = text.find("||", start);
    std::string_view group = text.substr(start, bar == std::string_view::npos ? bar : bar - start);
    ASSIGN_OR_RETURN(std::vector<Comparison> all, ParseGroup(group));
    Group g;
    g.takes_prereleases = std::any_of(
        all.begin(), all.end(), [](const Comparison& c) { return !c.version.prerelease.empty(); });
    g.all = std::move(all);
    out.any_of_.push_back(std::move(g));
    if (bar == std::string_view::npos) break;
    start = bar + 2;
  }
  return out;
}

bool SemverConstraint::Check(const SemverVersion& v) const {
  for (const Group& g : any_of_) {
    if (!v.prerelease.empty() && !g.takes_prereleases) continue;
    if (std::all_of(g.all.begin(), g.all.end(),
                    [&](const Comparison& c) { return Satisfies(v, c); })) {
      return true;
    }
  }
  return false;
}

}  // namespace regfs
