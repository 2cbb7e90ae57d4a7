#include "transports/util/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tests/unit/testing/temp_dir.h"

namespace regfs {
namespace {

using testing::TempDir;
using Strings = std::vector<std::string>;

int ModeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

void Touch(const std::string& path) { ASSERT_TRUE(WriteFileAtomic(path, "x", 0600).ok()); }

// The umask for one test (it applies to what MakeDirs creates, as to any mkdir).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(umask(mask)) {}
  ~ScopedUmask() { umask(old_); }

 private:
  mode_t old_;
};

TEST(MakeDirsTest, MakesEveryMissingLevelWithTheModeLessTheUmask) {
  TempDir tmp;
  ScopedUmask mask(022);
  ASSERT_TRUE(MakeDirs(tmp.Sub("a/b/c"), 0777).ok());
  EXPECT_EQ(ModeOf(tmp.Sub("a")), 0755);
  EXPECT_EQ(ModeOf(tmp.Sub("a/b/c")), 0755);
  ASSERT_TRUE(MakeDirs(tmp.Sub("p/q"), 0700).ok());
  EXPECT_EQ(ModeOf(tmp.Sub("p")), 0700);
  EXPECT_EQ(ModeOf(tmp.Sub("p/q")), 0700);
}

TEST(MakeDirsTest, AnExistingDirectoryIsFineAndKeepsItsMode) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("d"), 0700).ok());
  ASSERT_EQ(chmod(tmp.Sub("d").c_str(), 0751), 0);
  EXPECT_TRUE(MakeDirs(tmp.Sub("d"), 0700).ok());
  EXPECT_TRUE(MakeDirs(tmp.Sub("d/"), 0700).ok());
  EXPECT_TRUE(MakeDirs(tmp.path(), 0700).ok());
  EXPECT_TRUE(MakeDirs("/", 0700).ok());
  EXPECT_TRUE(MakeDirs("", 0700).ok());
  EXPECT_EQ(ModeOf(tmp.Sub("d")), 0751);
}

TEST(MakeDirsTest, TrailingSlashesAndDotsAreNames) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("x//y/./z/"), 0700).ok());
  EXPECT_TRUE(IsDirectory(tmp.Sub("x/y/z")));
}

TEST(MakeDirsTest, AFileInTheWayIsENOTDIRNamingIt) {
  TempDir tmp;
  Touch(tmp.Sub("f"));
  Status s = MakeDirs(tmp.Sub("f"), 0700);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, ENOTDIR);
  EXPECT_NE(s.error().message.find(tmp.Sub("f")), std::string::npos) << s.error().message;
  s = MakeDirs(tmp.Sub("f/below"), 0700);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, ENOTDIR);
  EXPECT_NE(s.error().message.find(tmp.Sub("f")), std::string::npos) << s.error().message;
}

TEST(MakeDirsTest, ASymlinkToADirectoryIsADirectory) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("real"), 0700).ok());
  ASSERT_EQ(symlink("real", tmp.Sub("link").c_str()), 0);
  EXPECT_TRUE(MakeDirs(tmp.Sub("link"), 0700).ok());
  EXPECT_TRUE(MakeDirs(tmp.Sub("link/inside"), 0700).ok());
  EXPECT_TRUE(IsDirectory(tmp.Sub("real/inside")));
}

TEST(RemoveAllTest, RemovesATreeAFileAndNothing) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("t/a/b"), 0700).ok());
  Touch(tmp.Sub("t/a/b/f"));
  Touch(tmp.Sub("t/.hidden"));
  EXPECT_TRUE(RemoveAll(tmp.Sub("t/a/b/f")).ok());
  EXPECT_FALSE(PathExists(tmp.Sub("t/a/b/f")));
  EXPECT_TRUE(IsDirectory(tmp.Sub("t/a/b")));
  Touch(tmp.Sub("t/a/b/f"));
  EXPECT_TRUE(RemoveAll(tmp.Sub("t")).ok());
  EXPECT_FALSE(PathExists(tmp.Sub("t")));
  EXPECT_TRUE(RemoveAll(tmp.Sub("t")).ok()) << "a missing path is fine";
  EXPECT_TRUE(IsDirectory(tmp.path()));
}

TEST(RemoveAllTest, SymlinksAreRemovedNotFollowed) {
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("outside/keep"), 0700).ok());
  Touch(tmp.Sub("outside/keep/f"));
  ASSERT_TRUE(MakeDirs(tmp.Sub("tree"), 0700).ok());
  ASSERT_EQ(symlink(tmp.Sub("outside").c_str(), tmp.Sub("tree/to-dir").c_str()), 0);
  ASSERT_EQ(symlink(tmp.Sub("outside/keep/f").c_str(), tmp.Sub("tree/to-file").c_str()), 0);
  ASSERT_EQ(symlink("nowhere", tmp.Sub("tree/dangling").c_str()), 0);
  ASSERT_EQ(symlink(tmp.Sub("outside").c_str(), tmp.Sub("top-link").c_str()), 0);

  EXPECT_TRUE(RemoveAll(tmp.Sub("tree")).ok());
  EXPECT_FALSE(PathExists(tmp.Sub("tree")));
  EXPECT_TRUE(RemoveAll(tmp.Sub("top-link")).ok());
  EXPECT_FALSE(PathExists(tmp.Sub("top-link")));
  EXPECT_TRUE(PathExists(tmp.Sub("outside/keep/f"))) << "a symlink's target was removed";
}

TEST(RemoveAllTest, AFailureIsAnErrorNamingThePath) {
  TempDir tmp;
  std::string overlong = tmp.Sub(std::string(300, 'n'));  // over NAME_MAX, even for root
  Status s = RemoveAll(overlong);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().errnum, ENAMETOOLONG);
  EXPECT_NE(s.error().message.find(overlong), std::string::npos) << s.error().message;
}

TEST(ListDirTest, SortedNamesWithoutDotAndDotDot) {
  TempDir tmp;
  for (const char* name : {"b", ".hidden", "a", "c.conf"}) Touch(tmp.Sub(name));
  ASSERT_TRUE(MakeDirs(tmp.Sub("sub"), 0700).ok());
  ASSERT_EQ(symlink("nowhere", tmp.Sub("link").c_str()), 0);
  auto names = ListDir(tmp.path());
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(*names, (Strings{".hidden", "a", "b", "c.conf", "link", "sub"}));
  ASSERT_TRUE(ListDir(tmp.Sub("sub")).ok());
  EXPECT_TRUE(ListDir(tmp.Sub("sub"))->empty());
}

TEST(ListDirTest, AMissingDirectoryOrAFileIsAnErrorNamingIt) {
  TempDir tmp;
  auto missing = ListDir(tmp.Sub("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, ENOENT);
  EXPECT_NE(missing.error().message.find(tmp.Sub("missing")), std::string::npos);
  Touch(tmp.Sub("f"));
  auto file = ListDir(tmp.Sub("f"));
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().errnum, ENOTDIR);
}

}  // namespace
}  // namespace regfs
