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
//
// A blob may be known at several (registry, repository) locations. Fetches use the first one
// not marked bad for the blob; a location whose transfer fails (the transport has already
// retried) or that alone served bytes that do not verify is marked bad, and the fetch goes on
// from the next one — a broken transfer resumes there, a bad one starts again. When every
// location is marked, the reads waiting for missing bytes get EIO with a message naming what
// each did. If each mark is lasting (bytes that did not verify; the registry lacks the blob,
// refuses us, or names it wrongly) the blob is bad, and its bytes are discarded. Otherwise
// (a registry that went away, stalled, or failed with a 5xx: it may come back) only those
// reads fail: the bytes that landed stay, the passing marks are dropped, and the next read
// asks again, resuming where the transfer stopped. The marks outlive the Blob until the blob
// verifies: a later open skips them too, unless every location it knows is marked, when it
// tries them all again.
//
// Bytes of an attempt that did not verify may have reached readers (verify=stream) and the
// kernel's page cache. So an open file that was open while such bytes were served gets EIO from
// then on, and the next open of the blob asks the kernel to drop its cached pages.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

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

// Per open file: what the reader did last, to tell sequential from random reads, and which
// fetch attempt of the blob was under way when it was opened.
struct ReadCursor {
  int64_t next = 0;
  int64_t window = 0;
  int64_t attempt = 0;
};

class Blob;

// What BlobStore::Open gives an open file.
struct OpenedBlob {
  std::shared_ptr<Blob> blob;
  ReadCursor cursor;
  // False when the kernel's cached pages of the blob must be dropped at this open: it is not
  // verified yet, or bytes that did not verify were served since the last such open.
  bool keep_cache = false;
};

class BlobStore {
 public:
  BlobStore(BlobCache* cache, FetchPool* pool, VerifyMode verify,
            std::function<void(const std::string&)> log);

  // The shared Blob for `digest`, from the cache or fetched from `locations`, tried in order
  // (at least one). Locations new to an open Blob are added to its list.
  Result<OpenedBlob> Open(const std::string& digest, int64_t size,
                          const std::vector<BlobLocation>& locations);

  uint64_t cache_hits() const { return cache_hits_; }

 private:
  friend class Blob;
  BlobCache* const cache_;
  FetchPool* const pool_;
  const VerifyMode verify_;
  const std::function<void(const std::string&)> log_;
  // Lock order: mu_, then a Blob's mu_, then marks_mu_, then BlobCache's. No request runs
  // under any of them.
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<Blob>> open_;  // guarded by mu_
  std::mutex marks_mu_;
  // Digests whose unverified bytes were served by an attempt that then failed: the kernel may
  // cache them until an open without keep_cache. Rare, and erased at that open. By marks_mu_.
  std::set<std::string> stale_;
  // Why a location is bad for a blob, and whether that lasts (Blob::Source).
  struct Mark {
    std::string why;
    bool lasting = false;
  };
  // Digest → "registry/repository" → its mark; erased when the blob verifies, and bounded (a
  // forgotten mark costs one more try). guarded by marks_mu_
  std::map<std::string, std::map<std::string, Mark>> bad_;
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
  // A location of the blob, and why it is bad for it ("" while it is not).
  struct Source {
    BlobLocation where;
    std::string failure;
    bool lasting = false;  // the failure is not a passing one (see the top of this file)
  };

  Blob(BlobStore* store, std::string digest, int64_t size)
      : store_(store), digest_(std::move(digest)), size_(size) {}
  // Appends the locations not in sources_ yet.
  void AddLocationsLocked(const std::vector<BlobLocation>& locations);
  void RequestLocked(int64_t start, int64_t end);
  // The end of what, from `pos` on, is here or being fetched.
  int64_t CoveredFromLocked(int64_t pos) const;
  void Fetch(int64_t start, int64_t end, int64_t attempt, size_t source, BlobLocation where);
  Status Land(const char* data, size_t n, int64_t pos, int64_t attempt, size_t source);
  void AdvanceHash();
  // Marks a source bad (keeping its first failure). With none left, the blob is bad if every
  // mark is lasting; else the waiting reads fail and the passing marks are dropped.
  void FailSourceLocked(size_t source, const std::string& why, bool lasting);
  // Fails the reads that wait for bytes no fetch is bringing any more.
  void FailReadsLocked(Error e);
  // Drops the bytes of the current attempt, so the next one starts from nothing.
  void DiscardAttemptLocked();
  // True when `cursor`'s file was open while bytes that then failed to verify were served.
  bool TaintedLocked(const ReadCursor& cursor) const { return cursor.attempt <= tainted_through_; }

  BlobStore* const store_;
  const std::string digest_;
  const int64_t size_;
  UniqueFd fd_;
  std::string partial_path_;  // "" when fd_ is a cache entry

  // Lock order: BlobStore's mu_, then this, then BlobStore's marks_mu_, FetchPool's and
  // BlobCache's, then the log's. No request runs under it: Fetch() takes it around its
  // bookkeeping only.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kPartial;  // guarded by mu_
  std::string failure_;            // state_ kBad: what every location did, guarded by mu_
  std::vector<Source> sources_;    // in the order seen, guarded by mu_
  // The attempt is the number of times the bytes were discarded; pieces of an earlier one are
  // ignored. guarded by mu_
  int64_t attempt_ = 0;
  std::set<size_t> contributors_;  // sources that landed bytes in this attempt, by mu_
  bool served_ = false;            // this attempt's bytes reached a reader, by mu_
  int64_t tainted_through_ = -1;   // the last attempt whose served bytes failed, by mu_
  IntervalSet present_;            // guarded by mu_
  IntervalSet inflight_;           // guarded by mu_
  int64_t hashed_ = 0;             // guarded by mu_
  bool reserved_ = false;  // size_ counted in the cache for the partial file, guarded by mu_
  bool hashing_ = false;   // guarded by mu_
  // Why fetches failed (local trouble with the partial file, or no location answering), and
  // how often: a read fails when this count moved while it waited and what it waits for is no
  // longer on its way. Later reads ask again. guarded by mu_
  std::optional<Error> fetch_error_;
  int64_t fetch_failures_ = 0;
  Sha256 hasher_;  // used only by the thread that set hashing_
};

}  // namespace regfs
