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
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

  Filesystem& Make() {
    MountOptions o;
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

  // open(O_CREAT)/write()/close() of a file in directory `dir`.
  Status Put(uint64_t dir, const std::string& name, const std::string& bytes) {
    ASSIGN_OR_RETURN(auto created, fs_->Create(dir, name));
    auto written = fs_->Write(created.second.handle, bytes.data(), bytes.size(), 0);
    Status flushed = written.ok() ? fs_->Flush(created.second.handle) : Status(written.error());
    fs_->Release(created.second.handle);
    return flushed;
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
  std::string layer = "the layer's bytes";
  std::string digest = fake_->AddImage("src", "v1", {layer});
  std::string manifest = fake_->GetManifest("src", "v1")->bytes;
  std::string config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  fake_->AddImage("other", "v1", {"other layer"});
  Make();
  auto reg = fs_->Lookup(kRootIno, kHost);
  ASSERT_TRUE(reg.ok());
  auto repo = fs_->Mkdir(reg->ino, "app");
  ASSERT_TRUE(repo.ok());
  auto tag = fs_->Mkdir(repo->ino, "v1");
  ASSERT_TRUE(tag.ok());
  ASSERT_TRUE(Put(tag->ino, std::string(DigestHex(DigestOf(config))), config).ok());
  std::string layer_name(DigestHex(DigestOf(layer)));
  auto created = fs_->Create(tag->ino, layer_name);
  ASSERT_TRUE(created.ok()) << created.error().message;
  uint64_t handle = created->second.handle;

  // The first write of a blob asks the registry whether it has it: held here.
  Gate gate;
  std::string layer_digest = DigestOf(layer);
  failing_->SetRule([&](const RegistryCall& call) {
    if (call.op == "BlobExists" && call.ref == layer_digest) gate.Enter();
    return Fault::None();
  });
  auto write = std::async(std::launch::async,
                          [&] { return fs_->Write(handle, layer.data(), layer.size(), 0); });
  WhileHeld(gate, [&] {
    ExpectAnswered(*reg, *tag, layer_name);
    EXPECT_NE(write.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "the write did not wait for the held request";
  });
  auto written = write.get();
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_TRUE(fs_->Flush(handle).ok());
  fs_->Release(handle);
  ASSERT_TRUE(Put(tag->ino, "manifest.json", manifest).ok());
  auto pushed = fake_->ResolveDigest("app", "v1");
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(*pushed, digest);
}

TEST_F(MountCoreTest, StatAndLsAnswerWhileThePushWaitsForTheRegistry) {
  std::string layer = "the layer's bytes";
  std::string digest = fake_->AddImage("src", "v1", {layer});
  std::string manifest = fake_->GetManifest("src", "v1")->bytes;
  std::string config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  fake_->AddImage("other", "v1", {"other layer"});
  Make();
  auto reg = fs_->Lookup(kRootIno, kHost);
  ASSERT_TRUE(reg.ok());
  auto repo = fs_->Mkdir(reg->ino, "app");
  ASSERT_TRUE(repo.ok());
  auto tag = fs_->Mkdir(repo->ino, "v1");
  ASSERT_TRUE(tag.ok());
  std::string layer_name(DigestHex(DigestOf(layer)));
  ASSERT_TRUE(Put(tag->ino, std::string(DigestHex(DigestOf(config))), config).ok());
  ASSERT_TRUE(Put(tag->ino, layer_name, layer).ok());

  // The close() of manifest.json completes the image and pushes it: its manifest PUT is held.
  Gate gate;
  failing_->SetRule([&](const RegistryCall& call) {
    if (call.op == "PutManifest") gate.Enter();
    return Fault::None();
  });
  auto created = fs_->Create(tag->ino, "manifest.json");
  ASSERT_TRUE(created.ok()) << created.error().message;
  uint64_t handle = created->second.handle;
  ASSERT_TRUE(fs_->Write(handle, manifest.data(), manifest.size(), 0).ok());
  auto flush = std::async(std::launch::async, [&] { return fs_->Flush(handle); });
  WhileHeld(gate, [&] {
    ExpectAnswered(*reg, *tag, layer_name);
    EXPECT_NE(flush.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "the close() did not wait for the push";
  });
  Status flushed = flush.get();
  EXPECT_TRUE(flushed.ok()) << flushed.error().message;
  fs_->Release(handle);
  auto pushed = fake_->ResolveDigest("app", "v1");
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(*pushed, digest);
}

}  // namespace
}  // namespace regfs
