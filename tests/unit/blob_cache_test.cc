#include "fs/blob_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "tests/unit/testing/temp_dir.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

class BlobCacheTest : public ::testing::Test {
 protected:
  // Stages `content` as a download and commits it, as a verified blob would be.
  std::string Put(BlobCache& cache, const std::string& content) {
    std::string digest = DigestOf(content);
    std::string partial;
    auto fd = cache.CreatePartial(digest, static_cast<int64_t>(content.size()), &partial);
    EXPECT_TRUE(fd.ok());
    EXPECT_TRUE(WriteAll(fd->get(), content.data(), content.size(), partial).ok());
    EXPECT_TRUE(
        cache.Commit(partial, fd->get(), digest, static_cast<int64_t>(content.size())).ok());
    cache.Unpin(digest);
    return digest;
  }

  std::string EntryPath(const std::string& digest) {
    return dir_ + "/blobs/sha256/" + std::string(DigestHex(digest));
  }

  testing::TempDir tmp_{"regfs-cache-test"};
  const std::string dir_ = tmp_.path();
};

TEST_F(BlobCacheTest, CommittedEntriesSurviveAReopen) {
  std::string digest;
  {
    auto cache = BlobCache::Open(dir_, 1 << 20);
    ASSERT_TRUE(cache.ok());
    digest = Put(**cache, "hello");
    EXPECT_EQ((*cache)->bytes(), 5);
  }
  auto cache = BlobCache::Open(dir_, 1 << 20);
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ((*cache)->bytes(), 5);
  auto fd = (*cache)->OpenEntry(digest);
  ASSERT_TRUE(fd.ok());
  char buf[16];
  EXPECT_EQ(pread(fd->get(), buf, sizeof buf, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST_F(BlobCacheTest, AnEntryChangedOnDiskWhileInUseIsCheckedAgainAndRemoved) {
  auto cache = BlobCache::Open(dir_, 1 << 20);
  ASSERT_TRUE(cache.ok());
  std::string digest = Put(**cache, "hello");
  for (int i = 0; i < 2; ++i) {  // opened and closed: verified, served as it is
    auto fd = (*cache)->OpenEntry(digest);
    ASSERT_TRUE(fd.ok()) << fd.error().message;
    (*cache)->Unpin(digest);
  }
  {
    // Something else writes into the entry, same size.
    UniqueFd w(open(EntryPath(digest).c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(w.valid());
    ASSERT_EQ(pwrite(w.get(), "J", 1, 0), 1);
  }
  auto fd = (*cache)->OpenEntry(digest);
  ASSERT_FALSE(fd.ok()) << "a changed entry was served";
  EXPECT_EQ(fd.error().errnum, ENOENT);
  EXPECT_NE(fd.error().message.find("has digest"), std::string::npos) << fd.error().message;
  EXPECT_NE(access(EntryPath(digest).c_str(), F_OK), 0) << "the changed entry is still there";
  EXPECT_EQ((*cache)->bytes(), 0);
}

TEST_F(BlobCacheTest, AnUncommittedDownloadNeverBecomesAnEntry) {
  std::string digest = DigestOf("partial");
  {
    auto cache = BlobCache::Open(dir_, 1 << 20);
    ASSERT_TRUE(cache.ok());
    std::string partial;
    auto fd = (*cache)->CreatePartial(digest, 7, &partial);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(WriteAll(fd->get(), "partial", 7, partial).ok());
    // The daemon dies here: no Commit.
  }
  auto cache = BlobCache::Open(dir_, 1 << 20);
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ((*cache)->OpenEntry(digest).error().errnum, ENOENT);
  EXPECT_FALSE(PathExists(EntryPath(digest)));
  EXPECT_TRUE(IsDirectory(dir_ + "/partial"));
  EXPECT_EQ(rmdir((dir_ + "/partial").c_str()), 0) << "partial/ was not emptied";
}

TEST_F(BlobCacheTest, DownloadsInProgressCountAgainstTheLimit) {
  auto cache = BlobCache::Open(dir_, 10);
  ASSERT_TRUE(cache.ok());
  std::string a = Put(**cache, "aaaa");
  std::string b = Put(**cache, "bbbb");
  EXPECT_EQ((*cache)->bytes(), 8);
  // A 6-byte download starts: room is made now, not when it is committed (a, the older, goes).
  std::string c = DigestOf("cccccc");
  std::string partial;
  auto fd = (*cache)->CreatePartial(c, 6, &partial);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ((*cache)->partial_bytes(), 6);
  EXPECT_EQ((*cache)->bytes(), 4);
  EXPECT_FALSE(PathExists(EntryPath(a)));
  EXPECT_TRUE(PathExists(EntryPath(b)));
  // Committed, it moves from the partial count to the entries'.
  ASSERT_TRUE(WriteAll(fd->get(), "cccccc", 6, partial).ok());
  ASSERT_TRUE((*cache)->Commit(partial, fd->get(), c, 6).ok());
  (*cache)->Unpin(c);
  EXPECT_EQ((*cache)->partial_bytes(), 0);
  EXPECT_EQ((*cache)->bytes(), 10);
  // A download that is dropped gives its room back.
  std::string d = DigestOf("dd");
  auto fd2 = (*cache)->CreatePartial(d, 2, &partial);
  ASSERT_TRUE(fd2.ok());
  EXPECT_EQ((*cache)->partial_bytes(), 2);
  (*cache)->DropPartial(2);
  (*cache)->Unpin(d);
  EXPECT_EQ((*cache)->partial_bytes(), 0);
}

TEST_F(BlobCacheTest, StrangersInTheBlobStoreAreRemovedOnOpen) {
  ASSERT_TRUE(MakeDirs(dir_ + "/blobs/sha256", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/blobs/sha256/not-a-digest", "x", 0600).ok());
  auto cache = BlobCache::Open(dir_, 1 << 20);
  ASSERT_TRUE(cache.ok());
  EXPECT_FALSE(PathExists(dir_ + "/blobs/sha256/not-a-digest"));
  EXPECT_EQ((*cache)->bytes(), 0);
}

TEST_F(BlobCacheTest, EvictsLeastRecentlyUsedToTheLimit) {
  auto cache = BlobCache::Open(dir_, 10);
  ASSERT_TRUE(cache.ok());
  std::string a = Put(**cache, "aaaa");
  std::string b = Put(**cache, "bbbb");
  {
    auto fd = (*cache)->OpenEntry(a);  // a is now more recent than b
    ASSERT_TRUE(fd.ok());
    (*cache)->Unpin(a);
  }
  std::string c = Put(**cache, "cccc");
  EXPECT_LE((*cache)->bytes(), 10);
  EXPECT_TRUE(PathExists(EntryPath(a)));
  EXPECT_FALSE(PathExists(EntryPath(b)));
  EXPECT_TRUE(PathExists(EntryPath(c)));
}

TEST_F(BlobCacheTest, NeverEvictsAnOpenEntry) {
  auto cache = BlobCache::Open(dir_, 6);
  ASSERT_TRUE(cache.ok());
  std::string a = Put(**cache, "aaaa");
  auto fd = (*cache)->OpenEntry(a);  // pinned while open
  ASSERT_TRUE(fd.ok());
  std::string b = Put(**cache, "bbbb");
  EXPECT_TRUE(PathExists(EntryPath(a)));
  EXPECT_FALSE(PathExists(EntryPath(b)));
  EXPECT_LE((*cache)->bytes(), 6);
  (*cache)->Unpin(a);
  EXPECT_TRUE(PathExists(EntryPath(a)));  // within the limit: kept
}

TEST_F(BlobCacheTest, EntriesAreNotWorldReadable) {
  auto cache = BlobCache::Open(dir_, 1 << 20);
  ASSERT_TRUE(cache.ok());
  std::string a = Put(**cache, "secret layer");
  struct stat st {};
  ASSERT_EQ(stat(EntryPath(a).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/blobs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

}  // namespace
}  // namespace regfs
