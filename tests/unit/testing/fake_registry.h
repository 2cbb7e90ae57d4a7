// Registries for unit tests of code that holds the Registry interface (the mount core, the
// docker:// source and destination, deletion):
//
//   FakeRegistry     an in-memory registry: repositories, tags, manifests and blobs, with
//                    request counts per operation.
//   FailingRegistry  a decorator (mountpoint-s3's failure_client is the model): every call asks
//                    a test-set rule first, which may fail it, cut a blob transfer after some
//                    bytes, or corrupt what a blob read delivers; otherwise the call goes to
//                    the wrapped registry. A rule may also block its call, to hold a request
//                    in flight while a test looks at what else still answers.
//
// Both are thread-safe, as the interface requires.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "transports/registry/registry.h"

namespace regfs::testing {

class FakeRegistry : public Registry {
 public:
  explicit FakeRegistry(std::string name = "fake.example:5000") : name_(std::move(name)) {}

  // The config AddImage() stores when given none.
  static constexpr char kDefaultConfig[] =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";

  // ---- Filling it ---------------------------------------------------------------------------

  // Stores a blob in `repo`; returns its digest.
  std::string AddBlob(const std::string& repo, const std::string& bytes);
  // Stores a manifest in `repo`, tagged `tag` unless empty; returns its digest.
  std::string AddManifest(const std::string& repo, const std::string& tag, const std::string& bytes,
                          const std::string& media_type);
  // An image of `layers` (contents) and a config, as an OCI manifest tagged `tag`; returns the
  // manifest's digest. `config` defaults to kDefaultConfig.
  std::string AddImage(const std::string& repo, const std::string& tag,
                       const std::vector<std::string>& layers, std::string config = "");
  // From now on the catalog never ends: page after page (one a millisecond) until its `stop`
  // says so.
  void MakeCatalogEndless();

  // ---- What was asked -----------------------------------------------------------------------

  // Calls made, by operation name ("GetManifest", "GetBlobRange", …).
  int Calls(const std::string& op) const;
  // Blob bytes delivered by GetBlobRange in all.
  int64_t BlobBytesServed() const;

  // ---- Registry -----------------------------------------------------------------------------

  const std::string& registry() const override { return name_; }
  Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref) override;
  Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref) override;
  Status PutManifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                     const std::string& media_type) override;
  Status DeleteManifest(const std::string& repo, const std::string& ref) override;
  Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                      int64_t length, int64_t size, const ByteSink& sink) override;
  Result<bool> BlobExists(const std::string& repo, const std::string& digest) override;
  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo) override;
  Status PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                 const std::function<size_t(char*, size_t)>& reader) override;
  Result<std::vector<std::string>> ListTags(const std::string& repo) override;
  Result<std::vector<std::string>> Catalog(const std::function<bool()>& stop) override;
  KeyedLocks& blob_locks() override { return locks_; }

 private:
  struct Repo {
    std::map<std::string, std::string> tags;  // tag → digest
    std::map<std::string, RawManifest> manifests;
    std::set<std::string> blobs;
  };
  void Count(const std::string& op) const;

  const std::string name_;
  mutable std::mutex mu_;
  std::map<std::string, Repo> repos_;             // guarded by mu_
  std::map<std::string, std::string> blob_data_;  // digest → bytes, guarded by mu_
  mutable std::map<std::string, int> calls_;      // guarded by mu_
  int64_t served_ = 0;                            // guarded by mu_
  bool endless_catalog_ = false;                  // guarded by mu_
  KeyedLocks locks_;
};

// One call as the rule sees it.
struct RegistryCall {
  std::string op;      // "GetManifest", "GetBlobRange", …
  std::string repo;    // empty for Catalog
  std::string ref;     // tag or digest (manifests), digest (blobs)
  int64_t offset = 0;  // GetBlobRange
};

// What the rule decides.
struct Fault {
  // Fail the call with this errno (0: do not fail it).
  int errnum = 0;
  // GetBlobRange: deliver this many bytes, then fail with EIO as a broken transfer (-1: no cut).
  int64_t cut_after = -1;
  // GetBlobRange: flip the bits of the byte at this blob offset if it is delivered (-1: none).
  int64_t corrupt_at = -1;

  static Fault None() { return {}; }
  static Fault Fail(int errnum) { return Fault{errnum, -1, -1}; }
  static Fault CutAfter(int64_t bytes) { return Fault{0, bytes, -1}; }
  static Fault CorruptAt(int64_t offset) { return Fault{0, -1, offset}; }
};

class FailingRegistry : public Registry {
 public:
  using Rule = std::function<Fault(const RegistryCall&)>;

  explicit FailingRegistry(std::shared_ptr<Registry> inner, Rule rule = nullptr)
      : inner_(std::move(inner)), rule_(std::move(rule)) {}

  void SetRule(Rule rule);
  // Calls the rule failed, cut or corrupted.
  int Faults() const;

  const std::string& registry() const override { return inner_->registry(); }
  Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref) override;
  Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref) override;
  Status PutManifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                     const std::string& media_type) override;
  Status DeleteManifest(const std::string& repo, const std::string& ref) override;
  Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                      int64_t length, int64_t size, const ByteSink& sink) override;
  Result<bool> BlobExists(const std::string& repo, const std::string& digest) override;
  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo) override;
  Status PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                 const std::function<size_t(char*, size_t)>& reader) override;
  Result<std::vector<std::string>> ListTags(const std::string& repo) override;
  Result<std::vector<std::string>> Catalog(const std::function<bool()>& stop) override;
  BlobLocationCache* blob_locations() const override { return inner_->blob_locations(); }
  KeyedLocks& blob_locks() override { return inner_->blob_locks(); }

 private:
  // The rule's verdict on a call; counts it when it is a fault.
  Fault Ask(const RegistryCall& call);

  const std::shared_ptr<Registry> inner_;
  mutable std::mutex mu_;
  Rule rule_;       // guarded by mu_
  int faults_ = 0;  // guarded by mu_
};

// A RegistryFactory for the mount core that opens these registries by host name (and fails
// for any other host with ENOENT).
RegistryFactory FactoryOf(std::map<std::string, std::shared_ptr<Registry>> registries);

}  // namespace regfs::testing
