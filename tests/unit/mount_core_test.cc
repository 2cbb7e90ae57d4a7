// The mount core over registries that are not HTTP: a FakeRegistry, and FailingRegistry
// wrapped around it to make reads fail on purpose.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <string>

#include "fs/filesystem.h"
#include "tests/unit/testing/fake_registry.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using testing::FactoryOf;
using testing::FailingRegistry;
using testing::FakeRegistry;
using testing::Fault;
using testing::RegistryCall;

constexpr char kHost[] = "fake.example:5000";

class MountCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/regfs-core-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fake_ = std::make_shared<FakeRegistry>(kHost);
    failing_ = std::make_shared<FailingRegistry>(fake_);
  }
  void TearDown() override {
    fs_.reset();
    (void)RemoveAll(dir_);
  }

  Filesystem& Make(MountOptions o = {}) {
    o.cache_dir = dir_ + "/cache";
    o.log_file = dir_ + "/log";
    auto fs = Filesystem::Create(o, FactoryOf({{kHost, failing_}}));
    EXPECT_TRUE(fs.ok()) << fs.error().message;
    fs_ = std::move(fs).value();
    return *fs_;
  }

  // The inode of `path` ("repo/tag/file"), looked up from the registry's directory.
  Result<NodeAttr> Walk(const std::string& path) {
    ASSIGN_OR_RETURN(NodeAttr at, fs_->Lookup(kRootIno, kHost));
    size_t start = 0;
    while (start < path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      ASSIGN_OR_RETURN(at, fs_->Lookup(at.ino, path.substr(start, end - start)));
      start = end + 1;
    }
    return at;
  }

  Result<std::string> ReadAll(uint64_t ino) {
    ASSIGN_OR_RETURN(OpenedFile f, fs_->Open(ino, O_RDONLY));
    std::string out;
    char buf[4096];
    while (true) {
      auto n = fs_->Read(f.handle, buf, sizeof buf, static_cast<int64_t>(out.size()));
      if (!n.ok()) {
        fs_->Release(f.handle);
        return n.error();
      }
      if (*n == 0) break;
      out.append(buf, *n);
    }
    fs_->Release(f.handle);
    return out;
  }

  // Lists `path` and every directory below it, as `ls -R` does, looking up each entry.
  void ListTree(const std::string& path) {
    auto dir = Walk(path);
    ASSERT_TRUE(dir.ok()) << path << ": " << dir.error().message;
    auto entries = fs_->ReadDir(dir->ino);
    ASSERT_TRUE(entries.ok()) << path << ": " << entries.error().message;
    for (const DirEntry& e : *entries) {
      std::string child = path + "/" + e.name;
      auto attr = fs_->Lookup(dir->ino, e.name);
      ASSERT_TRUE(attr.ok()) << child << ": " << attr.error().message;
      if (S_ISDIR(attr->mode)) ListTree(child);
    }
  }

  // The names of an image directory with their inode numbers and the bytes of each file.
  std::map<std::string, std::pair<uint64_t, std::string>> Snapshot(const std::string& path) {
    std::map<std::string, std::pair<uint64_t, std::string>> out;
    auto dir = Walk(path);
    EXPECT_TRUE(dir.ok()) << path << ": " << dir.error().message;
    if (!dir.ok()) return out;
    auto entries = fs_->ReadDir(dir->ino);
    EXPECT_TRUE(entries.ok()) << path << ": " << entries.error().message;
    if (!entries.ok()) return out;
    for (const DirEntry& e : *entries) {
      auto attr = fs_->Lookup(dir->ino, e.name);
      EXPECT_TRUE(attr.ok()) << e.name << ": " << attr.error().message;
      if (!attr.ok()) continue;
      auto bytes = ReadAll(attr->ino);
      EXPECT_TRUE(bytes.ok()) << e.name << ": " << bytes.error().message;
      out[e.name] = {attr->ino, bytes.ok() ? *bytes : ""};
    }
    return out;
  }

  std::string dir_;
  std::shared_ptr<FakeRegistry> fake_;
  std::shared_ptr<FailingRegistry> failing_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(MountCoreTest, ReadsABlobFromTheRegistryInterface) {
  fake_->AddImage("app", "v1", {"layer one bytes"});
  Make();
  auto blob = Walk("app/v1/" + std::string(DigestHex(DigestOf("layer one bytes"))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  EXPECT_EQ(blob->size, 15);
  auto bytes = ReadAll(blob->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, "layer one bytes");
  EXPECT_GE(fake_->Calls("GetBlobRange"), 1);
}

TEST_F(MountCoreTest, ABlobThatDoesNotVerifyIsEIO) {
  fake_->AddImage("app", "v1", {std::string(100000, 'x')});
  Make();
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::CorruptAt(5) : Fault::None();
  });
  auto blob = Walk("app/v1/" + std::string(DigestHex(DigestOf(std::string(100000, 'x')))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto bytes = ReadAll(blob->ino);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().errnum, EIO);
  EXPECT_GE(failing_->Faults(), 1);
}

TEST_F(MountCoreTest, AFailedManifestIsAnErrorNotAnEmptyDirectory) {
  fake_->AddImage("app", "v1", {"l"});
  Make();
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetManifest" ? Fault::Fail(EIO) : Fault::None();
  });
  auto dir = Walk("app/v1");
  ASSERT_TRUE(dir.ok()) << dir.error().message;  // a tag from the list: a directory
  auto listed = fs_->ReadDir(dir->ino);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().errnum, EIO);
}

MountOptions SmallCaps() {
  MountOptions o;
  o.caps.views = 4;
  o.caps.tag_digests = 6;
  o.caps.tag_lists = 2;
  o.caps.catalogs = 1;
  return o;
}

TEST_F(MountCoreTest, WalkingMoreImagesThanTheCapsKeepsTheCachesAtTheirCaps) {
  for (int r = 0; r < 3; ++r) {
    for (int t = 0; t < 10; ++t) {
      std::string n = std::to_string(r) + "-" + std::to_string(t);
      fake_->AddImage("repo" + std::to_string(r), "v" + std::to_string(t), {"layer " + n});
    }
  }
  Filesystem& fs = Make(SmallCaps());
  for (int r = 0; r < 3; ++r) ListTree("repo" + std::to_string(r));
  Filesystem::CachedEntries c = fs.Cached();
  EXPECT_EQ(c.views, 4u);
  EXPECT_EQ(c.tag_digests, 6u);
  EXPECT_EQ(c.tag_lists, 2u);
  // The blobs of the views held, and no others: one layer each and the config they share.
  EXPECT_EQ(c.locations, 5u);
  EXPECT_EQ(c.blob_images, 5u);
}

TEST_F(MountCoreTest, ExpiredTagsAndListsAreDroppedNotKept) {
  for (int t = 0; t < 10; ++t) fake_->AddImage("app", "v" + std::to_string(t), {"l"});
  fake_->AddImage("other", "v1", {"l"});
  MountOptions o;
  o.tag_ttl = 0;
  o.list_ttl = 0;
  Filesystem& fs = Make(o);
  ListTree("app");
  ListTree("other");
  Filesystem::CachedEntries c = fs.Cached();
  // Each put drops the entries expired before it: only the last one put is left.
  EXPECT_EQ(c.tag_digests, 1u);
  EXPECT_EQ(c.tag_lists, 1u);
}

TEST_F(MountCoreTest, AnEvictedViewIsBuiltAgainWithTheSameInodesAndContents) {
  fake_->AddImage("app", "v1", {"first layer", "second layer"});
  fake_->AddImage("app", "v2", {"another layer"});
  MountOptions o;
  o.caps.views = 1;
  Filesystem& fs = Make(o);
  auto before = Snapshot("app/v1");
  ASSERT_EQ(before.size(), 5u);  // manifest.json, version, config, two layers
  int manifests = fake_->Calls("GetManifest");
  ASSERT_EQ(Snapshot("app/v2").size(), 4u);  // evicts v1's view
  ASSERT_EQ(fs.Cached().views, 1u);
  EXPECT_EQ(Snapshot("app/v1"), before);
  EXPECT_GT(fake_->Calls("GetManifest"), manifests + 1);  // v1's manifest fetched again
}

TEST_F(MountCoreTest, AnOpenBlobKeepsReadingAfterItsViewIsEvicted) {
  std::string layer(300000, 'a');
  for (size_t i = 0; i < layer.size(); ++i) layer[i] = static_cast<char>('a' + i % 26);
  fake_->AddImage("app", "v1", {layer});
  fake_->AddImage("app", "v2", {"another layer"});
  MountOptions o;
  o.caps.views = 1;
  Filesystem& fs = Make(o);
  auto blob = Walk("app/v1/" + std::string(DigestHex(DigestOf(layer))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto opened = fs.Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  std::string got(layer.size(), '\0');
  auto n = fs.Read(opened->handle, got.data(), 1000, 0);
  ASSERT_TRUE(n.ok()) << n.error().message;
  ASSERT_EQ(*n, 1000u);

  ListTree("app/v2");  // evicts v1's view, and with it where its layer is
  ASSERT_EQ(fs.Cached().views, 1u);
  ASSERT_EQ(fs.Cached().locations, 2u);  // v2's config and layer

  size_t done = 1000;
  while (done < layer.size()) {
    n = fs.Read(opened->handle, got.data() + done, 65536, static_cast<int64_t>(done));
    ASSERT_TRUE(n.ok()) << n.error().message;
    ASSERT_GT(*n, 0u) << "EOF at " << done;
    done += *n;
  }
  fs.Release(opened->handle);
  EXPECT_EQ(got, layer);
}

}  // namespace
}  // namespace regfs
