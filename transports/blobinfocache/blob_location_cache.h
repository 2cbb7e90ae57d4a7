// BlobLocationCache: remembers in which (registry, repository) each blob digest was seen, across
// processes (commands and mounts running at once), so that a push can mount a blob from another
// repository of the destination registry instead of uploading it — like containers/image's
// blob-info cache. It also remembers which compressed layers decompress to which
// uncompressed ones, so that a conversion can reuse a compressed variant the destination has
// instead of compressing a layer again.
//
// Purely advisory: a wrong entry costs only an upload, so every failure of the cache (cannot
// open, locked by another process, corrupt file, disk full, a file written by a newer regfs)
// degrades to "knows nothing" and never fails the caller; each kind of failure is reported once
// per object through the optional log callback. A corrupt or incompatible older file is emptied
// and recreated.
//
// Storage: one SQLite database (default $XDG_CACHE_HOME/regfs/blob-locations.db) in WAL mode
// with synchronous=NORMAL, shared by every process of the user; a writer waits at most
// busy_timeout_ms for another one and then skips its update. Bounded: at most max_rows rows
// (the least recently seen are dropped first) and max_repositories_per_digest repositories per
// (registry, digest); at most max_variants compressed variants. Over-long names are ignored.
//
// Thread-safe: one connection per object, guarded by a mutex; the log callback is called without
// that mutex held. Separate objects (in one process or several) on the same file see each
// other's records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace regfs {

struct BlobLocationCacheOptions {
  int64_t max_rows = 100000;
  int64_t max_variants = 20000;  // (compressed, uncompressed) pairs kept
  int max_repositories_per_digest = 16;
  int busy_timeout_ms = 250;
};

class BlobLocationCache {
 public:
  using Log = std::function<void(const std::string&)>;

  // Opens (creating it and its parent directories, 0700 directories / 0600 file) the database
  // at `path`. Never fails: a cache that cannot be opened is an empty, inert one.
  static std::shared_ptr<BlobLocationCache> Open(const std::string& path, Log log = {},
                                                 BlobLocationCacheOptions options = {});

  // $XDG_CACHE_HOME/regfs/blob-locations.db, else ~/.cache/regfs/blob-locations.db ($HOME from
  // the environment, else the password database); "" when there is no home directory.
  static std::string DefaultPath();

  // Bytes SQLite holds in this process for every open cache (page caches, schemas, statements).
  static int64_t MemoryUsed();

  BlobLocationCache(const BlobLocationCache&) = delete;
  BlobLocationCache& operator=(const BlobLocationCache&) = delete;
  ~BlobLocationCache();

  // Records that `digest` is in registry/repository now (updates its last-seen time).
  void Record(const std::string& registry, const std::string& repository,
              const std::string& digest) noexcept;

  // Repositories of `registry` where `digest` was seen, most recently seen first, at most `limit`.
  std::vector<std::string> Repositories(const std::string& registry, const std::string& digest,
                                        size_t limit = 8) noexcept;

  // A compressed layer and the digest of what it decompresses to, both verified by the copy
  // that (de)compressed it (as containers/image's RecordDigestUncompressedPair), so that a
  // later copy about to compress that uncompressed layer can reuse a compressed one the
  // destination has instead. `compression` names the algorithm ("gzip", "zstd").
  struct Variant {
    std::string digest;
    std::string compression;
    int64_t size = -1;
  };
  void RecordVariant(const std::string& compressed, const std::string& uncompressed,
                     const std::string& compression, int64_t size) noexcept;
  // The compressed variants known of `uncompressed`, most recently seen first, at most `limit`.
  std::vector<Variant> CompressedVariants(const std::string& uncompressed,
                                          size_t limit = 8) noexcept;

  // Drops one location that turned out wrong.
  void Forget(const std::string& registry, const std::string& repository,
              const std::string& digest) noexcept;

  // False for an inert cache (one that could not be opened, or gave up after an error).
  bool usable() const noexcept;

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using Db = std::unique_ptr<sqlite3, DbCloser>;
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
  struct Statements {
    Stmt begin, commit, rollback, upsert, trim_fanout, row_count, evict, lookup, forget,
        upsert_variant, trim_variants, lookup_variants;
  };
  enum class Outcome { kOk, kReplace, kFail };

  BlobLocationCache(std::string path, Log log, BlobLocationCacheOptions options);
  void OpenLocked();
  Outcome ConnectLocked();
  Outcome CreateSchemaLocked(sqlite3* db);
  bool EmptyFileLocked();
  void CloseLocked();
  bool RecordLocked(const std::string& registry, const std::string& repository,
                    const std::string& digest);
  // Notes a failed SQLite call (logged once per kind); a corrupt file is emptied and reopened.
  void FailLocked(int rc, const char* what);
  void FailLocked(int rc, const char* what, const std::string& error);
  void NoteLocked(const std::string& kind, const std::string& message);
  void FlushLog(std::vector<std::string> messages) const noexcept;
  // Runs use_db() under mu_ when the database is open, then logs what it noted; an
  // exception (out of memory) skips the rest of it.
  template <class F>
  void WithDb(F&& use_db) noexcept;

  const std::string path_;
  const Log log_;
  const BlobLocationCacheOptions options_;
  mutable std::mutex mu_;
  Db db_;                             // null when inert; guarded by mu_
  Statements st_;                     // prepared on db_; guarded by mu_
  bool replaced_ = false;             // the file was emptied once already; guarded by mu_
  std::set<std::string> logged_;      // kinds of failure already logged; guarded by mu_
  std::vector<std::string> pending_;  // messages for log_, sent once mu_ is released
};

}  // namespace regfs
