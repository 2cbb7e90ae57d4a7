#include "fs/mount_options.h"

#include <cstdlib>
#include <set>

#include "transports/types/image_reference.h"

namespace regfs {
namespace {

bool ParseSeconds(const std::string& v, int* out) {
  if (v.empty() || v.size() > 7 || v.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *out = std::stoi(v);
  return true;
}

// A user or group id: decimal, below 2^32 - 1 (the kernel's "no id").
bool ParseId(const std::string& v, int64_t* out) {
  if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string::npos)
    return false;
  int64_t id = std::stoll(v);
  if (id >= 0xffffffffLL) return false;
  *out = id;
  return true;
}

// A umask: octal, at most 0777.
bool ParseUmask(const std::string& v, int* out) {
  if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string::npos)
    return false;
  int mask = std::stoi(v, nullptr, 8);
  if (mask > 0777) return false;
  *out = mask;
  return true;
}

// Options an fstab line or mount(8) carries for others (mount itself, systemd, the kernel's
// generic mount flags, which FUSE sets for itself): accepted and ignored, as mount helpers do.
bool IsForOthers(const std::string& key) {
  static const std::set<std::string> kIgnored = {
      "defaults", "_netdev",    "auto",     "noauto",     "nofail",   "user",       "users",
      "nouser",   "owner",      "group",    "dev",        "nodev",    "suid",       "nosuid",
      "exec",     "noexec",     "atime",    "noatime",    "relatime", "norelatime", "strictatime",
      "lazytime", "nolazytime", "diratime", "nodiratime", "sync",     "async",      "dirsync",
      "silent",   "loud",       "comment"};
  return kIgnored.count(key) > 0 || key.rfind("x-", 0) == 0;
}

}  // namespace

int EffectiveUmask(const MountOptions& options) {
  if (options.umask >= 0) return options.umask;
  return options.allow_other ? 077 : 022;
}

int64_t ParseSize(const std::string& text) {
  if (text.empty()) return -1;
  std::string digits = text;
  int64_t mult = 1;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(digits.back())));
  if (last == 'K' || last == 'M' || last == 'G' || last == 'T') {
    mult = last == 'K' ? 1LL << 10 : last == 'M' ? 1LL << 20 : last == 'G' ? 1LL << 30 : 1LL << 40;
    digits.pop_back();
  }
  if (digits.empty() || digits.size() > 12 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoll(digits) * mult;
}

std::string DefaultCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/regfs";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.cache/regfs";
}

Status ParseMountOptions(const std::string& text, MountOptions* o) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string opt =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (opt.empty()) continue;
    size_t eq = opt.find('=');
    std::string key = opt.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    auto bad = [&] { return MakeError(EINVAL, "bad mount option \"" + opt + "\""); };
    if (key == "cache_dir" && !value.empty()) {
      o->cache_dir = value;
    } else if (key == "cache_size") {
      o->cache_size = ParseSize(value);
      if (o->cache_size <= 0) return bad();
    } else if (key == "tag_ttl") {
      if (!ParseSeconds(value, &o->tag_ttl)) return bad();
    } else if (key == "list_ttl") {
      if (!ParseSeconds(value, &o->list_ttl)) return bad();
    } else if (key == "timeout") {
      if (!ParseSeconds(value, &o->timeout) || o->timeout == 0) return bad();
    } else if (key == "ro" && value.empty()) {
      o->read_only = true;
    } else if (key == "rw" && value.empty()) {
      o->read_only = false;
    } else if (key == "allow_other" && value.empty()) {
      o->allow_other = true;
    } else if (key == "uid") {
      if (!ParseId(value, &o->uid)) return bad();
    } else if (key == "gid") {
      if (!ParseId(value, &o->gid)) return bad();
    } else if (key == "umask") {
      if (!ParseUmask(value, &o->umask)) return bad();
    } else if (key == "authfile" && !value.empty()) {
      o->authfile = value;
    } else if (key == "insecure" && IsValidRegistryHost(value)) {
      o->insecure.insert(value);
    } else if (key == "verify" && (value == "stream" || value == "full")) {
      o->verify = value == "full" ? VerifyMode::kFull : VerifyMode::kStream;
    } else if (key == "platform" && !value.empty()) {
      size_t s1 = value.find('/');
      if (s1 == std::string::npos) return bad();
      size_t s2 = value.find('/', s1 + 1);
      o->platform.os = value.substr(0, s1);
      o->platform.architecture =
          value.substr(s1 + 1, s2 == std::string::npos ? std::string::npos : s2 - s1 - 1);
      o->platform.variant = s2 == std::string::npos ? "" : value.substr(s2 + 1);
    } else if (key == "log" && !value.empty()) {
      o->log_file = value;
    } else if (key == "policy" && !value.empty()) {
      o->policy_file = value;
    } else if (key == "debug" && value.empty()) {
      o->debug = true;
    } else if (IsForOthers(key)) {
      continue;
    } else {
      return bad();
    }
  }
  return Ok();
}

}  // namespace regfs
