#include "transports/registries_conf.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>

#include "transports/file_util.h"
#include "transports/toml.h"

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
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".conf") == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
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

class EntryReader {
 public:
  EntryReader(const TomlTable& table, std::string what) : table_(table), what_(std::move(what)) {}

  Result<std::string> String(const char* key) const {
    const TomlValue* v = table_.Find(key);
    if (!v) return std::string();
    if (v->kind != TomlValue::Kind::kString) {
      return MakeError(EINVAL, what_ + " \"" + key + "\" must be a string");
    }
    return v->string;
  }

  Result<bool> Bool(const char* key) const {
    const TomlValue* v = table_.Find(key);
    if (!v) return false;
    if (v->kind != TomlValue::Kind::kBool) {
      return MakeError(EINVAL, what_ + " \"" + key + "\" must be true or false");
    }
    return v->boolean;
  }

 private:
  const TomlTable& table_;
  const std::string what_;
};

Result<RegistryMirror> ParseMirror(const TomlValue& value) {
  if (value.kind != TomlValue::Kind::kTable) {
    return MakeError(EINVAL, "[[registry.mirror]] must be a table");
  }
  EntryReader r(value.table, "[[registry.mirror]]");
  RegistryMirror m;
  ASSIGN_OR_RETURN(std::string location, r.String("location"));
  ASSIGN_OR_RETURN(m.location, Location(location, "[[registry.mirror]] location"));
  if (m.location.empty()) return MakeError(EINVAL, "[[registry.mirror]] needs a location");
  ASSIGN_OR_RETURN(m.insecure, r.Bool("insecure"));
  ASSIGN_OR_RETURN(m.pull_from_mirror, r.String("pull-from-mirror"));
  if (!m.pull_from_mirror.empty() && m.pull_from_mirror != "all" &&
      m.pull_from_mirror != "digest-only" && m.pull_from_mirror != "tag-only") {
    return MakeError(EINVAL, "[[registry.mirror]] pull-from-mirror \"" + m.pull_from_mirror +
                                 "\" is not all, digest-only or tag-only");
  }
  return m;
}

Result<RegistryEntry> ParseEntry(const TomlValue& value) {
  if (value.kind != TomlValue::Kind::kTable)
    return MakeError(EINVAL, "[[registry]] must be a table");
  EntryReader r(value.table, "[[registry]]");
  RegistryEntry e;
  ASSIGN_OR_RETURN(std::string location, r.String("location"));
  ASSIGN_OR_RETURN(e.location, Location(location, "[[registry]] location"));
  ASSIGN_OR_RETURN(std::string prefix, r.String("prefix"));
  ASSIGN_OR_RETURN(e.prefix, Location(prefix, "[[registry]] prefix"));
  if (e.prefix.empty()) e.prefix = e.location;
  if (e.prefix.empty()) return MakeError(EINVAL, "[[registry]] needs a location or a prefix");
  if (e.location.empty() && !IsWildcard(e.prefix)) {
    return MakeError(EINVAL, "[[registry]] with prefix \"" + e.prefix + "\" needs a location");
  }
  ASSIGN_OR_RETURN(e.insecure, r.Bool("insecure"));
  ASSIGN_OR_RETURN(e.blocked, r.Bool("blocked"));
  ASSIGN_OR_RETURN(e.mirror_by_digest_only, r.Bool("mirror-by-digest-only"));
  if (const TomlValue* mirrors = value.table.Find("mirror")) {
    if (mirrors->kind != TomlValue::Kind::kArray) {
      return MakeError(EINVAL, "[[registry]] \"mirror\" must be an array of tables");
    }
    for (const TomlValue& m : mirrors->array) {
      ASSIGN_OR_RETURN(RegistryMirror mirror, ParseMirror(m));
      e.mirrors.push_back(std::move(mirror));
    }
  }
  return e;
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
  auto doc = ParseToml(text);
  if (!doc.ok()) return Annotate(doc.error(), origin);
  const TomlValue* registries = doc->Find("registry");
  if (!registries) return Ok();
  if (registries->kind != TomlValue::Kind::kArray) {
    return MakeError(EINVAL, origin + ": \"registry\" must be an array of tables ([[registry]])");
  }
  for (const TomlValue& value : registries->array) {
    auto entry = ParseEntry(value);
    if (!entry.ok()) return Annotate(entry.error(), origin);
    auto same = std::find_if(entries_.begin(), entries_.end(),
                             [&](const RegistryEntry& e) { return e.prefix == entry->prefix; });
    if (same != entries_.end()) {
      *same = std::move(entry).value();
    } else {
      entries_.push_back(std::move(entry).value());
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

Status RegistriesConf::CheckNotBlocked(const DockerReference& ref) const {
  const RegistryEntry* e = Find(ref.Name());
  if (e && e->blocked) {
    return MakeError(EACCES, "registry " + e->prefix + " is blocked in registries.conf");
  }
  return Ok();
}

Result<std::vector<PullSource>> RegistriesConf::PullSources(const DockerReference& ref) const {
  const RegistryEntry* e = Find(ref.Name());
  if (!e) return std::vector<PullSource>{PullSource{ref, IsInsecure(ref.registry), false}};
  RETURN_IF_ERROR(CheckNotBlocked(ref));
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
