// The options of `regfs mount -o …` (DESIGN §2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "transports/manifest/manifest.h"
#include "transports/util/result.h"

namespace regfs {

class Policy;

enum class VerifyMode { kStream, kFull };

struct MountOptions {
  std::string cache_dir;            // default $XDG_CACHE_HOME/regfs or ~/.cache/regfs
  int64_t cache_size = 10LL << 30;  // bytes
  int tag_ttl = 30;                 // seconds a tag keeps its digest
  int list_ttl = 30;                // seconds catalogs and tag lists are kept
  bool read_only = false;
  bool allow_other = false;
  // Who the files belong to and which permission bits they show (uid=, gid=, umask=, as other
  // FUSE filesystems have them); -1: the mounting user and group, and a umask of 022, or 077
  // with allow_other, so that other users get no private content unless the mount says so.
  int64_t uid = -1;
  int64_t gid = -1;
  int umask = -1;
  std::string authfile;
  std::set<std::string> insecure;  // hosts used without TLS verification
  VerifyMode verify = VerifyMode::kStream;
  Platform platform = HostPlatform();
  std::string log_file;  // "" = stderr
  bool debug = false;
  int timeout = 30;  // seconds a request may stall
  // policy=FILE: a verified-only view. Files of an image the policy refuses can't be opened.
  std::string policy_file;

  // Not mount options: what the mount command loads for the filesystem (tools/mount.cc), so
  // that fs/ reads no configuration of its own.
  // The policy of policy_file; null: no policy, everything can be read.
  std::shared_ptr<const Policy> policy;
  // Whether the sigstore attachments of a repository are read and written (registries.d
  // use-sigstore-attachments); unset: they are.
  std::function<bool(const std::string& registry, const std::string& repository)>
      sigstore_attachments;

  // Bounds of the mount's in-memory caches, in entries; beyond them the least recently used
  // entry goes, and is fetched again when needed (DESIGN §4: long-lived maps are bounded).
  // Not mount options: they cover a walk of a few thousand images — some tens of MiB at
  // most — and tests make them small.
  struct Caps {
    size_t views = 1024;         // image directories' contents by digest: a few KiB each
    size_t tag_digests = 16384;  // tag → digest: ~200 bytes each
    size_t tag_lists = 256;      // repositories' tag lists: one may hold thousands of tags
    size_t catalogs = 16;        // registries' catalogs: one may list thousands of repositories
    size_t dirs = 8192;          // image directories' blob lists (st_nlink, locations): ~1 KiB
    size_t gone = 1024;          // repositories removed and images deleted through this mount
    size_t signatures = 4096;    // images' attachment listings: a few hundred bytes each
    size_t payloads = 1024;      // signature payloads (at most 16 KiB each are kept)
    size_t verdicts = 4096;      // policy verdicts by image: ~200 bytes each
    size_t failures = 1024;      // failed manifest lookups, kept briefly: ~300 bytes each
  } caps;
};

// The umask the files are shown with: umask= when given, else the default above.
int EffectiveUmask(const MountOptions& options);

// Parses "opt,opt=value,…" into `options`; EINVAL naming the bad option.
Status ParseMountOptions(const std::string& text, MountOptions* options);

// "10G", "512M", "4096": bytes. -1 when malformed.
int64_t ParseSize(const std::string& text);

// The default cache directory.
std::string DefaultCacheDir();

}  // namespace regfs
