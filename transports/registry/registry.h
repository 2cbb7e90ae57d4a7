// Registry: one registry host as the mount and the deletion code see it — manifests, blobs,
// tags and the catalog of the OCI distribution API, with errno-carrying Results (DESIGN §1).
//
// The HTTP implementation is docker/'s RegistryClient; the mount's factory (alltransports/)
// wraps it in docker/'s MirroredRegistry for registries.conf mirrors. The mount core holds
// only this interface, so it can be tested against registries that fail on purpose
// (tests/unit/testing/failing_registry.h). Implementations are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/manifest/manifest.h"
#include "transports/util/byte_sink.h"
#include "transports/util/keyed_locks.h"
#include "transports/util/result.h"

namespace regfs {

// Request accounting, shared by the registries of a mount (its .regfs/stats).
struct RegistryCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> blob_bytes{0};
};

// What a PutBlob reader returns to abandon the upload.
inline constexpr size_t kAbortUpload = static_cast<size_t>(-1);

// The digest an upload is stored under: known before the body (most blobs), or — a layer the
// copy re-encodes on its way — only once the reader has returned the body's end.
class UploadDigest {
 public:
  UploadDigest(std::string known) : known_(std::move(known)) {}  // NOLINT: implicit by design
  UploadDigest(const char* known) : known_(known) {}             // NOLINT: implicit by design
  static UploadDigest AtEnd(std::function<std::string()> at_end) {
    UploadDigest d("");
    d.at_end_ = std::move(at_end);
    return d;
  }
  bool known() const { return !at_end_; }
  // The digest; for AtEnd(), ask only after the reader returned the end.
  std::string Get() const { return at_end_ ? at_end_() : known_; }
  // For messages, at any time.
  std::string Describe() const { return at_end_ ? std::string("(re-encoded layer)") : known_; }

 private:
  std::string known_;
  std::function<std::string()> at_end_;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // The host as named in references and in the tree ("127.0.0.1:5000", "docker.io").
  virtual const std::string& registry() const = 0;

  virtual Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref) = 0;
  // HEAD of a manifest: its digest, without the bytes.
  virtual Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref) = 0;
  virtual Status PutManifest(const std::string& repo, const std::string& ref,
                             const std::string& bytes, const std::string& media_type) = 0;
  virtual Status DeleteManifest(const std::string& repo, const std::string& ref) = 0;

  // Streams [offset, offset + length) of the blob (length -1: to the end) to `sink`, resuming
  // after a broken transfer. `size` is the descriptor's size (-1 if unknown). The bytes are not
  // verified here.
  virtual Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                              int64_t length, int64_t size, const ByteSink& sink) = 0;
  virtual Result<bool> BlobExists(const std::string& repo, const std::string& digest) = 0;
  // Cross-repository mount; false when the registry declined (the blob must be uploaded).
  virtual Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                                 const std::string& from_repo) = 0;
  // Uploads `size` bytes (-1: until the reader returns 0) pulled from `reader` as blob
  // `digest`; the registry checks the digest. A digest known only at the end needs size -1.
  // The reader returns kAbortUpload to abandon the upload. Not retried: the reader can't be
  // replayed.
  virtual Status PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                         const std::function<size_t(char*, size_t)>& reader) = 0;

  virtual Result<std::vector<std::string>> ListTags(const std::string& repo) = 0;
  // Every page of /v2/_catalog. `stop` (may be empty) is asked before each page: true ends the
  // listing with ECANCELED (a mount's background listing, at unmount).
  virtual Result<std::vector<std::string>> Catalog(const std::function<bool()>& stop) = 0;

  // Where writes go, and the reads that decide what a write does (the digest a deletion
  // removes, the manifest a re-tag copies): this registry, unless its reads come from
  // registries.conf mirrors, which may be behind the origin.
  virtual Registry& Origin() { return *this; }

  // Where blobs were seen, across processes, for mounts across repositories; null: not used.
  virtual BlobLocationCache* blob_locations() const { return nullptr; }
  // One holder at a time per key, for this registry's users: "repo@digest" (or, with a blob
  // location cache, the digest) while a blob is checked, mounted or uploaded, so that two pushes of
  // one blob into one repository never race (docker-registry loses a blob mounted twice at once).
  virtual KeyedLocks& blob_locks() = 0;
};

using LogFn = std::function<void(const std::string&)>;

// How the mount opens the registry of a host name: the commands' factory with the mount's
// options, or a test's fake. `log` is the opener's log, for what the registry has to say. An
// error (a blocked host, say) is the answer for that host.
using RegistryFactory =
    std::function<Result<std::shared_ptr<Registry>>(const std::string& host, const LogFn& log)>;

}  // namespace regfs
