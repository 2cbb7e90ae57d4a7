// The sync engine on dir: images (no network): destination naming, skip and replace, dry runs,
// shards, durations; and the index reduction the platforms filter writes.
#include "transports/sync/sync.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "tests/unit/testing/temp_dir.h"
#include "transports/copy/copy.h"
#include "transports/dir/dir_transport.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using testing::TempDir;

// A dir: image of one layer; returns its manifest digest.
std::string WriteImage(const std::string& dir, const std::string& layer) {
  EXPECT_TRUE(MakeDirs(dir, 0755).ok());
  const std::string config = R"({"architecture":"amd64","os":"linux"})";
  auto blob = [&](const std::string& bytes) {
    std::string d = DigestOf(bytes);
    EXPECT_TRUE(WriteFileAtomic(dir + "/" + std::string(DigestHex(d)), bytes, 0644).ok());
    return d;
  };
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      blob(config) + R"(","size":)" + std::to_string(config.size()) +
      R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
      blob(layer) + R"(","size":)" + std::to_string(layer.size()) + "}]}";
  EXPECT_TRUE(WriteFileAtomic(dir + "/manifest.json", manifest, 0644).ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "/version", kDirVersion, 0644).ok());
  return DigestOf(manifest);
}

SyncSource DirImage(const std::string& path, const std::string& suffix) {
  SyncSource s;
  s.ref.transport = Transport::kDir;
  s.ref.path = path;
  s.dir_suffix = suffix;
  return s;
}

class SyncDirTest : public ::testing::Test {
 protected:
  SyncOptions Options() {
    SyncOptions o;
    o.dest_transport = Transport::kDir;
    o.destination = tmp_.Sub("dest");
    return o;
  }
  SyncReport Run(const std::vector<SyncSource>& sources, const SyncOptions& o) {
    return Sync(sources, o, clients_);
  }

  TempDir tmp_{"regfs-sync-test"};
  RegistryClients clients_{nullptr};
};

TEST_F(SyncDirTest, NamesDestinationsAsSkopeoAndSkipsWhatIsThere) {
  std::string a = WriteImage(tmp_.Sub("src/ns/app:v1"), "layer a");
  std::string b = WriteImage(tmp_.Sub("src/tool:v2"), "layer b");
  std::vector<SyncSource> sources = {DirImage(tmp_.Sub("src/ns/app:v1"), "/ns/app:v1"),
                                     DirImage(tmp_.Sub("src/tool:v2"), "/tool:v2")};
  SyncOptions o = Options();
  SyncReport first = Run(sources, o);
  ASSERT_FALSE(first.failed);
  ASSERT_EQ(first.outcomes.size(), 2u);
  EXPECT_EQ(first.outcomes[0].action, "copy");
  EXPECT_EQ(first.outcomes[0].digest, a);
  EXPECT_EQ(first.outcomes[0].destination, "dir:" + tmp_.Sub("dest/app:v1"));
  EXPECT_EQ(first.outcomes[1].destination, "dir:" + tmp_.Sub("dest/tool:v2"));
  EXPECT_EQ(DigestOf(*ReadFileBounded(tmp_.Sub("dest/tool:v2/manifest.json"), 1 << 20)), b);

  struct stat before {};
  ASSERT_EQ(stat(tmp_.Sub("dest/app:v1/manifest.json").c_str(), &before), 0);
  SyncReport again = Run(sources, o);
  ASSERT_FALSE(again.failed);
  for (const SyncOutcome& out : again.outcomes) EXPECT_EQ(out.action, "skip") << out.source;
  struct stat after {};
  ASSERT_EQ(stat(tmp_.Sub("dest/app:v1/manifest.json").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten

  o.scoped = true;
  o.append_suffix = "-m";
  SyncReport scoped = Run(sources, o);
  ASSERT_FALSE(scoped.failed);
  EXPECT_EQ(scoped.outcomes[0].destination, "dir:" + tmp_.Sub("dest/ns/app:v1-m"));
  EXPECT_TRUE(PathExists(tmp_.Sub("dest/ns/app:v1-m/manifest.json")));
}

TEST_F(SyncDirTest, AChangedImageIsReplacedWholeAndNothingIsLeftBeside) {
  WriteImage(tmp_.Sub("src/app:v1"), "old");
  std::vector<SyncSource> sources = {DirImage(tmp_.Sub("src/app:v1"), "/app:v1")};
  SyncOptions o = Options();
  ASSERT_FALSE(Run(sources, o).failed);
  ASSERT_TRUE(RemoveAll(tmp_.Sub("src/app:v1")).ok());
  std::string changed = WriteImage(tmp_.Sub("src/app:v1"), "new");
  SyncReport r = Run(sources, o);
  ASSERT_FALSE(r.failed);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].action, "update");
  EXPECT_EQ(DigestOf(*ReadFileBounded(tmp_.Sub("dest/app:v1/manifest.json"), 1 << 20)), changed);
  EXPECT_FALSE(PathExists(tmp_.Sub("dest/app:v1/" + std::string(DigestHex(DigestOf("old"))))));
  EXPECT_EQ(*ListDir(tmp_.Sub("dest")), std::vector<std::string>{"app:v1"});
}

TEST_F(SyncDirTest, DryRunPlansAndChangesNothing) {
  WriteImage(tmp_.Sub("src/app:v1"), "x");
  SyncOptions o = Options();
  o.dry_run = true;
  SyncReport r = Run({DirImage(tmp_.Sub("src/app:v1"), "/app:v1")}, o);
  ASSERT_FALSE(r.failed);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].action, "copy");
  EXPECT_FALSE(PathExists(tmp_.Sub("dest")));
}

TEST_F(SyncDirTest, TwoSourcesForOneDestinationIsAFailureNotALastWriterWins) {
  WriteImage(tmp_.Sub("src/a/app:v1"), "a");
  WriteImage(tmp_.Sub("src/b/app:v1"), "b");
  SyncOptions o = Options();
  o.keep_going = true;
  SyncReport r = Run({DirImage(tmp_.Sub("src/a/app:v1"), "/a/app:v1"),
                      DirImage(tmp_.Sub("src/b/app:v1"), "/b/app:v1")},
                     o);
  EXPECT_TRUE(r.failed);
  int failed = 0;
  for (const SyncOutcome& out : r.outcomes) {
    if (out.action == "failed") {
      ++failed;
      EXPECT_NE(out.error.find("--scoped"), std::string::npos) << out.error;
    }
  }
  EXPECT_EQ(failed, 1);
}

TEST_F(SyncDirTest, AMissingSourceFailsAndWithoutKeepGoingStopsTheRest) {
  std::vector<SyncSource> sources;
  sources.push_back(DirImage(tmp_.Sub("src/gone:v1"), "/gone:v1"));
  for (int i = 0; i < 20; ++i) {
    std::string p = tmp_.Sub("src/img" + std::to_string(i) + ":v1");
    WriteImage(p, "layer " + std::to_string(i));
    sources.push_back(DirImage(p, "/img" + std::to_string(i) + ":v1"));
  }
  SyncOptions o = Options();
  o.jobs = 1;  // the failing image is first in order
  SyncReport r = Run(sources, o);
  EXPECT_TRUE(r.failed);
  int copied = 0;
  for (const SyncOutcome& out : r.outcomes) copied += out.action == "copy";
  EXPECT_EQ(copied, 0);
  o.keep_going = true;
  r = Run(sources, o);
  EXPECT_TRUE(r.failed);
  copied = 0;
  for (const SyncOutcome& out : r.outcomes) copied += out.action == "copy";
  EXPECT_EQ(copied, 20);
}

TEST(DirDestinationTest, LeftoversOfADeadCopyAreRemovedAndALiveOnesKept) {
  TempDir tmp("regfs-dir-stale");
  std::string path = tmp.Sub("img");
  // A pid that can't be running: above the kernel's pid_max (at most 4194304).
  std::string dead = path + ".regfs-tmp-99999999-abcdef";
  std::string dead_old = path + ".regfs-old-99999999-abcdef";
  std::string live = path + ".regfs-tmp-" + std::to_string(getpid()) + "-abcdef";
  std::string other = tmp.Sub("imgx.regfs-tmp-99999999-abcdef");
  for (const std::string& d : {dead, dead_old, live, other}) ASSERT_TRUE(MakeDirs(d, 0755).ok());
  auto dst = NewDirDestination(path);
  ASSERT_TRUE(dst.ok()) << dst.error().message;
  EXPECT_FALSE(PathExists(dead));
  EXPECT_FALSE(PathExists(dead_old));
  EXPECT_TRUE(PathExists(live));
  EXPECT_TRUE(PathExists(other));  // another image's
  RemoveStaleStaging(tmp.path());  // every image's, as a sync sweeps its directories
  EXPECT_FALSE(PathExists(other));
  EXPECT_TRUE(PathExists(live));
}

TEST(ShardTest, ParsesKOfN) {
  EXPECT_EQ(*ParseShard("1/1"), std::make_pair(1, 1));
  EXPECT_EQ(*ParseShard("3/4"), std::make_pair(3, 4));
  for (const char* bad : {"0/3", "4/3", "x", "1/", "/2", "1/0", "-1/2", "1/2/3", ""}) {
    EXPECT_FALSE(ParseShard(bad).ok()) << bad;
  }
}

TEST(ShardTest, EveryNameFallsInExactlyOneStableShard) {
  // Stable across machines and runs: FNV-1a of the name.
  EXPECT_EQ(ShardOf("docker.io/library/busybox", 1), 1);
  EXPECT_EQ(ShardOf("docker.io/library/busybox", 7), ShardOf("docker.io/library/busybox", 7));
  std::set<int> seen;
  for (int i = 0; i < 300; ++i) {
    int s = ShardOf("registry.example/ns/repo" + std::to_string(i), 3);
    ASSERT_GE(s, 1);
    ASSERT_LE(s, 3);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(DurationTest, ParsesGoDurations) {
  EXPECT_EQ(ParseDuration("0")->count(), 0);
  EXPECT_EQ(ParseDuration("500ms")->count(), 500);
  EXPECT_EQ(ParseDuration("2s")->count(), 2000);
  EXPECT_EQ(ParseDuration("1.5s")->count(), 1500);
  EXPECT_EQ(ParseDuration("1m30s")->count(), 90000);
  for (const char* bad : {"", "s", "10", "10x", "1d", "-1s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

constexpr char kIndex[] =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
    R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)"
    R"(1111111111111111111111111111111111111111111111111111111111111111","size":10,)"
    R"("platform":{"architecture":"amd64","os":"linux"}},)"
    R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)"
    R"(2222222222222222222222222222222222222222222222222222222222222222","size":10,)"
    R"("platform":{"architecture":"arm64","os":"linux","variant":"v8"}}],)"
    R"("annotations":{"z":"last"}})";

RawManifest Index() {
  return RawManifest{kIndex, "application/vnd.oci.image.index.v1+json", DigestOf(kIndex)};
}

TEST(ReduceIndexTest, KeepsTheChosenInstancesAndEveryOtherFieldInOrder) {
  RawManifest raw = Index();
  Manifest index = *ParseManifest(raw.bytes, raw.media_type);
  auto reduced = ReduceIndex(raw, index, {*ParsePlatform("linux/arm64")});
  ASSERT_TRUE(reduced.ok()) << reduced.error().message;
  EXPECT_NE(reduced->digest, raw.digest);
  EXPECT_EQ(reduced->digest, DigestOf(reduced->bytes));
  Manifest m = *ParseManifest(reduced->bytes, reduced->media_type);
  ASSERT_EQ(m.manifests.size(), 1u);
  EXPECT_EQ(m.manifests[0].platform->architecture, "arm64");
  EXPECT_LT(reduced->bytes.find("schemaVersion"), reduced->bytes.find("annotations"));
  // Deterministic: the same input gives the same bytes.
  EXPECT_EQ(ReduceIndex(raw, index, {*ParsePlatform("linux/arm64")})->bytes, reduced->bytes);

  auto all =
      ReduceIndex(raw, index, {*ParsePlatform("linux/amd64"), *ParsePlatform("linux/arm64/v8")});
  EXPECT_EQ(all->bytes, raw.bytes);  // nothing dropped: the index itself
  auto missing = ReduceIndex(raw, index, {*ParsePlatform("linux/s390x")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, ENOENT);
}

TEST(TargetDigestTest, IsWhatACopyWouldWrite) {
  RawManifest raw = Index();
  CopyOptions o;
  o.platform = *ParsePlatform("linux/amd64");
  EXPECT_EQ(*TargetDigest(raw, o), "sha256:" + std::string(64, '1'));
  o.all = true;
  EXPECT_EQ(*TargetDigest(raw, o), raw.digest);
  o.platforms = {*ParsePlatform("linux/arm64")};
  Manifest index = *ParseManifest(raw.bytes, raw.media_type);
  EXPECT_EQ(*TargetDigest(raw, o), ReduceIndex(raw, index, o.platforms)->digest);
}

TEST(ParsePlatformTest, OsArchVariant) {
  Platform p = *ParsePlatform("linux/arm/v7");
  EXPECT_EQ(p.os, "linux");
  EXPECT_EQ(p.architecture, "arm");
  EXPECT_EQ(p.variant, "v7");
  EXPECT_EQ(PlatformString(p), "linux/arm/v7");
  for (const char* bad : {"linux", "linux/", "/amd64", "a/b/c/d", "linux/AMD64"}) {
    EXPECT_FALSE(ParsePlatform(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace regfs
