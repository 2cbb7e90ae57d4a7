// The FUSE-free filesystem core, driven directly: the parts of the tree that need no registry,
// and the rules that must hold without a network request.
#include "fs/filesystem.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "fs/staging_image.h"
#include "tests/unit/testing/fake_registry.h"
#include "tests/unit/testing/fs_paths.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/alltransports/transports.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

class FilesystemTest : public ::testing::Test {
 protected:
  Filesystem& Make(bool read_only = false) {
    MountOptions o;
    o.cache_dir = dir_ + "/cache";
    o.log_file = dir_ + "/log";
    o.read_only = read_only;
    o.timeout = 2;
    RegistryOptions registry;
    registry.counters = std::make_shared<RegistryCounters>();
    auto fs = Filesystem::Create(o, NewRegistryFactory(registry, {}, {}, false), registry.counters);
    EXPECT_TRUE(fs.ok());
    fs_ = std::move(fs).value();
    return *fs_;
  }

  nlohmann::json Stats() {
    auto control = fs_->Lookup(kRootIno, ".regfs");
    EXPECT_TRUE(control.ok());
    auto stats = fs_->Lookup(control->ino, "stats");
    EXPECT_TRUE(stats.ok());
    auto opened = fs_->Open(stats->ino, O_RDONLY);
    EXPECT_TRUE(opened.ok());
    char buf[4096];
    auto n = fs_->Read(opened->handle, buf, sizeof buf, 0);
    EXPECT_TRUE(n.ok());
    fs_->Release(opened->handle);
    return nlohmann::json::parse(std::string(buf, *n));
  }

  testing::TempDir tmp_{"regfs-fs-test"};
  const std::string dir_ = tmp_.path();
  std::unique_ptr<Filesystem> fs_;  // declared after tmp_: closed before it is removed
};

TEST_F(FilesystemTest, RegistriesAreDirectoriesWithoutARequest) {
  Filesystem& fs = Make();
  auto reg = fs.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(reg.ok());
  EXPECT_TRUE(S_ISDIR(reg->mode));
  EXPECT_EQ(reg->mode & 0777, 0755u);
  auto again = fs.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ino, reg->ino);
  auto listed = fs.ReadDir(kRootIno);
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> names;
  for (const auto& e : *listed) names.push_back(e.name);
  EXPECT_NE(std::find(names.begin(), names.end(), ".regfs"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "127.0.0.1:1"), names.end());
  EXPECT_EQ(Stats()["requests"], 0);
}

TEST_F(FilesystemTest, NamesThatCannotExistCostNoRequest) {
  Filesystem& fs = Make();
  for (const char* name : {"not a host", "-bad", "a..b", ""}) {
    auto r = fs.Lookup(kRootIno, name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.error().errnum, ENOENT);
  }
  auto reg = fs.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(reg.ok());
  for (const char* name : {"UPPER", "a b", ".hidden", "x:", "x@sha256:00", "sha256:zz"}) {
    auto r = fs.Lookup(reg->ino, name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.error().errnum, ENOENT) << name;
  }
  EXPECT_EQ(Stats()["requests"], 0);
}

TEST_F(FilesystemTest, PastedReferencesAreSymlinks) {
  Filesystem& fs = Make();
  auto reg = fs.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(reg.ok());
  auto by_tag = fs.Lookup(reg->ino, "repo:v1.0");
  ASSERT_TRUE(by_tag.ok());
  EXPECT_TRUE(S_ISLNK(by_tag->mode));
  EXPECT_EQ(*fs.ReadLink(by_tag->ino), "repo/v1.0");
  std::string digest = "sha256:" + std::string(64, 'a');
  auto by_digest = fs.Lookup(reg->ino, "repo@" + digest);
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ(*fs.ReadLink(by_digest->ino), "repo/" + digest);
  EXPECT_EQ(Stats()["requests"], 0);
}

TEST_F(FilesystemTest, AnUnreachableRegistryIsAnErrorInBoundedTime) {
  Filesystem& fs = Make();
  auto reg = fs.Lookup(kRootIno, "127.0.0.1:1");  // nothing listens on port 1
  ASSERT_TRUE(reg.ok());
  auto r = fs.Lookup(reg->ino, "repo");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().errnum, ENOENT);
  // The error names the registry; the FUSE adapter logs it.
  EXPECT_NE(r.error().message.find("127.0.0.1:1"), std::string::npos) << r.error().message;
}

TEST_F(FilesystemTest, MkdirChecksNamesAndReadOnly) {
  Filesystem& fs = Make();
  auto reg = fs.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(fs.Mkdir(reg->ino, "Bad Name").error().errnum, EINVAL);
  EXPECT_EQ(fs.Mkdir(kRootIno, "anything").error().errnum, EPERM);
  auto created = fs.Create(reg->ino, "manifest.json");
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().errnum, EINVAL);  // files go into <repo>/<tag>/
  fs_.reset();

  Filesystem& ro = Make(/*read_only=*/true);
  auto ro_reg = ro.Lookup(kRootIno, "127.0.0.1:1");
  ASSERT_TRUE(ro_reg.ok());
  EXPECT_EQ(ro_reg->mode & 0777, 0555u);
  EXPECT_EQ(ro.Mkdir(ro_reg->ino, "repo").error().errnum, EROFS);
  EXPECT_EQ(ro.Unlink(ro_reg->ino, "repo").error().errnum, EROFS);
  EXPECT_EQ(ro.Rmdir(ro_reg->ino, "repo").error().errnum, EROFS);
  EXPECT_EQ(ro.Rename(ro_reg->ino, "a", ro_reg->ino, "b").error().errnum, EROFS);
}

TEST_F(FilesystemTest, StatsAndPidAreReadable) {
  Make();
  nlohmann::json stats = Stats();
  for (const char* key : {"requests", "blob_bytes", "cache_hits", "cache_bytes"}) {
    EXPECT_TRUE(stats.contains(key)) << key;
  }
  auto control = fs_->Lookup(kRootIno, ".regfs");
  ASSERT_TRUE(control.ok());
  auto pid = fs_->Lookup(control->ino, "pid");
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(pid->size, static_cast<int64_t>(std::to_string(getpid()).size() + 1));
  EXPECT_EQ(fs_->Open(pid->ino, O_WRONLY).error().errnum, EACCES);
}

// DESIGN §1 "Errors": a listing that never ends holds up no lookup. The catalog is listed in
// the background; a lookup that has no catalog within a short bound decides by the tag list,
// as in a registry without _catalog, and readdir of the registry waits no longer than the
// timeout.
TEST_F(FilesystemTest, ACatalogThatNeverEndsDoesNotDelayALookupOfRegistryRepoTag) {
  const std::string host = "endless.example:5000";
  auto fake = std::make_shared<testing::FakeRegistry>(host);
  std::string layer = "a layer behind an endless catalog";
  fake->AddImage("app", "v1", {layer});
  fake->AddImage("team/tool", "v2", {"another layer"});
  fake->MakeCatalogEndless();
  MountOptions o;
  o.cache_dir = dir_ + "/cache";
  o.log_file = dir_ + "/log";
  o.timeout = 2;
  auto made = Filesystem::Create(o, testing::FactoryOf({{host, fake}}));
  ASSERT_TRUE(made.ok()) << made.error().message;
  fs_ = std::move(made).value();

  auto t0 = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  auto blob = testing::WalkPath(*fs_, host, "app/v1/" + std::string(DigestHex(DigestOf(layer))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto bytes = testing::ReadWhole(*fs_, blob->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, layer);
  // The one wait is the short bound for the listing that the first lookup started.
  EXPECT_LT(seconds_since(t0), 1.9);
  auto t1 = std::chrono::steady_clock::now();
  auto deeper = testing::WalkPath(*fs_, host, "team/tool/v2/manifest.json");
  ASSERT_TRUE(deeper.ok()) << deeper.error().message;
  EXPECT_LT(seconds_since(t1), 0.5);     // the listing in flight is not waited for again
  EXPECT_EQ(fake->Calls("Catalog"), 1);  // one listing, shared

  // A repository lists its tags without the catalog.
  auto app = testing::WalkPath(*fs_, host, "app");
  ASSERT_TRUE(app.ok()) << app.error().message;
  auto t4 = std::chrono::steady_clock::now();
  auto tags = fs_->ReadDir(app->ino);
  ASSERT_TRUE(tags.ok()) << tags.error().message;
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ((*tags)[0].name, "v1");
  EXPECT_LT(seconds_since(t4), 0.5);

  // Listing the registry waits for the catalog for the timeout, then says to try again.
  auto reg = fs_->Lookup(kRootIno, host);
  ASSERT_TRUE(reg.ok());
  auto t2 = std::chrono::steady_clock::now();
  auto listed = fs_->ReadDir(reg->ino);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().errnum, EAGAIN);
  EXPECT_NE(listed.error().message.find("still being listed"), std::string::npos);
  EXPECT_LT(seconds_since(t2), o.timeout + 1.0);

  // The listing still runs; the mount's end stops it at its next page.
  auto t3 = std::chrono::steady_clock::now();
  fs_.reset();
  EXPECT_LT(seconds_since(t3), 1.0);
}

TEST(StagingImageNamesTest, OnlyDirLayoutNames) {
  std::string hex(64, 'b');
  for (const std::string& ok :
       {std::string("manifest.json"), std::string("version"), hex, hex + ".manifest.json",
        std::string("signature-1"), std::string("signature-12")}) {
    EXPECT_TRUE(StagingImage::CheckName(ok).ok()) << ok;
  }
  for (const std::string& bad :
       {std::string("Manifest.json"), std::string("notes.txt"), hex.substr(1), hex + "x",
        std::string(64, 'B'), hex + ".json", std::string("signature-0"), std::string("signature-"),
        std::string("signature-1a"), std::string(".version")}) {
    Status s = StagingImage::CheckName(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().errnum, EINVAL);
    EXPECT_NE(s.error().message.find("dir: layout"), std::string::npos);
  }
}

}  // namespace
}  // namespace regfs
