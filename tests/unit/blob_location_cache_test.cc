#include "transports/blobinfocache/blob_location_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/testing/scoped_env.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using Strings = std::vector<std::string>;

// Collects what a cache logs; thread-safe.
struct LogLines {
  std::mutex mu;
  Strings lines;
  BlobLocationCache::Log Callback() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.push_back(line);
    };
  }
  Strings Get() {
    std::lock_guard<std::mutex> lock(mu);
    return lines;
  }
};

std::string Digest(int i) { return DigestOf("blob " + std::to_string(i)); }

int Mode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Runs SQL on the file directly, as another program would.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

class BlobLocationCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<BlobLocationCache> Open(BlobLocationCacheOptions options = {}) {
    return BlobLocationCache::Open(path_, log_.Callback(), options);
  }

  testing::TempDir tmp_{"regfs-blobloc-test"};  // made writable again before removal
  const std::string dir_ = tmp_.path();
  std::string path_ = dir_ + "/cache/regfs/blob-locations.db";
  LogLines log_;
};

TEST_F(BlobLocationCacheTest, ARecordedLocationIsFoundAgain) {
  auto cache = Open();
  ASSERT_TRUE(cache->usable());
  EXPECT_EQ(cache->Repositories("quay.io", Digest(1)), Strings{});
  cache->Record("quay.io", "ns/app", Digest(1));
  cache->Record("quay.io", "ns/app", Digest(1));  // again: still one location
  EXPECT_EQ(cache->Repositories("quay.io", Digest(1)), Strings{"ns/app"});
  EXPECT_EQ(cache->Repositories("quay.io", Digest(2)), Strings{});
  EXPECT_EQ(cache->Repositories("quay.io", Digest(1), 0), Strings{});
  EXPECT_EQ(log_.Get(), Strings{});
}

TEST_F(BlobLocationCacheTest, CompressedVariantsAreFoundByTheirUncompressedDigest) {
  auto cache = Open(BlobLocationCacheOptions{.max_variants = 3});
  EXPECT_TRUE(cache->CompressedVariants(Digest(0)).empty());
  cache->RecordVariant(Digest(1), Digest(0), "gzip", 100);
  cache->RecordVariant(Digest(2), Digest(0), "zstd", 90);
  cache->RecordVariant(Digest(0), Digest(0), "gzip", 1);  // not a variant of itself
  auto found = Open()->CompressedVariants(Digest(0));     // and across objects
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].digest, Digest(2));  // the most recent first
  EXPECT_EQ(found[0].compression, "zstd");
  EXPECT_EQ(found[0].size, 90);
  EXPECT_EQ(found[1].digest, Digest(1));
  // Bounded: the least recently seen pairs go.
  cache->RecordVariant(Digest(3), Digest(9), "gzip", 1);
  cache->RecordVariant(Digest(4), Digest(9), "gzip", 1);
  found = cache->CompressedVariants(Digest(0));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].digest, Digest(2));
  EXPECT_EQ(cache->CompressedVariants(Digest(9)).size(), 2u);
  EXPECT_EQ(log_.Get(), Strings{});
}

TEST_F(BlobLocationCacheTest, LocationsSurviveReopening) {
  Open()->Record("quay.io", "ns/app", Digest(1));
  EXPECT_EQ(Open()->Repositories("quay.io", Digest(1)), Strings{"ns/app"});
}

TEST_F(BlobLocationCacheTest, TheMostRecentlySeenRepositoryComesFirst) {
  auto cache = Open();
  cache->Record("r.io", "a", Digest(1));
  cache->Record("r.io", "b", Digest(1));
  cache->Record("r.io", "c", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), (Strings{"c", "b", "a"}));
  cache->Record("r.io", "a", Digest(1));  // seen again
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), (Strings{"a", "c", "b"}));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1), 2), (Strings{"a", "c"}));
}

TEST_F(BlobLocationCacheTest, EachRegistryHasItsOwnLocations) {
  auto cache = Open();
  cache->Record("one.io", "x", Digest(1));
  cache->Record("two.io:5000", "y", Digest(1));
  EXPECT_EQ(cache->Repositories("one.io", Digest(1)), Strings{"x"});
  EXPECT_EQ(cache->Repositories("two.io:5000", Digest(1)), Strings{"y"});
  EXPECT_EQ(cache->Repositories("two.io", Digest(1)), Strings{});
}

TEST_F(BlobLocationCacheTest, ForgetDropsOnlyThatLocation) {
  auto cache = Open();
  cache->Record("r.io", "a", Digest(1));
  cache->Record("r.io", "b", Digest(1));
  cache->Record("r.io", "a", Digest(2));
  cache->Forget("r.io", "a", Digest(1));
  cache->Forget("r.io", "never", Digest(1));  // unknown: nothing happens
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{"b"});
  EXPECT_EQ(cache->Repositories("r.io", Digest(2)), Strings{"a"});
  EXPECT_EQ(log_.Get(), Strings{});
}

TEST_F(BlobLocationCacheTest, TheLeastRecentlySeenRowsAreEvictedOverTheBound) {
  BlobLocationCacheOptions options;
  options.max_rows = 10;
  auto cache = Open(options);
  for (int i = 0; i < 30; ++i) {
    cache->Record("r.io", "repo", Digest(i));
    if (i == 25) cache->Record("r.io", "repo", Digest(0));  // seen again: among the newest
  }
  int kept = 0;
  for (int i = 0; i < 30; ++i) kept += !cache->Repositories("r.io", Digest(i)).empty();
  EXPECT_EQ(kept, 10);
  for (int i = 21; i < 30; ++i) EXPECT_EQ(cache->Repositories("r.io", Digest(i)), Strings{"repo"});
  EXPECT_EQ(cache->Repositories("r.io", Digest(0)), Strings{"repo"});
  EXPECT_EQ(cache->Repositories("r.io", Digest(20)), Strings{});
  // Forgotten rows count too: after Forget there is room for one more without evicting.
  cache->Forget("r.io", "repo", Digest(29));
  cache->Record("r.io", "repo", Digest(100));
  EXPECT_EQ(cache->Repositories("r.io", Digest(21)), Strings{"repo"});
  EXPECT_EQ(log_.Get(), Strings{});
}

TEST_F(BlobLocationCacheTest, AtMostSoManyRepositoriesAreKeptPerDigest) {
  BlobLocationCacheOptions options;
  options.max_repositories_per_digest = 4;
  auto cache = Open(options);
  for (int i = 0; i < 10; ++i) cache->Record("r.io", "repo" + std::to_string(i), Digest(1));
  cache->Record("r.io", "other", Digest(2));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1), 100),
            (Strings{"repo9", "repo8", "repo7", "repo6"}));
  EXPECT_EQ(cache->Repositories("r.io", Digest(2)), Strings{"other"});
}

TEST_F(BlobLocationCacheTest, TwoObjectsOnOneFileSeeEachOthersRecords) {
  auto a = Open();
  auto b = Open();  // as another process would
  a->Record("r.io", "from-a", Digest(1));
  b->Record("r.io", "from-b", Digest(1));
  EXPECT_EQ(a->Repositories("r.io", Digest(1)), (Strings{"from-b", "from-a"}));
  EXPECT_EQ(b->Repositories("r.io", Digest(1)), (Strings{"from-b", "from-a"}));
  b->Forget("r.io", "from-a", Digest(1));
  EXPECT_EQ(a->Repositories("r.io", Digest(1)), Strings{"from-b"});
}

TEST_F(BlobLocationCacheTest, ConcurrentRecordsFromThreadsAndObjectsAreAllKept) {
  // Every record is kept when no writer waits longer than the busy timeout; the default 250 ms
  // is exceeded on a loaded machine or in a sanitizer build (AWriterThatWaitsTooLong… is the
  // test of what happens then).
  BlobLocationCacheOptions patient{.busy_timeout_ms = 30'000};
  auto a = Open(patient);
  auto b = Open(patient);
  constexpr int kThreads = 4, kPerThread = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      BlobLocationCache& cache = t % 2 ? *b : *a;
      std::string repo = "t" + std::to_string(t);
      for (int i = 0; i < kPerThread; ++i) {
        cache.Record("r.io", repo, Digest(t * kPerThread + i));
        cache.Record("r.io", repo, Digest(-1));  // one digest shared by all
        if (i % 10 == 0) cache.Repositories("r.io", Digest(-1));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(log_.Get(), Strings{});
  auto check = Open();
  int found = 0;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    found +=
        check->Repositories("r.io", Digest(i)) == Strings{"t" + std::to_string(i / kPerThread)};
  }
  EXPECT_EQ(found, kThreads * kPerThread);
  EXPECT_EQ(check->Repositories("r.io", Digest(-1)).size(), 4u);
}

TEST_F(BlobLocationCacheTest, AWriterThatWaitsTooLongSkipsItsRecordAndSaysSoOnce) {
  auto cache = Open();
  cache->Record("r.io", "a", Digest(1));
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto start = std::chrono::steady_clock::now();
  cache->Record("r.io", "b", Digest(1));
  cache->Record("r.io", "c", Digest(1));
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_LT(waited, std::chrono::seconds(2));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{"a"});  // readers are not blocked
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_EQ(log_.Get().size(), 1u);
  EXPECT_NE(log_.Get()[0].find("locked"), std::string::npos) << log_.Get()[0];
  cache->Record("r.io", "b", Digest(1));  // and works again once the lock is gone
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), (Strings{"b", "a"}));
}

TEST_F(BlobLocationCacheTest, AGarbageFileIsReplacedAndWorks) {
  ASSERT_TRUE(MakeDirs(DirName(path_), 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(path_, std::string(8192, 'x'), 0600).ok());
  auto cache = Open();
  EXPECT_TRUE(cache->usable());
  cache->Record("r.io", "a", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{"a"});
  Strings lines = log_.Get();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("starting afresh"), std::string::npos) << lines[0];
  EXPECT_EQ(Open()->Repositories("r.io", Digest(1)), Strings{"a"});
  EXPECT_EQ(log_.Get().size(), 1u);  // the new file is fine
}

TEST_F(BlobLocationCacheTest, AFileDamagedInsideIsReplacedWhenTheDamageIsFound) {
  {
    auto cache = Open();
    for (int i = 0; i < 50; ++i) cache->Record("r.io", "a", Digest(i));
  }
  RawExec(path_, "PRAGMA wal_checkpoint(TRUNCATE)");
  {
    // The header and the schema (page 1) intact, every table's pages garbage.
    struct stat st {};
    ASSERT_EQ(stat(path_.c_str(), &st), 0);
    ASSERT_GT(st.st_size, 4096);
    UniqueFd fd(open(path_.c_str(), O_WRONLY));
    std::string garbage(static_cast<size_t>(st.st_size) - 4096, '\x5a');
    ASSERT_TRUE(WriteAllAt(fd.get(), garbage.data(), garbage.size(), 4096, path_).ok());
  }
  unlink((path_ + "-wal").c_str());
  unlink((path_ + "-shm").c_str());
  auto cache = Open();
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{});
  EXPECT_TRUE(cache->usable());
  cache->Record("r.io", "b", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{"b"});
  Strings lines = log_.Get();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("starting afresh"), std::string::npos) << lines.back();
}

TEST_F(BlobLocationCacheTest, ASomeOtherDatabaseIsReplaced) {
  ASSERT_TRUE(MakeDirs(DirName(path_), 0700).ok());
  RawExec(path_, "CREATE TABLE locations (x); INSERT INTO locations VALUES (1);");
  auto cache = Open();
  EXPECT_TRUE(cache->usable());
  cache->Record("r.io", "a", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{"a"});
  EXPECT_EQ(log_.Get().size(), 1u);
}

TEST_F(BlobLocationCacheTest, AFileOfANewerRegfsIsLeftAloneAndNotUsed) {
  ASSERT_TRUE(MakeDirs(DirName(path_), 0700).ok());
  RawExec(path_, "CREATE TABLE future (x); PRAGMA user_version = 99;");
  auto cache = Open();
  EXPECT_FALSE(cache->usable());
  cache->Record("r.io", "a", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{});
  ASSERT_EQ(log_.Get().size(), 1u);
  EXPECT_NE(log_.Get()[0].find("newer"), std::string::npos) << log_.Get()[0];
  RawExec(path_, "SELECT x FROM future");  // still there
}

TEST_F(BlobLocationCacheTest, AnUnusableDirectoryGivesAnInertCache) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "", 0600).ok());
  path_ = dir_ + "/file/regfs/blob-locations.db";  // below a regular file: even root fails
  auto cache = Open();
  EXPECT_FALSE(cache->usable());
  cache->Record("r.io", "a", Digest(1));
  cache->Forget("r.io", "a", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{});
  EXPECT_EQ(log_.Get().size(), 1u);  // reported once, at open
}

TEST_F(BlobLocationCacheTest, NoPathGivesAnInertCache) {
  path_ = "";  // what DefaultPath() says when there is no home directory
  auto cache = Open();
  EXPECT_FALSE(cache->usable());
  cache->Record("r.io", "a", Digest(1));
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{});
  EXPECT_EQ(log_.Get().size(), 1u);
}

TEST_F(BlobLocationCacheTest, TheFilesArePrivateToTheUser) {
  mode_t old = umask(022);
  auto cache = Open();
  umask(old);
  cache->Record("r.io", "a", Digest(1));
  EXPECT_EQ(Mode(dir_ + "/cache"), 0700);
  EXPECT_EQ(Mode(dir_ + "/cache/regfs"), 0700);
  EXPECT_EQ(Mode(path_), 0600);
  EXPECT_EQ(Mode(path_ + "-wal"), 0600);  // WAL mode, and its files as private as the database
  EXPECT_EQ(Mode(path_ + "-shm"), 0600);
}

TEST_F(BlobLocationCacheTest, OverlongNamesAreIgnored) {
  auto cache = Open();
  std::string huge(5000, 'a');
  cache->Record(huge, "a", Digest(1));
  cache->Record("r.io", huge, Digest(1));
  cache->Record("r.io", "a", huge);
  cache->Record("", "a", Digest(1));
  EXPECT_EQ(cache->Repositories(huge, Digest(1)), Strings{});
  EXPECT_EQ(cache->Repositories("r.io", Digest(1)), Strings{});
  EXPECT_EQ(cache->Repositories("r.io", huge), Strings{});
  EXPECT_EQ(log_.Get(), Strings{});
}

TEST(BlobLocationCacheDefaultPathTest, FollowsXdgCacheHomeThenHome) {
  testing::ScopedEnv env("XDG_CACHE_HOME", "/x/cache");
  EXPECT_EQ(BlobLocationCache::DefaultPath(), "/x/cache/regfs/blob-locations.db");
  env.Set("XDG_CACHE_HOME", "");
  env.Set("HOME", "/home/u");
  EXPECT_EQ(BlobLocationCache::DefaultPath(), "/home/u/.cache/regfs/blob-locations.db");
  env.Unset("XDG_CACHE_HOME");
  env.Unset("HOME");
  std::string from_passwd = BlobLocationCache::DefaultPath();  // the password database's home
  EXPECT_TRUE(from_passwd.empty() ||
              (from_passwd[0] == '/' && from_passwd.ends_with("/.cache/regfs/blob-locations.db")))
      << from_passwd;
}

}  // namespace
}  // namespace regfs
