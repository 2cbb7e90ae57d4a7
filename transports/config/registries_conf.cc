#include "transports/config/registries_conf.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <sstream>
#include <toml.hpp>

#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr int64_t kMaxConfSize = 4 << 20;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string UserConfigDir() {
  std::string config = Env("XDG_CONFIG_HOME");
  if (config.empty()) {
    std::string home = Env("HOME");
    if (home.empty()) return {};
    config = home + "/.config";
  }
  return config + "/containers";
}

std::vector<std::string> DropIns(const std::string& dir) {
  std::vector<std::string> out;
  auto names = ListDir(dir);  // a directory that cannot be read holds no drop-ins
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".conf") == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  return out;
}

// The host part of "host[:port][/path]".
std::string_view HostOf(std::string_view location) {
  return location.substr(0, location.find('/'));
}

bool IsWildcard(std::string_view prefix) { return prefix.rfind("*.", 0) == 0; }

// containers' rule: `name` is `prefix` or lies below it.
bool MatchesPrefix(std::string_view name, std::string_view prefix) {
  if (IsWildcard(prefix)) {
    std::string_view host = HostOf(name);
    std::string_view suffix = prefix.substr(1);  // ".example.com"
    return host.size() > suffix.size() &&
           host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  if (name.size() < prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '/';
}

Result<std::string> Location(const std::string& value, const std::string& what) {
  std::string v = value;
  while (!v.empty() && v.back() == '/') v.pop_back();
  if (v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) {
    return MakeError(EINVAL, what + " \"" + value + "\": URI schemes are not supported");
  }
  return v;
}

// --- TOML, read with toml11 --------------------------------------------------------------
//
// toml11 reports with exceptions; none leaves this file. Its syntax errors are several lines
// of text around a source excerpt; an Error gets one line, "line N: what".

// toml11 parses arrays and inline tables recursively, so a deeply nested value would exhaust
// the stack long before the size bound is reached. registries.conf has no use for nesting.
constexpr int kMaxNesting = 64;

Error ErrorAtLine(size_t line, const std::string& what) {
  if (line == 0) return MakeError(EINVAL, what);
  return MakeError(EINVAL, "line " + std::to_string(line) + ": " + what);
}

// The length of the valid UTF-8 sequence at the start of `s` (no overlong forms, surrogates
// or code points past U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xc0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xe0 && b(1) < 0xa0) || (c == 0xed && b(1) > 0x9f)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xf0 && b(1) < 0x90) || (c == 0xf4 && b(1) > 0x8f)) return 0;
    return 4;
  }
  return 0;
}

// TOML files are UTF-8, and toml11 3.7 reads past the end of its buffer on some byte
// sequences that are not (a literal string of them), so they never reach it.
Status CheckUtf8(std::string_view s) {
  size_t line = 1;
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return ErrorAtLine(line, "not valid UTF-8 (TOML files are UTF-8)");
    if (s[i] == '\n') ++line;
    i += n;
  }
  return Ok();
}

// What toml11 is given: `s` with the text of its comments left out. Every command reads
// registries.conf, such files are mostly comments, and toml11 3.7 is slow over them: Debian's
// registries.conf (3.8 KB, nothing but comments) costs it 2.8 M instructions as written and
// 0.34 M without the comment text. The '#' and the line break stay, so lines keep their
// numbers; a comment TOML might refuse (a control character, a byte that is not ASCII) is
// passed on whole for toml11 to judge.
//
// Also refuses arrays and inline tables nested more than kMaxNesting deep. Brackets inside
// strings and comments do not count; everything else about the syntax is toml11's to judge.
Result<std::string> PrepareForToml(std::string_view s) {
  enum class State { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  State state = State::kCode;
  int depth = 0;
  size_t line = 1;
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;         // s[0, copied) is in `out`, or was left out
  size_t comment_start = 0;  // just after the comment's '#'
  bool plain_comment = true;
  auto at = [&](size_t i, std::string_view token) { return s.substr(i, token.size()) == token; };
  // At a closing """ or ''': up to two more quotes still belong to the string.
  auto close_multi = [&](size_t& i, char quote) {
    i += 2;
    for (int extra = 0; extra < 2 && i + 1 < s.size() && s[i + 1] == quote; ++extra) ++i;
    state = State::kCode;
  };
  // The comment ends before s[end] (a line break, or the end of the text).
  auto end_comment = [&](size_t end) {
    if (end > comment_start && s[end - 1] == '\r' && end < s.size()) --end;  // CRLF
    for (size_t j = comment_start; plain_comment && j < end; ++j) {
      const unsigned char c = static_cast<unsigned char>(s[j]);
      if ((c < 0x20 && c != '\t') || c >= 0x7f) plain_comment = false;
    }
    if (plain_comment) {
      out.append(s.substr(copied, comment_start - copied));
      copied = end;
    }
    state = State::kCode;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\n') {
      ++line;
      if (state == State::kComment) end_comment(i);
      // Single-line strings end here (unterminated ones are toml11's to report).
      if (state == State::kBasic || state == State::kLiteral) state = State::kCode;
      continue;
    }
    switch (state) {
      case State::kCode:
        if (c == '#') {
          state = State::kComment;
          comment_start = i + 1;
          plain_comment = true;
        } else if (at(i, R"(""")")) {
          state = State::kMultiBasic;
          i += 2;
        } else if (at(i, "'''")) {
          state = State::kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = State::kBasic;
        } else if (c == '\'') {
          state = State::kLiteral;
        } else if (c == '[' || c == '{') {
          if (++depth > kMaxNesting) {
            return ErrorAtLine(line, "arrays or inline tables nested more than " +
                                         std::to_string(kMaxNesting) + " deep");
          }
        } else if ((c == ']' || c == '}') && depth > 0) {
          --depth;
        }
        break;
      case State::kComment:
        break;
      case State::kBasic:
      case State::kMultiBasic:
        if (c == '\\') {
          if (i + 1 < s.size() && s[i + 1] != '\n') ++i;  // an escaped character
        } else if (state == State::kBasic && c == '"') {
          state = State::kCode;
        } else if (state == State::kMultiBasic && at(i, R"(""")")) {
          close_multi(i, '"');
        }
        break;
      case State::kLiteral:
        if (c == '\'') state = State::kCode;
        break;
      case State::kMultiLiteral:
        if (at(i, "'''")) close_multi(i, '\'');
        break;
    }
  }
  if (state == State::kComment) end_comment(s.size());
  out.append(s.substr(copied));
  return out;
}

// `s` without surrounding blanks or a final full stop.
std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r.");
  if (e == std::string_view::npos || e < b) return {};
  return std::string(s.substr(b, e + 1 - b));
}

// One line from a toml11 syntax error, whose text reads
//   [error] toml::parse_key_value_pair: missing value after key-value separator '='
//    --> /etc/containers/registries.conf
//      |
//    2 | b =
//      |     ^--- expected value, but got nothing
// and, when it shows several source lines ("value already exists"), shows the offending one
// last.
Error SyntaxError(const toml::syntax_error& e) {
  std::string_view text = e.what();
  std::string summary;
  std::string annotation;
  size_t line = 0;
  bool first = true;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (first) {
      first = false;
      if (l.rfind("[error] ", 0) == 0) l.remove_prefix(8);
      if (l.rfind("toml::", 0) == 0) {  // the name of the toml11 function
        const size_t colon = l.find(": ");
        l = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 2);
      }
      summary = Trim(l);
      continue;
    }
    const size_t bar = l.find(" | ");
    if (bar == std::string_view::npos) continue;
    const std::string number = Trim(l.substr(0, bar));
    if (!number.empty()) {
      if (number.size() < 10 &&
          std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        line = std::stoul(number);
      }
      continue;
    }
    // An annotation under a source line: "   |     ^--- what" or "   | ~~~ what".
    std::string_view rest = l.substr(bar + 3);
    const size_t mark = rest.find_first_of("^~");
    if (mark == std::string_view::npos) continue;
    const size_t what = rest.find_first_not_of("^-~", mark);
    if (what != std::string_view::npos) annotation = Trim(rest.substr(what));
  }
  if (line == 0) line = e.location().line();
  if (summary.empty()) summary = annotation.empty() ? "not valid TOML" : annotation;
  return ErrorAtLine(line, summary);
}

// The document in `text`; errors are "line N: what", for the caller to prefix with the file.
Result<toml::value> ParseTomlDocument(std::string_view text) {
  RETURN_IF_ERROR(CheckUtf8(text));
  ASSIGN_OR_RETURN(std::string prepared, PrepareForToml(text));
  try {
    std::istringstream in{std::move(prepared)};
    // toml11 copies the file name into every region it makes, a few for each character it
    // reads: a name short enough for std::string to keep inline saves an allocation each time
    // (a quarter of the instructions for Debian's shortnames.conf). Messages name the file
    // from the caller (Merge's `origin`), not from toml11.
    return toml::parse(in, "conf");
  } catch (const toml::syntax_error& e) {
    return SyntaxError(e);
  } catch (const std::bad_alloc&) {
    return MakeError(ENOMEM, "out of memory reading TOML");
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return MakeError(EINVAL, "not valid TOML: " + what.substr(0, what.find('\n')));
  }
}

// The line toml11 read `v` on, or 0.
size_t LineOf(const toml::value& v) {
  try {
    return v.location().line();
  } catch (...) {
    return 0;
  }
}

// `table`'s value for `key`, or nullptr. `table` must be a table.
const toml::value* FindKey(const toml::value& table, const char* key) {
  const toml::table& t = table.as_table();
  auto it = t.find(key);
  return it == t.end() ? nullptr : &it->second;
}

// The keys of one [[registry]] or [[registry.mirror]] table (written as a table or inline).
// A key regfs reads but of the wrong type is an error naming it, at its line.
class EntryReader {
 public:
  EntryReader(const toml::value& table, std::string what) : table_(table), what_(std::move(what)) {}

  Result<std::string> String(const char* key) const {
    const toml::value* v = FindKey(table_, key);
    if (!v) return std::string();
    if (!v->is_string()) {
      return ErrorAtLine(LineOf(*v), what_ + " \"" + key + "\" must be a string");
    }
    return v->as_string().str;
  }

  Result<bool> Bool(const char* key) const {
    const toml::value* v = FindKey(table_, key);
    if (!v) return false;
    if (!v->is_boolean()) {
      return ErrorAtLine(LineOf(*v), what_ + " \"" + key + "\" must be true or false");
    }
    return v->as_boolean();
  }

  // A string key that names a place (Location()), its error at its line.
  Result<std::string> Place(const char* key) const {
    ASSIGN_OR_RETURN(std::string value, String(key));
    auto place = Location(value, what_ + " " + key);
    if (!place.ok()) return ErrorAtLine(LineOf(*FindKey(table_, key)), place.error().message);
    return place;
  }

  // An error about the table as a whole, at its header (or its inline table).
  Error Fail(const std::string& message) const {
    return ErrorAtLine(LineOf(table_), what_ + " " + message);
  }

  Error FailAt(const char* key, const std::string& message) const {
    const toml::value* v = FindKey(table_, key);
    return ErrorAtLine(v ? LineOf(*v) : LineOf(table_), what_ + " " + message);
  }

 private:
  const toml::value& table_;
  const std::string what_;
};

Result<RegistryMirror> ParseMirror(const toml::value& value) {
  if (!value.is_table()) return ErrorAtLine(LineOf(value), "[[registry.mirror]] must be a table");
  EntryReader r(value, "[[registry.mirror]]");
  RegistryMirror m;
  ASSIGN_OR_RETURN(m.location, r.Place("location"));
  if (m.location.empty()) return r.Fail("needs a location");
  ASSIGN_OR_RETURN(m.insecure, r.Bool("insecure"));
  ASSIGN_OR_RETURN(m.pull_from_mirror, r.String("pull-from-mirror"));
  if (!m.pull_from_mirror.empty() && m.pull_from_mirror != "all" &&
      m.pull_from_mirror != "digest-only" && m.pull_from_mirror != "tag-only") {
    return r.FailAt("pull-from-mirror", "pull-from-mirror \"" + m.pull_from_mirror +
                                            "\" is not all, digest-only or tag-only");
  }
  return m;
}

Result<RegistryEntry> ParseEntry(const toml::value& value) {
  if (!value.is_table()) return ErrorAtLine(LineOf(value), "[[registry]] must be a table");
  EntryReader r(value, "[[registry]]");
  RegistryEntry e;
  ASSIGN_OR_RETURN(e.location, r.Place("location"));
  ASSIGN_OR_RETURN(e.prefix, r.Place("prefix"));
  if (e.prefix.empty()) e.prefix = e.location;
  if (e.prefix.empty()) return r.Fail("needs a location or a prefix");
  if (e.location.empty() && !IsWildcard(e.prefix)) {
    return r.Fail("with prefix \"" + e.prefix + "\" needs a location");
  }
  ASSIGN_OR_RETURN(e.insecure, r.Bool("insecure"));
  ASSIGN_OR_RETURN(e.blocked, r.Bool("blocked"));
  ASSIGN_OR_RETURN(e.mirror_by_digest_only, r.Bool("mirror-by-digest-only"));
  if (const toml::value* mirrors = FindKey(value, "mirror")) {
    // [[registry.mirror]] tables and `mirror = [{ … }]` are the same array to toml11.
    if (!mirrors->is_array()) {
      return r.FailAt("mirror", "\"mirror\" must be an array of tables");
    }
    for (const toml::value& m : mirrors->as_array()) {
      ASSIGN_OR_RETURN(RegistryMirror mirror, ParseMirror(m));
      e.mirrors.push_back(std::move(mirror));
    }
  }
  return e;
}

// The [[registry]] entries of one file, in order.
Result<std::vector<RegistryEntry>> ParseEntries(std::string_view text) {
  ASSIGN_OR_RETURN(toml::value doc, ParseTomlDocument(text));
  // Only the [[registry]] array is read; every other key of the format (unqualified-search-
  // registries, short-name-mode, [aliases], credential-helpers, v1 [registries.search], …)
  // and any key regfs does not know is left alone, as the containers tools do.
  std::vector<RegistryEntry> out;
  const toml::value* registries = FindKey(doc, "registry");
  if (!registries) return out;
  if (!registries->is_array()) {
    return ErrorAtLine(LineOf(*registries),
                       "\"registry\" must be an array of tables ([[registry]])");
  }
  for (const toml::value& value : registries->as_array()) {
    ASSIGN_OR_RETURN(RegistryEntry entry, ParseEntry(value));
    out.push_back(std::move(entry));
  }
  return out;
}

// `name` with `prefix` (which it matches) replaced by `location`.
std::string Rewrite(const std::string& name, const std::string& prefix,
                    const std::string& location) {
  if (IsWildcard(prefix)) {
    std::string_view host = HostOf(name);
    return location + name.substr(host.size());
  }
  return location + name.substr(prefix.size());
}

}  // namespace

Status RegistriesConf::Merge(std::string_view text, const std::string& origin) {
  if (text.size() > static_cast<size_t>(kMaxConfSize)) {
    return MakeError(EFBIG, origin + ": larger than " + std::to_string(kMaxConfSize) + " bytes");
  }
  Result<std::vector<RegistryEntry>> parsed = MakeError(EINVAL, "not read");
  try {
    parsed = ParseEntries(text);
  } catch (const std::bad_alloc&) {
    parsed = MakeError(ENOMEM, "out of memory reading TOML");
  } catch (const std::exception& e) {
    const std::string what = e.what();
    parsed = MakeError(EINVAL, "reading TOML: " + what.substr(0, what.find('\n')));
  } catch (...) {
    parsed = MakeError(EINVAL, "not valid TOML");
  }
  if (!parsed.ok()) return Annotate(std::move(parsed).error(), origin);
  // A file is taken whole or not at all.
  for (RegistryEntry& entry : *parsed) {
    auto same = std::find_if(entries_.begin(), entries_.end(),
                             [&](const RegistryEntry& e) { return e.prefix == entry.prefix; });
    if (same != entries_.end()) {
      *same = std::move(entry);
    } else {
      entries_.push_back(std::move(entry));
    }
  }
  return Ok();
}

const RegistryEntry* RegistriesConf::Find(std::string_view name) const {
  const RegistryEntry* best = nullptr;
  size_t best_len = 0;
  for (const RegistryEntry& e : entries_) {
    // An exact prefix beats a wildcard whatever their lengths, as in containers/image.
    size_t len = IsWildcard(e.prefix) ? 1 : e.prefix.size() + 1;
    if (MatchesPrefix(name, e.prefix) && len > best_len) {
      best = &e;
      best_len = len;
    }
  }
  return best;
}

bool RegistriesConf::IsInsecure(std::string_view registry) const {
  for (const RegistryEntry& e : entries_) {
    if (e.insecure && (HostOf(e.location) == registry || e.prefix == registry ||
                       (IsWildcard(e.prefix) && MatchesPrefix(registry, e.prefix)))) {
      return true;
    }
    for (const RegistryMirror& m : e.mirrors) {
      if (m.insecure && HostOf(m.location) == registry) return true;
    }
  }
  return false;
}

Status RegistriesConf::CheckNotBlocked(std::string_view name) const {
  const RegistryEntry* e = Find(name);
  if (e && e->blocked) {
    return MakeError(EACCES, "registry " + e->prefix + " is blocked in registries.conf");
  }
  return Ok();
}

Result<std::vector<PullSource>> RegistriesConf::PullSources(const DockerReference& ref) const {
  const RegistryEntry* e = Find(ref.Name());
  if (!e) return std::vector<PullSource>{PullSource{ref, IsInsecure(ref.registry), false}};
  RETURN_IF_ERROR(CheckNotBlocked(ref.Name()));
  const bool by_digest = !ref.digest.empty();
  const std::string suffix = by_digest ? "@" + ref.digest : ":" + ref.tag;
  std::vector<PullSource> out;
  auto add = [&](const std::string& location, bool insecure, bool mirror) -> Status {
    std::string rewritten =
        location.empty() ? ref.Name() : Rewrite(ref.Name(), e->prefix, location);
    auto parsed = ParseDockerReference(rewritten + suffix);
    if (!parsed.ok()) {
      return Annotate(parsed.error(), "rewriting " + ref.String() +
                                          " for registries.conf entry \"" + e->prefix + "\"");
    }
    out.push_back(PullSource{std::move(parsed).value(), insecure, mirror});
    return Ok();
  };
  if (!e->mirror_by_digest_only || by_digest) {
    for (const RegistryMirror& m : e->mirrors) {
      if (m.pull_from_mirror == "digest-only" && !by_digest) continue;
      if (m.pull_from_mirror == "tag-only" && by_digest) continue;
      RETURN_IF_ERROR(add(m.location, m.insecure, true));
    }
  }
  RETURN_IF_ERROR(add(e->location, e->insecure, false));
  return out;
}

std::vector<std::string> RegistriesConfPaths() {
  std::vector<std::string> out;
  const std::string user = UserConfigDir();
  if (std::string env = Env("CONTAINERS_REGISTRIES_CONF"); !env.empty()) {
    out.push_back(env);
  } else if (!user.empty() && PathExists(user + "/registries.conf")) {
    out.push_back(user + "/registries.conf");
  } else {
    out.push_back("/etc/containers/registries.conf");
  }
  for (auto& p : DropIns("/etc/containers/registries.conf.d")) out.push_back(p);
  if (!user.empty()) {
    for (auto& p : DropIns(user + "/registries.conf.d")) out.push_back(p);
  }
  return out;
}

Result<std::shared_ptr<const RegistriesConf>> LoadRegistriesConf() {
  auto conf = std::make_shared<RegistriesConf>();
  const std::string env = Env("CONTAINERS_REGISTRIES_CONF");
  for (const std::string& path : RegistriesConfPaths()) {
    auto text = ReadFileBounded(path, kMaxConfSize);
    if (!text.ok()) {
      // Only a file named by the environment must exist.
      if (text.error().errnum == ENOENT && path != env) continue;
      return Annotate(text.error(), "reading registries configuration");
    }
    RETURN_IF_ERROR(conf->Merge(*text, path));
  }
  return std::shared_ptr<const RegistriesConf>(std::move(conf));
}

}  // namespace regfs
