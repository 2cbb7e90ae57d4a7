// The mount core over registries that are not HTTP: a FakeRegistry, and FailingRegistry
// wrapped around it to make reads fail on purpose.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/filesystem.h"
#include "tests/unit/testing/fake_registry.h"
#include "tests/unit/testing/fs_paths.h"
#include "tests/unit/testing/temp_dir.h"
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
constexpr char kHost2[] = "mirror.example:5000";  // a second registry holding the same images

std::string Hex(const std::string& bytes) { return std::string(DigestHex(DigestOf(bytes))); }

// Holds the registry calls a rule sends into it until the test opens it.
class Gate {
 public:
  // Called by the rule: blocks until Open().
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;  // guarded by mu_
  bool open_ = false;     // guarded by mu_
};

std::vector<std::string> NamesOf(const std::vector<DirEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// An image to push into app:v1 (a copy of src:v1, of one layer), beside another image, with
// the mount made and app/v1 created there, its config already written.
struct PushSetup {
  std::string layer = "the layer's bytes";
  std::string layer_name = Hex(layer);
  std::string digest, manifest;
  NodeAttr reg, tag;
};

class MountCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<FakeRegistry>(kHost);
    failing_ = std::make_shared<FailingRegistry>(fake_);
    fake2_ = std::make_shared<FakeRegistry>(kHost2);
    failing2_ = std::make_shared<FailingRegistry>(fake2_);
  }

  Filesystem& Make(VerifyMode verify) {
    MountOptions o;
    o.verify = verify;
    return Make(o);
  }
  Filesystem& Make(MountOptions o = {}) {
    o.cache_dir = dir_ + "/cache";
    o.log_file = dir_ + "/log";
    auto fs = Filesystem::Create(o, FactoryOf({{kHost, failing_}, {kHost2, failing2_}}));
    EXPECT_TRUE(fs.ok()) << fs.error().message;
    fs_ = std::move(fs).value();
    return *fs_;
  }

  // The inode of `path` ("repo/tag/file"), looked up from the registry's directory.
  Result<NodeAttr> Walk(const std::string& path, const std::string& host = kHost) {
    return testing::WalkPath(*fs_, host, path);
  }

  Result<std::string> ReadAll(uint64_t ino) { return testing::ReadWhole(*fs_, ino); }

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

  // See PushSetup.
  void StartPush(PushSetup* p) {
    p->digest = fake_->AddImage("src", "v1", {p->layer});
    p->manifest = fake_->GetManifest("src", "v1")->bytes;
    fake_->AddImage("other", "v1", {"other layer"});
    Make();
    auto reg = fs_->Lookup(kRootIno, kHost);
    ASSERT_TRUE(reg.ok());
    auto repo = fs_->Mkdir(reg->ino, "app");
    ASSERT_TRUE(repo.ok());
    auto tag = fs_->Mkdir(repo->ino, "v1");
    ASSERT_TRUE(tag.ok());
    p->reg = *reg;
    p->tag = *tag;
    const std::string config = FakeRegistry::kDefaultConfig;
    ASSERT_TRUE(Put(tag->ino, Hex(config), config).ok());
  }

  Status Put(uint64_t dir, const std::string& name, const std::string& bytes) {
    return testing::WriteWhole(*fs_, dir, name, bytes);
  }

  // While a registry call is held in `gate`, runs `checks` on a thread of their own and opens
  // the gate only after they return. A check that waits for the held call would wait forever:
  // after a minute the test fails instead of hanging (a guard, not a measurement).
  void WhileHeld(Gate& gate, const std::function<void()>& checks) {
    gate.WaitEntered();
    auto done = std::async(std::launch::async, checks);
    bool answered = done.wait_for(std::chrono::minutes(1)) == std::future_status::ready;
    EXPECT_TRUE(answered) << "a stat or readdir waited for the held registry call";
    gate.Open();
    done.get();
  }

  // stat and ls of the staging directory `tag`, of its files, and of another image: answered
  // while a request of the push is held.
  void ExpectAnswered(const NodeAttr& reg, const NodeAttr& tag, const std::string& layer_name) {
    auto attr = fs_->GetAttr(tag.ino);
    ASSERT_TRUE(attr.ok()) << attr.error().message;
    EXPECT_TRUE(S_ISDIR(attr->mode));
    auto listed = fs_->ReadDir(tag.ino);
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    EXPECT_TRUE(Contains(NamesOf(*listed), layer_name));
    auto file = fs_->Lookup(tag.ino, layer_name);
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_TRUE(fs_->GetAttr(file->ino).ok());
    EXPECT_TRUE(fs_->Forget(file->ino, 1).ok());
    auto repos = fs_->ReadDir(reg.ino);
    ASSERT_TRUE(repos.ok()) << repos.error().message;
    EXPECT_TRUE(Contains(NamesOf(*repos), "other"));
    auto other = Walk("other/v1");
    ASSERT_TRUE(other.ok()) << other.error().message;
    auto other_listed = fs_->ReadDir(other->ino);
    ASSERT_TRUE(other_listed.ok()) << other_listed.error().message;
    EXPECT_TRUE(Contains(NamesOf(*other_listed), "manifest.json"));
  }

  testing::TempDir tmp_{"regfs-core-test"};
  const std::string dir_ = tmp_.path();
  std::shared_ptr<FakeRegistry> fake_;
  std::shared_ptr<FailingRegistry> failing_;
  std::shared_ptr<FakeRegistry> fake2_;
  std::shared_ptr<FailingRegistry> failing2_;
  std::unique_ptr<Filesystem> fs_;  // declared after tmp_: closed before it is removed
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

// DESIGN §1: a registry without _catalog lists nothing, but lookups still work — also of a
// namespace that is no repository itself (library/alpine).
TEST_F(MountCoreTest, WithoutACatalogANamespaceIsFoundByLookingDeeper) {
  std::string layer = "namespaced layer";
  fake_->AddImage("library/alpine", "3.20", {layer});
  for (int errnum : {ENOENT, EOPNOTSUPP}) {  // _catalog answered 404, or 405 / UNSUPPORTED
    SCOPED_TRACE(errnum);
    failing_->SetRule([errnum](const RegistryCall& call) {
      return call.op == "Catalog" ? Fault::Fail(errnum) : Fault::None();
    });
    Make();
    auto reg = fs_->Lookup(kRootIno, kHost);
    ASSERT_TRUE(reg.ok());
    auto listed = fs_->ReadDir(reg->ino);
    ASSERT_TRUE(listed.ok()) << listed.error().message;
    EXPECT_FALSE(Contains(NamesOf(*listed), "library"));  // nothing listed at that level
    auto blob = Walk("library/alpine/3.20/" + Hex(layer));
    ASSERT_TRUE(blob.ok()) << blob.error().message;
    auto bytes = ReadAll(blob->ino);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    EXPECT_EQ(*bytes, layer);
    fs_.reset();
  }
}

TEST_F(MountCoreTest, WithACatalogAComponentNoRepositoryHoldsIsENOENT) {
  fake_->AddImage("library/alpine", "3.20", {"l"});
  Make();
  EXPECT_TRUE(Walk("library/alpine/3.20").ok());
  for (const char* path : {"nothing", "library/nothing"}) {
    auto missing = Walk(path);
    ASSERT_FALSE(missing.ok()) << path;
    EXPECT_EQ(missing.error().errnum, ENOENT) << path;
  }
}

TEST_F(MountCoreTest, ARefusedCatalogIsAnErrorNotANamespace) {
  fake_->AddImage("app", "v1", {"l"});
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "Catalog" || call.op == "ListTags" ? Fault::Fail(EACCES) : Fault::None();
  });
  Make();
  for (const char* path : {"app", "app/v1"}) {
    auto refused = Walk(path);
    ASSERT_FALSE(refused.ok()) << path;
    EXPECT_EQ(refused.error().errnum, EACCES) << path;
  }
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
  o.caps.dirs = 4;
  o.caps.signatures = 3;
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
  // The blobs of the directories held, and no others: one layer each and the config they
  // share.
  EXPECT_EQ(c.dirs, 4u);
  EXPECT_EQ(c.locations, 5u);
  EXPECT_EQ(c.signatures, 3u);  // the attachments looked up (none there)
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
  o.caps.dirs = 1;
  Filesystem& fs = Make(o);
  auto blob = Walk("app/v1/" + std::string(DigestHex(DigestOf(layer))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto opened = fs.Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  std::string got(layer.size(), '\0');
  auto n = fs.Read(opened->handle, got.data(), 1000, 0);
  ASSERT_TRUE(n.ok()) << n.error().message;
  ASSERT_EQ(*n, 1000u);

  ListTree("app/v2");  // evicts v1's view and directory, and with it where its layer is
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

// ---- Blob locations: every registry and repository holding a blob is tried in turn ----------

Fault CorruptBlobs(const RegistryCall& call) {
  return call.op == "GetBlobRange" ? Fault::CorruptAt(5) : Fault::None();
}

TEST_F(MountCoreTest, AReadFallsBackToASecondRegistryWhenTheFirstServesBadBytes) {
  // verify=full: no byte reaches the reader before the blob verified, so the read itself can
  // fall back (with verify=stream, a reader given bad bytes gets EIO; see below).
  std::string layer(100000, 'x');
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make(VerifyMode::kFull);
  failing_->SetRule(CorruptBlobs);
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(Walk("app/v1/" + Hex(layer), kHost2).ok());  // known second
  auto bytes = ReadAll(blob->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_TRUE(*bytes == layer);
  EXPECT_GE(failing_->Faults(), 1);             // the first was tried
  EXPECT_GE(fake2_->Calls("GetBlobRange"), 1);  // and the second served the blob
  auto again = ReadAll(blob->ino);              // verified and cached: no registry is asked again
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(fake2_->Calls("GetBlobRange"), 1);
}

TEST_F(MountCoreTest, AfterABadFirstRegistryTheSecondServesTheBlob) {
  // The second registry's image is found by digest in the views already built: its location
  // must be recorded all the same.
  std::string layer(100000, 'y');
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make();
  failing_->SetRule(CorruptBlobs);
  auto first = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto bad = ReadAll(first->ino);
  ASSERT_FALSE(bad.ok());  // the only location known then was bad
  EXPECT_EQ(bad.error().errnum, EIO);
  EXPECT_NE(bad.error().message.find(kHost), std::string::npos) << bad.error().message;
  auto second = Walk("app/v1/" + Hex(layer), kHost2);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->ino, first->ino);  // one inode wherever it appears
  int faults = failing_->Faults();
  auto good = ReadAll(second->ino);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_TRUE(*good == layer);
  EXPECT_EQ(failing_->Faults(), faults);  // the bad location was not asked again
}

TEST_F(MountCoreTest, WhenEveryLocationFailsTheReadIsEIONamingEach) {
  std::string layer(100000, 'z');
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make();
  failing_->SetRule(CorruptBlobs);
  failing2_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::Fail(ENOENT) : Fault::None();
  });
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto dir2 = Walk("app/v1", kHost2);
  ASSERT_TRUE(dir2.ok()) << dir2.error().message;
  ASSERT_TRUE(fs_->ReadDir(dir2->ino).ok());  // listing it makes the second location known
  // One read of the whole blob waits for the verdict: no byte is served before it.
  auto f = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::string buf(layer.size(), '\0');
  auto n = fs_->Read(f->handle, buf.data(), buf.size(), 0);
  fs_->Release(f->handle);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().errnum, EIO);
  const std::string& m = n.error().message;
  EXPECT_NE(m.find(std::string(kHost) + "/app: served bytes with digest"), std::string::npos) << m;
  EXPECT_NE(m.find(std::string(kHost2) + "/app: injected failure"), std::string::npos) << m;
}

TEST_F(MountCoreTest, WhenEveryLocationWasBadTheNextOpenTriesThemAgain) {
  std::string layer(100000, 'v');
  fake_->AddImage("app", "v1", {layer});
  Make();
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::Fail(EIO) : Fault::None();
  });
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto bad = ReadAll(blob->ino);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, EIO);
  failing_->SetRule(nullptr);  // the registry is well again
  auto good = ReadAll(blob->ino);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_TRUE(*good == layer);
}

TEST_F(MountCoreTest, ARegistryThatWentAwayFailsTheWaitingReadAndTheNextReadResumes) {
  // A registry restarted under a reader (the transport has retried for as long as it may):
  // the read that waited fails, but neither the open file nor the blob is bad for it, and the
  // bytes that landed are kept.
  std::string layer;
  for (int i = 0; layer.size() < (6 << 20); ++i) layer += std::to_string(i * 3) + ".";
  fake_->AddImage("app", "v1", {layer});
  Make();
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto f = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::string buf(4096, '\0');
  auto first = fs_->Read(f->handle, buf.data(), buf.size(), 0);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(buf == layer.substr(0, buf.size()));

  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::Fail(EIO) : Fault::None();
  });
  const int64_t far = 5 << 20;  // not fetched yet
  auto failed = fs_->Read(f->handle, buf.data(), buf.size(), far);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().errnum, EIO);
  EXPECT_NE(failed.error().message.find(kHost), std::string::npos) << failed.error().message;
  EXPECT_GE(failing_->Faults(), 1);

  failing_->SetRule(nullptr);  // back
  auto again = fs_->Read(f->handle, buf.data(), buf.size(), far);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(buf == layer.substr(far, buf.size()));
  std::string whole(layer.size(), '\0');
  size_t got = 0;
  while (got < whole.size()) {
    auto n =
        fs_->Read(f->handle, whole.data() + got, whole.size() - got, static_cast<int64_t>(got));
    ASSERT_TRUE(n.ok()) << n.error().message;
    ASSERT_GT(*n, 0u);
    got += *n;
  }
  EXPECT_TRUE(whole == layer);  // the same open file reads on, to the verdict
  fs_->Release(f->handle);
  // Resumed, not started again: no byte was fetched twice.
  EXPECT_LE(fake_->BlobBytesServed(), static_cast<int64_t>(layer.size()));
  auto g = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_TRUE(g->keep_cache);  // verified and cached
  fs_->Release(g->handle);
}

TEST_F(MountCoreTest, AfterEveryLocationFailedTheNextReadAsksOnlyThoseThatMayBeBack) {
  // One location went away (it may come back), the other lacks the blob (it will not).
  std::string layer(100000, 'u');
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make();
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::Fail(EIO) : Fault::None();
  });
  failing2_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::Fail(ENOENT) : Fault::None();
  });
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(Walk("app/v1/" + Hex(layer), kHost2).ok());
  auto f = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::string buf(layer.size(), '\0');
  auto failed = fs_->Read(f->handle, buf.data(), buf.size(), 0);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().errnum, EIO);
  const std::string& m = failed.error().message;
  EXPECT_NE(m.find(kHost), std::string::npos) << m;
  EXPECT_NE(m.find(kHost2), std::string::npos) << m;
  EXPECT_EQ(failing2_->Faults(), 1);

  failing_->SetRule(nullptr);
  auto n = fs_->Read(f->handle, buf.data(), buf.size(), 0);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, layer.size());
  EXPECT_TRUE(buf == layer);
  EXPECT_EQ(failing2_->Faults(), 1);  // the location that lacks it was not asked again
  fs_->Release(f->handle);
}

TEST_F(MountCoreTest, ClosingABlobFileDoesNotWaitForAReadOfItHeldAtTheRegistry) {
  // close() of any copy of the descriptor (a forked child's) flushes the open file; a read
  // of it waiting for a registry that is away must not hold that up.
  std::string layer(100000, 't');
  fake_->AddImage("app", "v1", {layer});
  Make();
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto f = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.error().message;
  Gate gate;
  failing_->SetRule([&](const RegistryCall& call) {
    if (call.op == "GetBlobRange") gate.Enter();
    return Fault::None();
  });
  std::string buf(layer.size(), '\0');
  auto read = std::async(std::launch::async,
                         [&] { return fs_->Read(f->handle, buf.data(), buf.size(), 0); });
  WhileHeld(gate, [&] {
    EXPECT_TRUE(fs_->Flush(f->handle).ok());
    EXPECT_NE(read.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "the read did not wait for the held request";
  });
  auto n = read.get();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_TRUE(buf == layer);
  fs_->Release(f->handle);
}

TEST_F(MountCoreTest, ACutTransferResumesAtTheNextLocationAndStillVerifies) {
  std::string layer;
  for (int i = 0; layer.size() < (3 << 20); ++i) layer += std::to_string(i) + ",";
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make();
  constexpr int64_t kCut = (3 << 20) / 2;  // half way through the first piece fetched
  failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::CutAfter(kCut) : Fault::None();
  });
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(Walk("app/v1/" + Hex(layer), kHost2).ok());
  auto bytes = ReadAll(blob->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_TRUE(*bytes == layer);
  EXPECT_GE(failing_->Faults(), 1);
  // The second registry sent only what the first had not: the transfer resumed.
  EXPECT_GT(fake2_->BlobBytesServed(), 0);
  EXPECT_LE(fake2_->BlobBytesServed(), static_cast<int64_t>(layer.size()) - kCut);
}

TEST_F(MountCoreTest, AFileThatWasServedBadBytesGetsEIOThoughTheBlobThenVerifies) {
  // verify=stream gives bytes to readers before the verdict. Those of a location that turns
  // out bad must not end in a successful read, nor stay in the kernel's page cache.
  std::string layer(3 << 20, 'w');
  fake_->AddImage("app", "v1", {layer});
  fake2_->AddImage("app", "v1", {layer});
  Make();
  failing_->SetRule(CorruptBlobs);
  auto blob = Walk("app/v1/" + Hex(layer));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  ASSERT_TRUE(Walk("app/v1/" + Hex(layer), kHost2).ok());
  auto f = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->keep_cache);  // not verified yet
  char buf[4096];
  auto n = fs_->Read(f->handle, buf, sizeof buf, 0);  // the first MiBs only: no verdict yet
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_NE(buf[5], 'w');  // the corrupted byte, served unverified
  auto last = fs_->Read(f->handle, buf, 1, static_cast<int64_t>(layer.size()) - 1);
  ASSERT_FALSE(last.ok());  // the blob verified from the second registry, but not for this file
  EXPECT_EQ(last.error().errnum, EIO);
  auto later = fs_->Read(f->handle, buf, sizeof buf, 0);
  EXPECT_FALSE(later.ok());
  fs_->Release(f->handle);

  auto g = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_FALSE(g->keep_cache);  // the kernel must drop the bad pages it may hold
  fs_->Release(g->handle);
  auto bytes = ReadAll(blob->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_TRUE(*bytes == layer);
  auto h = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_TRUE(h->keep_cache);  // verified, and the pages dropped since
  fs_->Release(h->handle);
}

TEST_F(MountCoreTest, ConcurrentReadersOfABadFirstLocationGetGoodBytesOrEIO) {
  for (VerifyMode mode : {VerifyMode::kFull, VerifyMode::kStream}) {
    SCOPED_TRACE(mode == VerifyMode::kFull ? "verify=full" : "verify=stream");
    std::string layer;
    for (int i = 0; layer.size() < (5 << 20); ++i) layer += std::to_string(i * 7) + ";";
    fake_ = std::make_shared<FakeRegistry>(kHost);
    failing_ = std::make_shared<FailingRegistry>(fake_);
    fake2_ = std::make_shared<FakeRegistry>(kHost2);
    failing2_ = std::make_shared<FailingRegistry>(fake2_);
    fake_->AddImage("app", "v1", {layer});
    fake2_->AddImage("app", "v1", {layer});
    fs_.reset();
    (void)RemoveAll(dir_ + "/cache");
    Make(mode);
    failing_->SetRule([](const RegistryCall& call) {
      return call.op == "GetBlobRange" ? Fault::CorruptAt(3 << 20) : Fault::None();
    });
    auto blob = Walk("app/v1/" + Hex(layer));
    ASSERT_TRUE(blob.ok()) << blob.error().message;
    ASSERT_TRUE(Walk("app/v1/" + Hex(layer), kHost2).ok());
    std::vector<Result<std::string>> got(6, MakeError(EINVAL, "not run"));
    std::vector<std::thread> readers;
    for (size_t i = 0; i < got.size(); ++i) {
      readers.emplace_back([&, i] { got[i] = ReadAll(blob->ino); });
    }
    for (auto& t : readers) t.join();
    for (const auto& r : got) {
      if (r.ok()) {
        EXPECT_TRUE(*r == layer);  // never bad bytes without an error
      } else {
        EXPECT_EQ(mode, VerifyMode::kStream) << r.error().message;  // full: each falls back
        EXPECT_EQ(r.error().errnum, EIO) << r.error().message;
      }
    }
    auto after = ReadAll(blob->ino);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_TRUE(*after == layer);
  }
}

// ---- st_nlink: 1 + the image directories known to hold the blob -----------------------------

TEST_F(MountCoreTest, ABlobsLinkCountIsOnePlusTheImageDirectoriesKnownToHoldIt) {
  std::string shared = "shared layer", own = "v3's own layer";
  std::string digest = fake_->AddImage("app", "v1", {shared});
  ASSERT_EQ(fake_->AddImage("app", "v2", {shared}), digest);  // two tags, one image
  fake_->AddImage("app", "v3", {shared, own});
  Make();
  auto nlink = [&](const std::string& path) -> uint32_t {
    auto a = Walk(path);
    EXPECT_TRUE(a.ok()) << path << ": " << a.error().message;
    if (!a.ok()) return 0;
    auto again = fs_->GetAttr(a->ino);
    EXPECT_TRUE(again.ok()) << again.error().message;
    return again.ok() ? again->nlink : 0;
  };
  // At the first stat only its own directory is known, and the count is already 2: GNU du
  // remembers the inode and counts the blob once.
  EXPECT_EQ(nlink("app/v1/" + Hex(shared)), 2u);
  auto v2 = Walk("app/v2");
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  ASSERT_TRUE(fs_->ReadDir(v2->ino).ok());        // listing a directory makes its blobs known
  EXPECT_EQ(nlink("app/v1/" + Hex(shared)), 3u);  // by directory, not by manifest digest
  EXPECT_EQ(nlink("app/v2/manifest.json"), 1u);
  EXPECT_EQ(nlink("app/v1/" + Hex(shared)), 3u);  // a manifest file is no directory
  EXPECT_EQ(nlink("app/" + digest + "/" + Hex(shared)), 4u);
  EXPECT_EQ(nlink("app/v3/" + Hex(own)), 2u);
  EXPECT_EQ(nlink("app/v3/" + Hex(shared)), 5u);
  EXPECT_EQ(nlink("app/v1/version"), 1u);  // small files are each their own
}

// ---- Lookup counts (libfuse passthrough_hp's discipline) ---------------------------------------

TEST_F(MountCoreTest, ANodeLivesAsLongAsTheKernelHoldsALookupOfIt) {
  fake_->AddImage("app", "v1", {"l"});
  Make();
  auto reg = fs_->Lookup(kRootIno, kHost);
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  auto first = fs_->Lookup(reg->ino, "app");
  auto second = fs_->Lookup(reg->ino, "app");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->ino, second->ino);
  EXPECT_TRUE(fs_->Forget(first->ino, 1).ok());
  EXPECT_TRUE(fs_->GetAttr(first->ino).ok()) << "dropped with one lookup still held";
  EXPECT_TRUE(fs_->Forget(first->ino, 1).ok());
  auto gone = fs_->GetAttr(first->ino);
  ASSERT_FALSE(gone.ok()) << "a node the kernel forgot is kept";
  EXPECT_EQ(gone.error().errnum, ENOENT);
  auto again = fs_->Lookup(reg->ino, "app");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->ino, first->ino) << "the name still maps to the forgotten inode";
  // The root is never dropped.
  EXPECT_TRUE(fs_->Forget(kRootIno, 1).ok());
  EXPECT_TRUE(fs_->GetAttr(kRootIno).ok());
}

TEST_F(MountCoreTest, ForgettingMoreLookupsThanWereCountedIsReportedAsABug) {
  fake_->AddImage("app", "v1", {"l"});
  Make();
  auto app = Walk("app");
  ASSERT_TRUE(app.ok()) << app.error().message;
  Status over = fs_->Forget(app->ino, 3);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("bug"), std::string::npos) << over.error().message;
  EXPECT_FALSE(fs_->GetAttr(app->ino).ok());  // taken as zero: dropped
  Status unknown = fs_->Forget(app->ino, 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("bug"), std::string::npos) << unknown.error().message;
}

TEST_F(MountCoreTest, MkdirAndCreateCountOneLookupEach) {
  Make();
  auto reg = fs_->Lookup(kRootIno, kHost);
  ASSERT_TRUE(reg.ok());
  auto repo = fs_->Mkdir(reg->ino, "app");
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  auto tag = fs_->Mkdir(repo->ino, "v1");
  ASSERT_TRUE(tag.ok()) << tag.error().message;
  auto created = fs_->Create(tag->ino, "version");
  ASSERT_TRUE(created.ok()) << created.error().message;
  fs_->Release(created->second.handle);
  for (uint64_t ino : {created->first.ino, tag->ino, repo->ino}) {
    EXPECT_TRUE(fs_->Forget(ino, 1).ok());
    EXPECT_FALSE(fs_->GetAttr(ino).ok()) << "inode " << ino << " kept after its one lookup";
  }
}

TEST_F(MountCoreTest, AnOpenFileReadsWithoutItsNode) {
  fake_->AddImage("app", "v1", {"layer bytes"});
  Make();
  auto blob = Walk("app/v1/" + std::string(DigestHex(DigestOf("layer bytes"))));
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  auto opened = fs_->Open(blob->ino, O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_TRUE(fs_->Forget(blob->ino, 1).ok());
  char buf[64];
  auto n = fs_->Read(opened->handle, buf, sizeof buf, 0);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(std::string(buf, *n), "layer bytes");
  fs_->Release(opened->handle);
}

// ---- A push in flight blocks nothing but itself -------------------------------------------------

TEST_F(MountCoreTest, StatAndLsAnswerWhileABlobWriteWaitsForTheRegistry) {
  PushSetup p;
  ASSERT_NO_FATAL_FAILURE(StartPush(&p));
  auto created = fs_->Create(p.tag.ino, p.layer_name);
  ASSERT_TRUE(created.ok()) << created.error().message;
  uint64_t handle = created->second.handle;

  // The first write of a blob asks the registry whether it has it: held here.
  Gate gate;
  std::string layer_digest = DigestOf(p.layer);
  failing_->SetRule([&](const RegistryCall& call) {
    if (call.op == "BlobExists" && call.ref == layer_digest) gate.Enter();
    return Fault::None();
  });
  auto write = std::async(std::launch::async,
                          [&] { return fs_->Write(handle, p.layer.data(), p.layer.size(), 0); });
  WhileHeld(gate, [&] {
    ExpectAnswered(p.reg, p.tag, p.layer_name);
    EXPECT_NE(write.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "the write did not wait for the held request";
  });
  auto written = write.get();
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_TRUE(fs_->Flush(handle).ok());
  fs_->Release(handle);
  ASSERT_TRUE(Put(p.tag.ino, "manifest.json", p.manifest).ok());
  auto pushed = fake_->ResolveDigest("app", "v1");
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(*pushed, p.digest);
}

TEST_F(MountCoreTest, StatAndLsAnswerWhileThePushWaitsForTheRegistry) {
  PushSetup p;
  ASSERT_NO_FATAL_FAILURE(StartPush(&p));
  ASSERT_TRUE(Put(p.tag.ino, p.layer_name, p.layer).ok());

  // The close() of manifest.json completes the image and pushes it: its manifest PUT is held.
  Gate gate;
  failing_->SetRule([&](const RegistryCall& call) {
    if (call.op == "PutManifest") gate.Enter();
    return Fault::None();
  });
  auto created = fs_->Create(p.tag.ino, "manifest.json");
  ASSERT_TRUE(created.ok()) << created.error().message;
  uint64_t handle = created->second.handle;
  ASSERT_TRUE(fs_->Write(handle, p.manifest.data(), p.manifest.size(), 0).ok());
  auto flush = std::async(std::launch::async, [&] { return fs_->Flush(handle); });
  WhileHeld(gate, [&] {
    ExpectAnswered(p.reg, p.tag, p.layer_name);
    EXPECT_NE(flush.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "the close() did not wait for the push";
  });
  Status flushed = flush.get();
  EXPECT_TRUE(flushed.ok()) << flushed.error().message;
  fs_->Release(handle);
  auto pushed = fake_->ResolveDigest("app", "v1");
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(*pushed, p.digest);
}

}  // namespace
}  // namespace regfs
