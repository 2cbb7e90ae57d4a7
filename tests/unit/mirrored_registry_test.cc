// MirroredRegistry (transports/docker/mirrored_registry.h) over in-memory registries: which
// place each call reaches, under the registries.conf rules for pulls and pushes.
#include "transports/docker/mirrored_registry.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/unit/testing/fake_registry.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

using testing::FailingRegistry;
using testing::FakeRegistry;
using testing::Fault;
using testing::RegistryCall;

class MirroredRegistryTest : public ::testing::Test {
 protected:
  // origin.example with a mirror on mirror.example, under `extra` registries.conf keys.
  void Make(const std::string& entry_keys = "", const std::string& mirror_keys = "") {
    Status s =
        conf_->Merge("[[registry]]\nlocation = \"origin.example\"\n" + entry_keys +
                         "[[registry.mirror]]\nlocation = \"mirror.example\"\n" + mirror_keys,
                     "test.conf");
    ASSERT_TRUE(s.ok()) << s.error().message;
    Open();
  }
  void Open() {
    places_ = {{"origin.example", origin_failing_}, {"mirror.example", mirror_failing_}};
    registry_ = NewMirroredRegistry(
        origin_failing_, conf_,
        [this](const PullSource& place) -> std::shared_ptr<Registry> {
          asked_.push_back(place.ref.String());
          return places_.at(place.ref.registry);
        },
        nullptr);
  }

  std::string Blob(const std::string& repo, const std::string& digest, int64_t offset = 0,
                   int64_t length = -1) {
    std::string got;
    Status s =
        registry_->GetBlobRange(repo, digest, offset, length, -1, [&](const char* data, size_t n) {
          got.append(data, n);
          return Ok();
        });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return got;
  }

  std::shared_ptr<RegistriesConf> conf_ = std::make_shared<RegistriesConf>();
  std::shared_ptr<FakeRegistry> origin_ = std::make_shared<FakeRegistry>("origin.example");
  std::shared_ptr<FakeRegistry> mirror_ = std::make_shared<FakeRegistry>("mirror.example");
  std::shared_ptr<FailingRegistry> origin_failing_ = std::make_shared<FailingRegistry>(origin_);
  std::shared_ptr<FailingRegistry> mirror_failing_ = std::make_shared<FailingRegistry>(mirror_);
  std::map<std::string, std::shared_ptr<Registry>> places_;
  std::vector<std::string> asked_;
  std::shared_ptr<Registry> registry_;
};

TEST_F(MirroredRegistryTest, PullsComeFromTheMirrorFirst) {
  Make();
  std::string digest = mirror_->AddImage("app", "v1", {"layer"});
  auto m = registry_->GetManifest("app", "v1");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->digest, digest);
  EXPECT_EQ(registry_->ResolveDigest("app", "v1").value(), digest);
  EXPECT_EQ(Blob("app", DigestOf("layer")), "layer");
  auto tags = registry_->ListTags("app");
  ASSERT_TRUE(tags.ok()) << tags.error().message;
  EXPECT_EQ(*tags, std::vector<std::string>{"v1"});
  EXPECT_EQ(origin_->Calls("GetManifest") + origin_->Calls("GetBlobRange") +
                origin_->Calls("ListTags") + origin_->Calls("ResolveDigest"),
            0);
}

TEST_F(MirroredRegistryTest, WhatTheMirrorLacksComesFromTheOrigin) {
  Make();
  std::string digest = origin_->AddImage("app", "v1", {"layer"});
  EXPECT_EQ(registry_->GetManifest("app", "v1").value().digest, digest);
  EXPECT_EQ(Blob("app", DigestOf("layer")), "layer");
  EXPECT_EQ(mirror_->Calls("GetManifest"), 1);
  EXPECT_EQ(mirror_->Calls("GetBlobRange"), 1);
}

TEST_F(MirroredRegistryTest, ABlobCutAtTheMirrorResumesAtTheOrigin) {
  Make();
  const std::string layer(10000, 'q');
  mirror_->AddBlob("app", layer);
  origin_->AddBlob("app", layer);
  mirror_failing_->SetRule([](const RegistryCall& call) {
    return call.op == "GetBlobRange" ? Fault::CutAfter(4000) : Fault::None();
  });
  EXPECT_EQ(Blob("app", DigestOf(layer), 100, 9000), layer.substr(100, 9000));
  EXPECT_EQ(origin_->BlobBytesServed(), 9000 - 4000);
}

TEST_F(MirroredRegistryTest, MirrorByDigestOnlySendsTagsToTheOrigin) {
  Make("mirror-by-digest-only = true\n");
  std::string at_origin = origin_->AddImage("app", "v1", {"new"});
  std::string stale = mirror_->AddImage("app", "v1", {"old"});
  EXPECT_EQ(registry_->GetManifest("app", "v1").value().digest, at_origin);
  EXPECT_EQ(registry_->ResolveDigest("app", "v1").value(), at_origin);
  EXPECT_EQ(mirror_->Calls("GetManifest") + mirror_->Calls("ResolveDigest"), 0);
  // By digest the mirror serves, and blobs are addressed by digest.
  EXPECT_EQ(registry_->GetManifest("app", stale).value().digest, stale);
  EXPECT_EQ(mirror_->Calls("GetManifest"), 1);
  EXPECT_EQ(Blob("app", DigestOf("old")), "old");
}

TEST_F(MirroredRegistryTest, PullFromMirrorDigestOnlyIsTheSameForTags) {
  Make("", "pull-from-mirror = \"digest-only\"\n");
  std::string at_origin = origin_->AddImage("app", "v1", {"new"});
  mirror_->AddImage("app", "v1", {"old"});
  EXPECT_EQ(registry_->GetManifest("app", "v1").value().digest, at_origin);
  EXPECT_EQ(mirror_->Calls("GetManifest"), 0);
}

TEST_F(MirroredRegistryTest, WritesAndBlobChecksGoToTheOriginOnly) {
  Make();
  std::string digest = mirror_->AddBlob("app", "at the mirror");
  auto there = registry_->BlobExists("app", digest);
  ASSERT_TRUE(there.ok()) << there.error().message;
  EXPECT_FALSE(*there);  // the origin lacks it: a push must upload it
  EXPECT_TRUE(registry_->PutManifest("app", "v2", "{}", "application/json").ok());
  EXPECT_EQ(origin_->Calls("PutManifest"), 1);
  EXPECT_EQ(&registry_->Origin(), origin_failing_.get());
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(mirror_->Calls("BlobExists") + mirror_->Calls("PutManifest"), 0);
}

TEST_F(MirroredRegistryTest, PrefixesAreRewrittenToTheirLocation) {
  ASSERT_TRUE(conf_
                  ->Merge("[[registry]]\nprefix = \"origin.example/team\"\n"
                          "location = \"mirror.example/cache/team\"\n",
                          "test.conf")
                  .ok());
  Open();
  std::string digest = mirror_->AddImage("cache/team/app", "v1", {"layer"});
  EXPECT_EQ(registry_->GetManifest("team/app", "v1").value().digest, digest);
  EXPECT_EQ(asked_, std::vector<std::string>{"mirror.example/cache/team/app:v1"});
  // Outside the prefix, the origin itself.
  origin_->AddImage("other", "v1", {"x"});
  EXPECT_TRUE(registry_->GetManifest("other", "v1").ok());
}

TEST_F(MirroredRegistryTest, ABlockedRepositoryIsRefusedWithoutARequest) {
  ASSERT_TRUE(conf_
                  ->Merge("[[registry]]\nlocation = \"origin.example/secret\"\nblocked = true\n",
                          "test.conf")
                  .ok());
  Open();
  origin_->AddImage("secret/app", "v1", {"x"});
  auto m = registry_->GetManifest("secret/app", "v1");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().errnum, EACCES);
  EXPECT_NE(m.error().message.find("registries.conf"), std::string::npos) << m.error().message;
  EXPECT_EQ(registry_->PutManifest("secret/app", "v2", "{}", "application/json").error().errnum,
            EACCES);
  EXPECT_EQ(origin_->Calls("GetManifest") + origin_->Calls("PutManifest"), 0);
}

}  // namespace
}  // namespace regfs
