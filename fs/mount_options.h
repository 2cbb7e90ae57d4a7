// The options of `regfs mount -o …` (DESIGN §2).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "transports/manifest/manifest.h"
#include "transports/util/result.h"

namespace regfs {

enum class VerifyMode { kStream, kFull };

struct MountOptions {
  std::string cache_dir;            // default $XDG_CACHE_HOME/regfs or ~/.cache/regfs
  int64_t cache_size = 10LL << 30;  // bytes
  int tag_ttl = 30;                 // seconds a tag keeps its digest
  int list_ttl = 30;                // seconds catalogs and tag lists are kept
  bool read_only = false;
  bool allow_other = false;
  std::string authfile;
  std::set<std::string> insecure;  // hosts used without TLS verification
  VerifyMode verify = VerifyMode::kStream;
  Platform platform = HostPlatform();
  std::string log_file;  // "" = stderr
  bool debug = false;
  int timeout = 30;  // seconds a request may stall
};

// Parses "opt,opt=value,…" into `options`; EINVAL naming the bad option.
Status ParseMountOptions(const std::string& text, MountOptions* options);

// "10G", "512M", "4096": bytes. -1 when malformed.
int64_t ParseSize(const std::string& text);

// The default cache directory.
std::string DefaultCacheDir();

}  // namespace regfs
