// BlobStore: lazy, verified reads of registry blobs for the mount.
//
// One Blob object per digest is shared by every open file of that blob, so concurrent readers
// share one download. Bytes come from the BlobCache when it has the blob; otherwise they are
// fetched with HTTP Range into a partial file: a sequential reader gets a readahead window that
// doubles up to 64 MiB, a random reader 4 MiB aligned chunks. The sha256 is computed in order as
// the contiguous prefix grows. verify=stream serves bytes before the whole blob is verified, but
// a read that reaches the end waits for the verdict and gets EIO on a mismatch (the bytes are
// discarded, never cached); verify=full holds every read until the blob is verified. A
// verified blob becomes a cache entry. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "fs/blob_cache.h"
#include "fs/fetch_pool.h"
#include "fs/interval_set.h"
#include "fs/mount_options.h"
#include "transports/registry/registry.h"
#include "transports/util/digest.h"

namespace regfs {

// Where a blob can be fetched from.
struct BlobLocation {
  std::shared_ptr<Registry> client;
  std::string repository;
};

// Per open file: what the reader did last, to tell sequential from random reads.
struct ReadCursor {
  int64_t next = 0;
  int64_t window = 0;
};

class Blob;

class BlobStore {
 public:
  BlobStore(BlobCache* cache, FetchPool* pool, VerifyMode verify,
            std::function<void(const std::string&)> log);

  // The shared Blob for `digest`, from the cache or fetched from `location`.
  Result<std::shared_ptr<Blob>> Open(const std::string& digest, int64_t size,
                                     const BlobLocation& location);

  uint64_t cache_hits() const { return cache_hits_; }

 private:
  friend class Blob;
  BlobCache* const cache_;
  FetchPool* const pool_;
  const VerifyMode verify_;
  const std::function<void(const std::string&)> log_;
  // Lock order: this, then a Blob's mu_, then BlobCache's. No request runs under it.
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<Blob>> open_;  // guarded by mu_
  std::atomic<uint64_t> cache_hits_{0};
};

class Blob : public std::enable_shared_from_this<Blob> {
 public:
  ~Blob();
  // Reads up to `len` bytes at `off`; blocks until they are here (and verified when needed).
  Result<size_t> Read(char* buf, size_t len, int64_t off, ReadCursor* cursor);
  bool bad() const;

 private:
  friend class BlobStore;
  enum class State { kPartial, kVerified, kBad };

  Blob(BlobStore* store, std::string digest, int64_t size)
      : store_(store), digest_(std::move(digest)), size_(size) {}
  void RequestLocked(int64_t start, int64_t end);
  // The end of what, from `pos` on, is here or being fetched.
  int64_t CoveredFromLocked(int64_t pos) const;
  void Fetch(int64_t start, int64_t end);
  Status Land(const char* data, size_t n, int64_t pos);
  void AdvanceHash();

  BlobStore* const store_;
  const std::string digest_;
  const int64_t size_;
  BlobLocation location_;
  UniqueFd fd_;
  std::string partial_path_;  // "" when fd_ is a cache entry

  // Lock order: BlobStore's, then this, then FetchPool's and BlobCache's, then the log's. No
  // request runs under it: Fetch() takes it around its bookkeeping only.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kPartial;  // guarded by mu_
  IntervalSet present_;            // guarded by mu_
  IntervalSet inflight_;           // guarded by mu_
  int64_t hashed_ = 0;             // guarded by mu_
  bool reserved_ = false;  // size_ counted in the cache for the partial file, guarded by mu_
  bool hashing_ = false;   // guarded by mu_
  std::optional<Error> fetch_error_;  // guarded by mu_
  Sha256 hasher_;                     // used only by the thread that set hashing_
};

}  // namespace regfs
