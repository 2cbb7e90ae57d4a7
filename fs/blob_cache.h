// BlobCache: the content-addressed disk cache of verified blobs under cache_dir, bounded by
// cache_size with LRU eviction, surviving remounts.
//
// Layout: blobs/sha256/<hex> holds verified entries only; downloads are written to
// partial/<hex>.<random> and become entries by fsync and rename after their sha256 matched, so a
// crash at any moment leaves a valid entry or none (partial/ is emptied when the cache opens).
// Entries pinned by open files are never evicted. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "transports/util/file_util.h"
#include "transports/util/result.h"

namespace regfs {

class BlobCache {
 public:
  static Result<std::unique_ptr<BlobCache>> Open(const std::string& dir, int64_t max_bytes);

  // Opens a verified entry and pins it (Unpin when its file is closed). ENOENT when absent. An
  // entry from before this process is hashed first, once, and so is one whose file something
  // else changed (its ctime moved) since: one whose bytes do not match its name is removed
  // (ENOENT), so that the blob is fetched again instead of served corrupt.
  Result<UniqueFd> OpenEntry(const std::string& digest);

  // A new empty partial file for a download of `digest`, opened read-write. Pins the digest and
  // counts `size` bytes against the limit at once (evicting to make room), until Commit or
  // DropPartial: downloads in progress are inside cache_size too.
  Result<UniqueFd> CreatePartial(const std::string& digest, int64_t size, std::string* path);

  // Makes a verified partial file the entry for `digest`; then evicts to the size limit. The
  // partial's reservation ends here whether or not this succeeds.
  Status Commit(const std::string& partial_path, int fd, const std::string& digest, int64_t size);

  // Ends the reservation of a partial file of `size` bytes that is not committed.
  void DropPartial(int64_t size);

  void Pin(const std::string& digest);
  void Unpin(const std::string& digest);

  int64_t bytes() const;          // committed entries
  int64_t partial_bytes() const;  // downloads in progress

 private:
  struct Entry {
    int64_t size = 0;
    uint64_t last_use = 0;
    // Committed by this process after its sha256 matched. An entry found on disk when the cache
    // opens is checked again before it is first served: the disk may have changed it since.
    bool verified = false;
    // The file's ctime when this process last verified or opened it: a file with another one
    // was changed since by something else (written, truncated), and is checked again.
    struct timespec ctime {};
  };

  BlobCache(std::string dir, int64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string EntryPath(const std::string& digest) const;
  // Hashes an entry's file: ENOENT when its bytes do not match `digest`. Outside mu_.
  Status CheckEntry(int fd, const std::string& digest) const;
  void EvictLocked();

  const std::string dir_;
  const int64_t max_bytes_;
  // Last in the lock order (a Blob's and the BlobStore's come before it); local disk I/O only.
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // by digest, guarded by mu_
  std::map<std::string, int> pins_;       // guarded by mu_
  int64_t total_ = 0;                     // guarded by mu_
  int64_t partial_ = 0;                   // reserved by partial files, guarded by mu_
  uint64_t clock_ = 0;                    // guarded by mu_
};

}  // namespace regfs
