// Sync: many images from a source to a destination, as `skopeo sync` lays them out, through the
// copy pipeline.
//
// What it adds to copying images one by one:
//   - images in parallel (`jobs`), their blobs in parallel within each as `regfs copy` does;
//     tags of one repository that share blobs never push one blob twice at once (the
//     destination's LockBlob);
//   - an image whose destination already has the digest the copy would write is skipped after
//     a HEAD of each side (a dir:'s manifest.json), with no manifest body and no blob read;
//   - a plan (dry run) that looks at the destination and changes nothing;
//   - an opt-in prune of destination tags whose source tag is gone;
//   - deterministic shards of the repositories, for several machines sharing one mirror;
//   - one outcome per image, sorted, for reports and digest files.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "transports/alltransports/transports.h"
#include "transports/manifest/manifest.h"
#include "transports/signature/policy.h"
#include "transports/types/image_reference.h"

namespace regfs {

// One source of images: a registry repository (the tags and digests in `refs`, or when that is
// empty every tag it lists that `selects` keeps), or one dir: image directory.
struct SyncSource {
  ImageReference ref;       // kDocker: registry and repository (tag ignored); kDir: the image
  RegistryOptions options;  // kDocker: for its registry
  std::vector<std::string> refs;
  std::function<bool(const std::string&)> selects;  // null: every listed tag
  std::vector<Platform> platforms;                  // CopyOptions::platforms
  // kDir: the image's path below the sync's source directory, as skopeo names it ("/ns/a:1");
  // its destination is that path (--scoped) or its last component.
  std::string dir_suffix;
  // Not empty: the destination repository (below the destination), instead of the name the
  // image has at its source.
  std::string target;

  bool Listed() const { return ref.transport == Transport::kDocker && refs.empty(); }
};

struct SyncOptions {
  Transport dest_transport = Transport::kDocker;  // kDocker or kDir
  std::string destination;                        // "registry/ns" or a directory, as given
  RegistryOptions dest_options;
  bool all = false;     // every instance of an index
  bool scoped = false;  // destination paths keep the source's full name
  std::string append_suffix;
  bool dry_run = false;
  bool keep_going = false;
  bool prune = false;
  int jobs = 4;           // images at once
  int blob_parallel = 6;  // blobs at once within an image
  int retry_times = 0;    // retries of a failed image, after the requests' own retries
  std::chrono::milliseconds retry_delay{0};  // 0: 1 s, 2 s, 4 s, …
  int shard_index = 1;                       // of shard_count, 1-based
  int shard_count = 1;
  // Signatures, as for copy (CopyOptions): the policy each source must pass (null: any),
  // whether the source's signatures are dropped, and the signers of every image written, whose
  // signatures claim `sign_identity`, or each image's destination reference when it is empty.
  std::shared_ptr<const Policy> policy;
  bool remove_signatures = false;
  std::string format;  // CopyOptions::format (-f)
  std::vector<Signer*> signers;
  std::string sign_identity;
  std::function<void(const std::string&)> info;  // a line per image done
  std::function<void(const std::string&)> warn;
  // Progress: each image's destination as the copy sees it (null: as opened), for a view that
  // reports its blobs; and (images finished, images to sync), once before the first and after
  // each. Called from the sync's threads.
  std::function<std::unique_ptr<ImageDestination>(ImageDestination&)> wrap_destination;
  std::function<void(size_t done, size_t total)> images_progress;
};

// What happened to one image (or a pruned tag, or a source that could not be listed).
struct SyncOutcome {
  std::string source;       // "docker://127.0.0.1:5000/ns/app:v1", "dir:src/app:v1"
  std::string destination;  // "docker://…", "dir:…"; empty for a source that failed to list
  std::string digest;       // of the top-level manifest at the destination
  std::string action;       // "copy", "update", "skip", "prune", "failed"
  int64_t bytes = 0;        // blob bytes moved
  double seconds = 0;
  std::string error;  // for "failed"
};

struct SyncReport {
  std::vector<SyncOutcome> outcomes;  // sorted by source, then destination
  bool failed = false;
};

// Syncs `sources`. Failures are outcomes: the report says whether any occurred. Without
// keep_going the first failure stops the images not yet started.
SyncReport Sync(const std::vector<SyncSource>& sources, const SyncOptions& options,
                RegistryClients& clients);

// Which shard (1 … count) a repository name falls in: a stable hash, the same on every machine.
int ShardOf(const std::string& repository, int count);

// Parses "K/N" (1 <= K <= N).
Result<std::pair<int, int>> ParseShard(const std::string& text);

// Go's time.ParseDuration subset skopeo's --retry-delay takes: "1.5s", "500ms", "1m30s".
Result<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace regfs
