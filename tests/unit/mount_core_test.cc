// The mount core over registries that are not HTTP: a FakeRegistry, and FailingRegistry
// wrapped around it to make reads fail on purpose.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "fs/filesystem.h"
#include "tests/unit/testing/fake_registry.h"
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

class MountCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<FakeRegistry>(kHost);
    failing_ = std::make_shared<FailingRegistry>(fake_);
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

  testing::TempDir tmp_{"regfs-core-test"};
  const std::string dir_ = tmp_.path();
  std::shared_ptr<FakeRegistry> fake_;
  std::shared_ptr<FailingRegistry> failing_;
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

}  // namespace
}  // namespace regfs
