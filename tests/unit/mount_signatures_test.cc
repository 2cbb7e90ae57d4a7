// Signatures in the mount core: signature-N files from the sigstore attachment, signatures
// pushed with a staged image, and the policy= verified-only view, over a FakeRegistry.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fs/filesystem.h"
#include "tests/unit/testing/fake_registry.h"
#include "tests/unit/testing/fs_paths.h"
#include "tests/unit/testing/temp_dir.h"
#include "transports/registry/docker_transport.h"
#include "transports/signature/policy.h"
#include "transports/signature/sigstore.h"
#include "transports/types/signature.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

using testing::FactoryOf;
using testing::FakeRegistry;

// The host the fixtures' signatures name (tests/fixtures/sigstore/README.md).
constexpr char kHost[] = "192.168.64.2:5000";
constexpr char kSignedRepo[] = "cosign-signed-single-sample";

std::string Fixture(const std::string& rel) {
  std::ifstream in(std::string(REGFS_FIXTURES_DIR) + "/sigstore/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Hex(const std::string& bytes) { return std::string(DigestHex(DigestOf(bytes))); }

// Stores `sigs` as the attachment of `manifest_digest` in `repo`, as cosign lays it out.
void AddAttachment(FakeRegistry& fake, const std::string& repo, const std::string& manifest_digest,
                   const std::vector<Signature>& sigs) {
  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const Signature& sig : sigs) {
    std::string digest = fake.AddBlob(repo, sig.payload);
    nlohmann::json layer = {
        {"mediaType", sig.mime_type}, {"size", sig.payload.size()}, {"digest", digest}};
    layer["annotations"] = sig.annotations;
    layers.push_back(layer);
    diff_ids.push_back(digest);
  }
  std::string config = nlohmann::json({{"architecture", ""},
                                       {"os", ""},
                                       {"config", nlohmann::json::object()},
                                       {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}})
                           .dump();
  std::string config_digest = fake.AddBlob(repo, config);
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", media::kOciManifest},
                      {"config",
                       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                        {"size", config.size()},
                        {"digest", config_digest}}},
                      {"layers", layers}};
  fake.AddManifest(repo, SigstoreAttachmentTag(manifest_digest), m.dump(),
                   std::string(media::kOciManifest));
}

std::vector<std::string> NamesOf(const std::vector<DirEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

class MountSignaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_shared<FakeRegistry>(kHost);
    // A cosign-signed image (manifest only: its blobs are listed, never fetched here).
    manifest_ = Fixture("dir-img-cosign-valid-2/manifest.json");
    digest_ = fake_->AddManifest(kSignedRepo, "latest", manifest_,
                                 "application/vnd.docker.distribution.manifest.v2+json");
    for (int n = 1; n <= 2; ++n) {
      std::string blob = Fixture("dir-img-cosign-valid-2/signature-" + std::to_string(n));
      if (blob.ends_with('\n')) blob.pop_back();
      auto sig = SignatureFromBlob(blob);
      ASSERT_TRUE(sig.ok()) << sig.error().message;
      sigs_.push_back(*sig);
      files_.push_back(SignatureBlob(*sig));
    }
    AddAttachment(*fake_, kSignedRepo, digest_, sigs_);
  }

  Filesystem& Make(MountOptions o = {}) {
    o.cache_dir = dir_ + "/cache";
    o.log_file = dir_ + "/log";
    auto fs = Filesystem::Create(o, FactoryOf({{kHost, fake_}}));
    EXPECT_TRUE(fs.ok()) << fs.error().message;
    fs_ = std::move(fs).value();
    return *fs_;
  }

  Result<NodeAttr> Walk(const std::string& path) { return testing::WalkPath(*fs_, kHost, path); }

  Result<std::string> ReadAll(uint64_t ino) { return testing::ReadWhole(*fs_, ino); }

  Status Put(uint64_t dir, const std::string& name, const std::string& bytes) {
    return testing::WriteWhole(*fs_, dir, name, bytes);
  }

  // A tag directory app/v1 made here, for a push of a one-layer image; returns its inode.
  uint64_t StageApp(std::string* manifest, std::string* layer) {
    *layer = "the layer's bytes";
    std::string digest = fake_->AddImage("src", "v1", {*layer});
    *manifest = fake_->GetManifest("src", "v1")->bytes;
    (void)digest;
    Make();
    auto repo = Walk("");
    EXPECT_TRUE(repo.ok());
    auto app = fs_->Mkdir(repo->ino, "app");
    EXPECT_TRUE(app.ok());
    auto tag = fs_->Mkdir(app->ino, "v1");
    EXPECT_TRUE(tag.ok());
    return tag->ino;
  }

  std::shared_ptr<FakeRegistry> fake_;
  std::string manifest_, digest_;
  std::vector<Signature> sigs_;
  std::vector<std::string> files_;  // the signature-N files skopeo writes for them
  ::regfs::testing::TempDir tmp_{"regfs-sig-test"};
  const std::string dir_ = tmp_.path();
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(MountSignaturesTest, ListsSignaturesAfterTheBlobsSizedWithoutFetchingPayloads) {
  Make();
  auto dir = Walk(std::string(kSignedRepo) + "/latest");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  auto listed = fs_->ReadDir(dir->ino);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  std::vector<std::string> names = NamesOf(*listed);
  ASSERT_GE(names.size(), 4u);
  EXPECT_EQ(names[names.size() - 2], "signature-1");
  EXPECT_EQ(names.back(), "signature-2");
  for (int n = 1; n <= 2; ++n) {
    auto attr = fs_->Lookup(dir->ino, "signature-" + std::to_string(n));
    ASSERT_TRUE(attr.ok()) << attr.error().message;
    EXPECT_TRUE(S_ISREG(attr->mode));
    EXPECT_EQ(attr->size, static_cast<int64_t>(files_[n - 1].size()));
  }
  EXPECT_EQ(fake_->Calls("GetBlobRange"), 0);  // listing and stat: no payload fetched
  EXPECT_FALSE(fs_->Lookup(dir->ino, "signature-3").ok());
  for (int n = 1; n <= 2; ++n) {
    auto attr = fs_->Lookup(dir->ino, "signature-" + std::to_string(n));
    ASSERT_TRUE(attr.ok());
    auto bytes = ReadAll(attr->ino);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    EXPECT_EQ(*bytes, files_[n - 1]) << "signature-" << n;
  }
}

TEST_F(MountSignaturesTest, LayersOfOtherTypesAreListedAsContainersImageReadsThem) {
  std::string digest = fake_->AddImage("attested", "v1", {"a layer"});
  Signature other;
  other.mime_type = "application/vnd.in-toto+json";
  other.payload = R"({"an":"attestation"})";
  other.annotations = {{"note", "not a signature"}};
  AddAttachment(*fake_, "attested", digest, {sigs_[0], other});
  Make();
  auto dir = Walk("attested/v1");
  ASSERT_TRUE(dir.ok());
  auto listed = fs_->ReadDir(dir->ino);
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> names = NamesOf(*listed);
  EXPECT_EQ(names.back(), "signature-2");
  auto attr = fs_->Lookup(dir->ino, "signature-2");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, static_cast<int64_t>(SignatureBlob(other).size()));
  auto bytes = ReadAll(attr->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, SignatureBlob(other));
}

TEST_F(MountSignaturesTest, AnAbsentAttachmentCostsOneRequestPerManifestFetch) {
  fake_->AddImage("plain", "v1", {"a layer"});
  Make();
  auto dir = Walk("plain/v1");
  ASSERT_TRUE(dir.ok());
  int before = fake_->Calls("GetManifest");
  for (int i = 0; i < 3; ++i) {
    auto listed = fs_->ReadDir(dir->ino);
    ASSERT_TRUE(listed.ok());
    for (const auto& name : NamesOf(*listed)) EXPECT_FALSE(name.starts_with("signature-"));
    EXPECT_FALSE(fs_->Lookup(dir->ino, "signature-1").ok());
  }
  // The manifest and the attachment's 404, once, within tag_ttl.
  EXPECT_LE(fake_->Calls("GetManifest") - before, 2);
}

TEST_F(MountSignaturesTest, RegistriesDTurnsAttachmentsOffPerRepository) {
  MountOptions o;
  o.sigstore_attachments = [](const std::string&, const std::string& repo) {
    return repo != kSignedRepo;
  };
  Make(o);
  auto dir = Walk(std::string(kSignedRepo) + "/latest");
  ASSERT_TRUE(dir.ok());
  auto listed = fs_->ReadDir(dir->ino);
  ASSERT_TRUE(listed.ok());
  for (const auto& name : NamesOf(*listed)) EXPECT_FALSE(name.starts_with("signature-"));
  EXPECT_EQ(fake_->Calls("GetManifest"), 1);  // the image's manifest only
}

TEST_F(MountSignaturesTest, StagedSignaturesArePushedAsTheAttachment) {
  std::string manifest, layer;
  uint64_t tag = StageApp(&manifest, &layer);
  ASSERT_TRUE(Put(tag, "signature-1", files_[0]).ok());
  ASSERT_TRUE(Put(tag, Hex(FakeRegistry::kDefaultConfig), FakeRegistry::kDefaultConfig).ok());
  ASSERT_TRUE(Put(tag, Hex(layer), layer).ok());
  Status pushed = Put(tag, "manifest.json", manifest);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  ASSERT_TRUE(fake_->GetManifest("app", "v1").ok());
  auto stored = ReadSigstoreAttachment(*fake_, "app", DigestOf(manifest));
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0], sigs_[0]);
  // One closed after the push goes to the pushed image's attachment too.
  ASSERT_TRUE(Put(tag, "signature-2", files_[1]).ok());
  stored = ReadSigstoreAttachment(*fake_, "app", DigestOf(manifest));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 2u);
}

TEST_F(MountSignaturesTest, AnInvalidSignatureFailsItsCloseAndHoldsThePush) {
  std::string manifest, layer;
  uint64_t tag = StageApp(&manifest, &layer);
  Status bad = Put(tag, "signature-1", "not a signature");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().errnum, EINVAL);
  ASSERT_TRUE(Put(tag, Hex(FakeRegistry::kDefaultConfig), FakeRegistry::kDefaultConfig).ok());
  ASSERT_TRUE(Put(tag, Hex(layer), layer).ok());
  ASSERT_TRUE(Put(tag, "manifest.json", manifest).ok());
  EXPECT_FALSE(fake_->GetManifest("app", "v1").ok());  // no tag
  // Written again correctly, the image goes, with it.
  Status fixed = Put(tag, "signature-1", files_[0]);
  ASSERT_TRUE(fixed.ok()) << fixed.error().message;
  EXPECT_TRUE(fake_->GetManifest("app", "v1").ok());
  auto stored = ReadSigstoreAttachment(*fake_, "app", DigestOf(manifest));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 1u);
}

// A policy accepting the fixtures' signatures in kSignedRepo, refusing everything else.
std::shared_ptr<const Policy> FixturePolicy() {
  nlohmann::json j = {{"default", {{{"type", "reject"}}}},
                      {"transports",
                       {{"docker",
                         {{std::string(kHost) + "/" + kSignedRepo,
                           {{{"type", "sigstoreSigned"},
                             {"keyPath", std::string(REGFS_FIXTURES_DIR) + "/sigstore/cosign.pub"},
                             {"signedIdentity", {{"type", "matchRepository"}}}}}}}}}}};
  auto policy = Policy::Parse(j.dump(), "");
  EXPECT_TRUE(policy.ok()) << policy.error().message;
  return std::make_shared<const Policy>(std::move(policy).value());
}

TEST_F(MountSignaturesTest, PolicyMakesAVerifiedOnlyView) {
  fake_->AddImage("plain", "v1", {"a layer"});
  MountOptions o;
  o.policy = FixturePolicy();
  Make(o);
  auto signed_dir = Walk(std::string(kSignedRepo) + "/latest");
  ASSERT_TRUE(signed_dir.ok());
  auto manifest = fs_->Lookup(signed_dir->ino, "manifest.json");
  ASSERT_TRUE(manifest.ok());
  auto bytes = ReadAll(manifest->ino);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, manifest_);
  auto by = fs_->GetXattr(signed_dir->ino, "user.regfs.verified");
  ASSERT_TRUE(by.ok()) << by.error().message;
  EXPECT_NE(by->find("cosign.pub"), std::string::npos) << *by;
  // The verdict is kept: reading again costs no request.
  int manifests = fake_->Calls("GetManifest"), blobs = fake_->Calls("GetBlobRange");
  ASSERT_TRUE(ReadAll(manifest->ino).ok());
  auto sig = fs_->Lookup(signed_dir->ino, "signature-1");
  ASSERT_TRUE(sig.ok());
  auto sig_bytes = ReadAll(sig->ino);
  ASSERT_TRUE(sig_bytes.ok());
  EXPECT_EQ(*sig_bytes, files_[0]);
  EXPECT_EQ(fake_->Calls("GetManifest"), manifests);
  EXPECT_EQ(fake_->Calls("GetBlobRange"), blobs);

  auto plain = Walk("plain/v1");
  ASSERT_TRUE(plain.ok());
  auto listed = fs_->ReadDir(plain->ino);
  ASSERT_TRUE(listed.ok());  // readdir and stat work
  auto plain_manifest = fs_->Lookup(plain->ino, "manifest.json");
  ASSERT_TRUE(plain_manifest.ok());
  auto refused = fs_->Open(plain_manifest->ino, O_RDONLY);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().errnum, EACCES);
  auto listed_names = fs_->ListXattr(signed_dir->ino);
  ASSERT_TRUE(listed_names.ok());
  EXPECT_EQ(std::count(listed_names->begin(), listed_names->end(), "user.regfs.verified"), 1);
  auto plain_names = fs_->ListXattr(plain->ino);
  ASSERT_TRUE(plain_names.ok());
  EXPECT_EQ(std::count(plain_names->begin(), plain_names->end(), "user.regfs.verified"), 0);
  auto none = fs_->GetXattr(plain->ino, "user.regfs.verified");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, ENODATA);
}

TEST_F(MountSignaturesTest, WithoutAPolicyThereIsNoVerifiedAttribute) {
  Make();
  auto dir = Walk(std::string(kSignedRepo) + "/latest");
  ASSERT_TRUE(dir.ok());
  auto names = fs_->ListXattr(dir->ino);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(std::count(names->begin(), names->end(), "user.regfs.verified"), 0);
  auto v = fs_->GetXattr(dir->ino, "user.regfs.verified");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().errnum, ENODATA);
}

}  // namespace
}  // namespace regfs
