#include "transports/blobinfocache/blob_location_cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "transports/util/file_util.h"

namespace regfs {

void BlobLocationCache::DbCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

void BlobLocationCache::StmtFinalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

namespace {

constexpr int kSchemaVersion = 2;

// `seen` is a clock: microseconds since the epoch, but always above every other row's, so that
// it orders locations by recency even between processes whose clocks disagree slightly, and no
// two rows have the same value. row_count is kept by the triggers, so that the bound is checked
// without counting.
constexpr char kSchema[] = R"sql(
CREATE TABLE locations (
  registry TEXT NOT NULL,
  digest TEXT NOT NULL,
  repository TEXT NOT NULL,
  seen INTEGER NOT NULL,
  PRIMARY KEY (registry, digest, repository)
) WITHOUT ROWID;
CREATE INDEX locations_by_seen ON locations (seen);
CREATE TABLE row_count (n INTEGER NOT NULL);
INSERT INTO row_count VALUES (0);
CREATE TRIGGER locations_inserted AFTER INSERT ON locations
  BEGIN UPDATE row_count SET n = n + 1; END;
CREATE TRIGGER locations_deleted AFTER DELETE ON locations
  BEGIN UPDATE row_count SET n = n - 1; END;
CREATE TABLE variants (
  compressed TEXT NOT NULL PRIMARY KEY,
  uncompressed TEXT NOT NULL,
  compression TEXT NOT NULL,
  size INTEGER NOT NULL,
  seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX variants_by_uncompressed ON variants (uncompressed, seen);
CREATE INDEX variants_by_seen ON variants (seen);
PRAGMA user_version = 2;
)sql";
static_assert(kSchemaVersion == 2, "update the user_version set by kSchema");

constexpr char kUpsert[] = R"sql(
INSERT INTO locations (registry, digest, repository, seen)
  VALUES (?1, ?2, ?3, max(?4, coalesce((SELECT max(seen) FROM locations), 0) + 1))
  ON CONFLICT (registry, digest, repository) DO UPDATE SET seen = excluded.seen
)sql";
// Keeps the ?3 + 1 most recently seen repositories of (?1, ?2).
constexpr char kTrimFanout[] = R"sql(
DELETE FROM locations WHERE registry = ?1 AND digest = ?2 AND seen <
  (SELECT seen FROM locations WHERE registry = ?1 AND digest = ?2
     ORDER BY seen DESC LIMIT 1 OFFSET ?3)
)sql";
constexpr char kRowCount[] = "SELECT n FROM row_count";
// Deletes the ?1 least recently seen rows.
constexpr char kEvict[] = R"sql(
DELETE FROM locations WHERE seen < (SELECT seen FROM locations ORDER BY seen LIMIT 1 OFFSET ?1)
)sql";
constexpr char kLookup[] = R"sql(
SELECT repository FROM locations WHERE registry = ?1 AND digest = ?2 ORDER BY seen DESC LIMIT ?3
)sql";
// A compressed blob and what it decompresses to; only the ?1 most recently seen pairs are kept.
constexpr char kUpsertVariant[] = R"sql(
INSERT INTO variants (compressed, uncompressed, compression, size, seen)
  VALUES (?1, ?2, ?3, ?4, max(?5, coalesce((SELECT max(seen) FROM variants), 0) + 1))
  ON CONFLICT (compressed) DO UPDATE SET uncompressed = excluded.uncompressed,
    compression = excluded.compression, size = excluded.size, seen = excluded.seen
)sql";
constexpr char kTrimVariants[] = R"sql(
DELETE FROM variants WHERE seen < (SELECT seen FROM variants ORDER BY seen DESC LIMIT 1 OFFSET ?1)
)sql";
constexpr char kLookupVariants[] = R"sql(
SELECT compressed, compression, size FROM variants WHERE uncompressed = ?1
  ORDER BY seen DESC LIMIT ?2
)sql";
constexpr char kForget[] =
    "DELETE FROM locations WHERE registry = ?1 AND digest = ?2 AND repository = ?3";

// Longer names are not real ones (a host name is at most 253 characters, a sha512 digest 135).
constexpr size_t kMaxRegistry = 255;
constexpr size_t kMaxRepository = 1024;
constexpr size_t kMaxDigest = 255;
constexpr size_t kMaxLimit = 1024;

bool ValidName(const std::string& s, size_t max) { return !s.empty() && s.size() <= max; }

bool IsCorrupt(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

std::string ErrorText(sqlite3* db, int rc) { return db ? sqlite3_errmsg(db) : sqlite3_errstr(rc); }

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Resets a statement (and drops its bindings) when its use ends.
class Use {
 public:
  explicit Use(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* get() const { return stmt_; }

  // Binds text without copying it: the string outlives the use.
  int Text(int index, const std::string& s) {
    return sqlite3_bind_text(stmt_, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  int Int(int index, int64_t v) { return sqlite3_bind_int64(stmt_, index, v); }
  int Step() { return sqlite3_step(stmt_); }

 private:
  sqlite3_stmt* stmt_;
};

// Runs a statement without parameters and result rows to completion.
int Exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

// Runs a query of one integer; *out stays 0 when it returns no row.
int QueryInt(sqlite3* db, const char* sql, int64_t* out) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return rc;
  }
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(raw, 0);
  sqlite3_finalize(raw);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

// Creates the file (0600) unless it exists, so that SQLite, which gives its WAL and
// shared-memory files the database file's mode, never makes any of them readable by others.
bool CreateFile(const std::string& path, std::string* error) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = std::strerror(errno);
    return false;
  }
  close(fd);
  return true;
}

}  // namespace

BlobLocationCache::BlobLocationCache(std::string path, Log log, BlobLocationCacheOptions options)
    : path_(std::move(path)), log_(std::move(log)), options_([&] {
        options.max_rows = std::max<int64_t>(options.max_rows, 1);
        options.max_repositories_per_digest = std::max(options.max_repositories_per_digest, 1);
        options.busy_timeout_ms = std::max(options.busy_timeout_ms, 0);
        return options;
      }()) {}

BlobLocationCache::~BlobLocationCache() = default;

std::shared_ptr<BlobLocationCache> BlobLocationCache::Open(const std::string& path, Log log,
                                                           BlobLocationCacheOptions options) {
  std::shared_ptr<BlobLocationCache> cache(new BlobLocationCache(path, std::move(log), options));
  std::vector<std::string> messages;
  try {
    std::lock_guard<std::mutex> lock(cache->mu_);
    cache->OpenLocked();
    messages.swap(cache->pending_);
  } catch (...) {  // out of memory: an inert cache
  }
  cache->FlushLog(std::move(messages));
  return cache;
}

int64_t BlobLocationCache::MemoryUsed() { return sqlite3_memory_used(); }

std::string BlobLocationCache::DefaultPath() {
  const std::string tail = "/regfs/blob-locations.db";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return x + tail;
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else {
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir &&
        *found->pw_dir) {
      home = found->pw_dir;
    }
  }
  if (home.empty()) return "";
  return home + "/.cache" + tail;
}

void BlobLocationCache::NoteLocked(const std::string& kind, const std::string& message) {
  if (logged_.insert(kind).second) {
    pending_.push_back("blob-location cache " + path_ + ": " + message);
  }
}

void BlobLocationCache::FlushLog(std::vector<std::string> messages) const noexcept {
  if (!log_) return;
  for (const std::string& m : messages) {
    try {
      log_(m);
    } catch (...) {  // a logger's failure is not the caller's
    }
  }
}

void BlobLocationCache::OpenLocked() {
  if (path_.empty()) {
    NoteLocked("open", "no cache directory (neither $XDG_CACHE_HOME nor a home directory)");
    return;
  }
  Status dirs = MakeDirs(DirName(path_), 0700);
  if (!dirs.ok()) {
    NoteLocked("open", dirs.error().message + "; not using the cache");
    return;
  }
  std::string error;
  if (!CreateFile(path_, &error)) {
    NoteLocked("open", "creating the file: " + error + "; not using the cache");
    return;
  }
  Outcome outcome = ConnectLocked();
  if (outcome == Outcome::kReplace) {
    replaced_ = true;
    NoteLocked("replace", "corrupt or written by an older regfs; starting afresh");
    outcome = EmptyFileLocked() ? ConnectLocked() : Outcome::kFail;
    if (outcome == Outcome::kReplace) {
      NoteLocked("open", "still unusable after starting afresh; not using the cache");
    }
  }
}

BlobLocationCache::Outcome BlobLocationCache::ConnectLocked() {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path_.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  auto fail = [&](const char* what) {
    if (IsCorrupt(rc)) return Outcome::kReplace;
    NoteLocked("open",
               std::string(what) + ": " + ErrorText(db.get(), rc) + "; not using the cache");
    return Outcome::kFail;
  };
  if (rc != SQLITE_OK) return fail("opening");
  sqlite3_busy_timeout(db.get(), options_.busy_timeout_ms);
  // The last connection to close would checkpoint the WAL into the database and delete it: two
  // fsyncs at the end of every command, and two more at its first write to recreate the WAL.
  // Left alone, the WAL is checkpointed by whichever writer takes it past 256 pages (~85
  // records), and the next process to open reads it (~1 MB at most: well under a millisecond).
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // Persistent in the file; when it is WAL already this only reads the header.
  rc = Exec(db.get(), "PRAGMA journal_mode=WAL");
  if (rc != SQLITE_OK) return fail("setting WAL mode");
  // A 256 KiB page cache instead of SQLite's 2 MB: a lookup reads a few index pages, and a
  // long copy or sync would otherwise fill the larger one as the file grows.
  rc = Exec(db.get(),
            "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=256; "
            "PRAGMA journal_size_limit=2097152; PRAGMA cache_size=-256");
  if (rc != SQLITE_OK) return fail("setting the journal's options");
  int64_t version = 0;
  rc = QueryInt(db.get(), "PRAGMA user_version", &version);
  if (rc != SQLITE_OK) return fail("reading the schema version");
  if (version != kSchemaVersion) {
    Outcome created = CreateSchemaLocked(db.get());
    if (created != Outcome::kOk) return created;
  }

  // Statements are declared after db, so they are finalized before it is closed.
  Statements st;
  const std::pair<Stmt*, const char*> statements[] = {
      {&st.begin, "BEGIN IMMEDIATE"},
      {&st.commit, "COMMIT"},
      {&st.rollback, "ROLLBACK"},
      {&st.upsert, kUpsert},
      {&st.trim_fanout, kTrimFanout},
      {&st.row_count, kRowCount},
      {&st.evict, kEvict},
      {&st.lookup, kLookup},
      {&st.forget, kForget},
      {&st.upsert_variant, kUpsertVariant},
      {&st.trim_variants, kTrimVariants},
      {&st.lookup_variants, kLookupVariants},
  };
  for (const auto& [stmt, sql] : statements) {
    sqlite3_stmt* prepared = nullptr;
    rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &prepared, nullptr);
    stmt->reset(prepared);
    // SQLITE_ERROR here is a schema that is not ours although its version number is.
    if ((rc & 0xff) == SQLITE_ERROR) return Outcome::kReplace;
    if (rc != SQLITE_OK) return fail("preparing statements");
  }
  db_ = std::move(db);
  st_ = std::move(st);
  return Outcome::kOk;
}

BlobLocationCache::Outcome BlobLocationCache::CreateSchemaLocked(sqlite3* db) {
  int rc = Exec(db, "BEGIN IMMEDIATE");
  Outcome outcome = Outcome::kOk;
  const char* what = "creating the schema";
  int64_t version = 0;
  if (rc == SQLITE_OK) rc = QueryInt(db, "PRAGMA user_version", &version);  // again, locked
  if (rc == SQLITE_OK && version == 0) {
    int64_t objects = 0;
    rc = QueryInt(db, "SELECT count(*) FROM sqlite_master", &objects);
    if (rc == SQLITE_OK && objects == 0) {
      rc = Exec(db, kSchema);
    } else if (rc == SQLITE_OK) {
      outcome = Outcome::kReplace;  // some other database
    }
  } else if (rc == SQLITE_OK && version > kSchemaVersion) {
    // Left alone, so that a newer regfs sharing this file keeps its cache.
    NoteLocked("newer", "written by a newer regfs (schema " + std::to_string(version) +
                            "); not using the cache");
    outcome = Outcome::kFail;
  } else if (rc == SQLITE_OK && version != kSchemaVersion) {
    outcome = Outcome::kReplace;
  }
  if (rc == SQLITE_OK && outcome == Outcome::kOk) {
    rc = Exec(db, "COMMIT");
    what = "committing the schema";
  }
  if (rc != SQLITE_OK) {
    outcome = IsCorrupt(rc) ? Outcome::kReplace : Outcome::kFail;
    if (outcome == Outcome::kFail) {
      NoteLocked("open", std::string(what) + ": " + ErrorText(db, rc) + "; not using the cache");
    }
  }
  if (!sqlite3_get_autocommit(db)) Exec(db, "ROLLBACK");
  return outcome;
}

bool BlobLocationCache::EmptyFileLocked() {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db.get(), options_.busy_timeout_ms);
    // SQLite's own way to empty a database, corrupt or not, under its locks: safe while other
    // processes have it open. The file is tiny afterwards, so the VACUUM is cheap.
    sqlite3_db_config(db.get(), SQLITE_DBCONFIG_RESET_DATABASE, 1, nullptr);
    rc = Exec(db.get(), "VACUUM");
    sqlite3_db_config(db.get(), SQLITE_DBCONFIG_RESET_DATABASE, 0, nullptr);
  }
  if (rc == SQLITE_OK) return true;
  std::string error = ErrorText(db.get(), rc);
  db.reset();
  if (IsCorrupt(rc)) {
    // A file SQLite cannot even reset is of no use to anyone: remove it and its companions.
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) unlink((path_ + suffix).c_str());
    if (CreateFile(path_, &error)) return true;
  }
  NoteLocked("open", "starting afresh: " + error + "; not using the cache");
  return false;
}

void BlobLocationCache::CloseLocked() {
  st_ = Statements{};
  db_.reset();
}

void BlobLocationCache::FailLocked(int rc, const char* what) {
  FailLocked(rc, what, ErrorText(db_.get(), rc));
}

void BlobLocationCache::FailLocked(int rc, const char* what, const std::string& error) {
  NoteLocked(sqlite3_errstr(rc & 0xff), std::string(what) + ": " + error);
  if (!IsCorrupt(rc)) return;  // busy, disk full, …: this update is skipped, the next may work
  CloseLocked();
  if (replaced_) {
    NoteLocked("open", "corrupt again; not using the cache");
    return;
  }
  replaced_ = true;
  NoteLocked("replace", "corrupt; starting afresh");
  if (EmptyFileLocked() && ConnectLocked() != Outcome::kOk) CloseLocked();
}

bool BlobLocationCache::RecordLocked(const std::string& registry, const std::string& repository,
                                     const std::string& digest) {
  sqlite3* db = db_.get();
  auto step = [](Stmt& stmt) {
    Use use(stmt.get());
    return use.Step();
  };
  int rc = step(st_.begin);
  if (rc == SQLITE_DONE) {
    Use use(st_.upsert.get());
    use.Text(1, registry);
    use.Text(2, digest);
    use.Text(3, repository);
    use.Int(4, NowMicros());
    rc = use.Step();
  }
  if (rc == SQLITE_DONE) {
    Use use(st_.trim_fanout.get());
    use.Text(1, registry);
    use.Text(2, digest);
    use.Int(3, options_.max_repositories_per_digest - 1);
    rc = use.Step();
  }
  int64_t rows = 0;
  if (rc == SQLITE_DONE) {
    Use use(st_.row_count.get());
    rc = use.Step();
    if (rc == SQLITE_ROW) {
      rows = sqlite3_column_int64(use.get(), 0);
      rc = SQLITE_DONE;
    }
  }
  if (rc == SQLITE_DONE && rows > options_.max_rows) {
    // Amortised: down to 1/64 below the bound, so that this runs once per max_rows/64 inserts.
    Use use(st_.evict.get());
    use.Int(1, rows - options_.max_rows + options_.max_rows / 64);
    rc = use.Step();
  }
  if (rc == SQLITE_DONE) rc = step(st_.commit);
  if (rc == SQLITE_DONE) return true;
  std::string error = ErrorText(db, rc);  // before the ROLLBACK replaces it
  if (!sqlite3_get_autocommit(db)) step(st_.rollback);
  FailLocked(rc, "recording a location", error);
  return false;
}

template <class F>
void BlobLocationCache::WithDb(F&& use_db) noexcept {
  std::vector<std::string> messages;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (db_) use_db();
    messages.swap(pending_);
  } catch (...) {  // out of memory: the cache skips this one
  }
  FlushLog(std::move(messages));
}

void BlobLocationCache::Record(const std::string& registry, const std::string& repository,
                               const std::string& digest) noexcept {
  if (!ValidName(registry, kMaxRegistry) || !ValidName(repository, kMaxRepository) ||
      !ValidName(digest, kMaxDigest)) {
    return;
  }
  WithDb([&] { RecordLocked(registry, repository, digest); });
}

std::vector<std::string> BlobLocationCache::Repositories(const std::string& registry,
                                                         const std::string& digest,
                                                         size_t limit) noexcept {
  std::vector<std::string> out;
  if (!ValidName(registry, kMaxRegistry) || !ValidName(digest, kMaxDigest) || limit == 0) {
    return out;
  }
  bool complete = false;
  WithDb([&] {
    int rc;
    {
      Use use(st_.lookup.get());
      use.Text(1, registry);
      use.Text(2, digest);
      use.Int(3, static_cast<int64_t>(std::min(limit, kMaxLimit)));
      while ((rc = use.Step()) == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(use.get(), 0);
        int size = sqlite3_column_bytes(use.get(), 0);
        if (text) out.emplace_back(reinterpret_cast<const char*>(text), size);
      }
    }
    if (rc != SQLITE_DONE) {
      FailLocked(rc, "looking up a blob");
      return;
    }
    complete = true;
  });
  if (!complete) out.clear();  // an error, or out of memory: knows nothing
  return out;
}

void BlobLocationCache::Forget(const std::string& registry, const std::string& repository,
                               const std::string& digest) noexcept {
  if (!ValidName(registry, kMaxRegistry) || !ValidName(repository, kMaxRepository) ||
      !ValidName(digest, kMaxDigest)) {
    return;
  }
  WithDb([&] {
    int rc;
    {
      Use use(st_.forget.get());
      use.Text(1, registry);
      use.Text(2, digest);
      use.Text(3, repository);
      rc = use.Step();
    }
    if (rc != SQLITE_DONE) FailLocked(rc, "forgetting a location");
  });
}

void BlobLocationCache::RecordVariant(const std::string& compressed,
                                      const std::string& uncompressed,
                                      const std::string& compression, int64_t size) noexcept {
  if (!ValidName(compressed, kMaxDigest) || !ValidName(uncompressed, kMaxDigest) ||
      !ValidName(compression, kMaxDigest) || size < 0 || compressed == uncompressed) {
    return;
  }
  WithDb([&] {
    sqlite3* db = db_.get();
    auto step = [](Stmt& stmt) {
      Use use(stmt.get());
      return use.Step();
    };
    int rc = step(st_.begin);
    if (rc == SQLITE_DONE) {
      Use use(st_.upsert_variant.get());
      use.Text(1, compressed);
      use.Text(2, uncompressed);
      use.Text(3, compression);
      use.Int(4, size);
      use.Int(5, NowMicros());
      rc = use.Step();
    }
    if (rc == SQLITE_DONE) {
      Use use(st_.trim_variants.get());
      use.Int(1, options_.max_variants - 1);
      rc = use.Step();
    }
    if (rc == SQLITE_DONE) rc = step(st_.commit);
    if (rc == SQLITE_DONE) return;
    std::string error = ErrorText(db, rc);
    if (!sqlite3_get_autocommit(db)) step(st_.rollback);
    FailLocked(rc, "recording a compressed variant", error);
  });
}

std::vector<BlobLocationCache::Variant> BlobLocationCache::CompressedVariants(
    const std::string& uncompressed, size_t limit) noexcept {
  std::vector<Variant> out;
  if (!ValidName(uncompressed, kMaxDigest) || limit == 0) return out;
  bool complete = false;
  WithDb([&] {
    int rc;
    {
      Use use(st_.lookup_variants.get());
      use.Text(1, uncompressed);
      use.Int(2, static_cast<int64_t>(std::min(limit, kMaxLimit)));
      while ((rc = use.Step()) == SQLITE_ROW) {
        auto text = [&](int col) {
          const unsigned char* t = sqlite3_column_text(use.get(), col);
          return t ? std::string(reinterpret_cast<const char*>(t),
                                 sqlite3_column_bytes(use.get(), col))
                   : std::string();
        };
        out.push_back(Variant{text(0), text(1), sqlite3_column_int64(use.get(), 2)});
      }
    }
    if (rc != SQLITE_DONE) {
      FailLocked(rc, "looking up compressed variants");
      return;
    }
    complete = true;
  });
  if (!complete) out.clear();
  return out;
}

bool BlobLocationCache::usable() const noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  return db_ != nullptr;
}

}  // namespace regfs
