#include "tests/unit/testing/fake_registry.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "transports/util/digest.h"

namespace regfs::testing {
namespace {

Error NotFound(const std::string& what) { return MakeError(ENOENT, what + ": not found"); }

}  // namespace

// ---- FakeRegistry -------------------------------------------------------------------------

void FakeRegistry::Count(const std::string& op) const {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[op];
}

int FakeRegistry::Calls(const std::string& op) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

int64_t FakeRegistry::BlobBytesServed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

std::string FakeRegistry::AddBlob(const std::string& repo, const std::string& bytes) {
  std::string digest = DigestOf(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  blob_data_[digest] = bytes;
  repos_[repo].blobs.insert(digest);
  return digest;
}

std::string FakeRegistry::AddManifest(const std::string& repo, const std::string& tag,
                                      const std::string& bytes, const std::string& media_type) {
  std::string digest = DigestOf(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  Repo& r = repos_[repo];
  r.manifests[digest] = RawManifest{bytes, media_type, digest};
  if (!tag.empty()) r.tags[tag] = digest;
  return digest;
}

std::string FakeRegistry::AddImage(const std::string& repo, const std::string& tag,
                                   const std::vector<std::string>& layers, std::string config) {
  if (config.empty()) config = kDefaultConfig;
  nlohmann::ordered_json m = {{"schemaVersion", 2},
                              {"mediaType", std::string(media::kOciManifest)}};
  m["config"] = {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                 {"digest", AddBlob(repo, config)},
                 {"size", config.size()}};
  m["layers"] = nlohmann::ordered_json::array();
  for (const std::string& layer : layers) {
    m["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                           {"digest", AddBlob(repo, layer)},
                           {"size", layer.size()}});
  }
  return AddManifest(repo, tag, m.dump(), std::string(media::kOciManifest));
}

Result<RawManifest> FakeRegistry::GetManifest(const std::string& repo, const std::string& ref) {
  Count("GetManifest");
  std::lock_guard<std::mutex> lock(mu_);
  auto r = repos_.find(repo);
  if (r == repos_.end()) return NotFound(name_ + "/" + repo + ":" + ref);
  std::string digest = ref;
  if (auto t = r->second.tags.find(ref); t != r->second.tags.end()) digest = t->second;
  auto m = r->second.manifests.find(digest);
  if (m == r->second.manifests.end()) return NotFound(name_ + "/" + repo + ":" + ref);
  return m->second;
}

Result<std::string> FakeRegistry::ResolveDigest(const std::string& repo, const std::string& ref) {
  Count("ResolveDigest");
  std::lock_guard<std::mutex> lock(mu_);
  auto r = repos_.find(repo);
  if (r == repos_.end()) return NotFound(name_ + "/" + repo + ":" + ref);
  if (auto t = r->second.tags.find(ref); t != r->second.tags.end()) return t->second;
  if (r->second.manifests.count(ref)) return ref;
  return NotFound(name_ + "/" + repo + ":" + ref);
}

Status FakeRegistry::PutManifest(const std::string& repo, const std::string& ref,
                                 const std::string& bytes, const std::string& media_type) {
  Count("PutManifest");
  std::string digest = DigestOf(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  Repo& r = repos_[repo];
  r.manifests[digest] = RawManifest{bytes, media_type, digest};
  if (!IsSha256Digest(ref)) r.tags[ref] = digest;
  return Ok();
}

Status FakeRegistry::DeleteManifest(const std::string& repo, const std::string& ref) {
  Count("DeleteManifest");
  std::lock_guard<std::mutex> lock(mu_);
  auto r = repos_.find(repo);
  if (r == repos_.end()) return NotFound(name_ + "/" + repo + ":" + ref);
  if (r->second.tags.erase(ref)) return Ok();
  if (!r->second.manifests.erase(ref)) return NotFound(name_ + "/" + repo + ":" + ref);
  for (auto t = r->second.tags.begin(); t != r->second.tags.end();) {
    t = t->second == ref ? r->second.tags.erase(t) : std::next(t);
  }
  return Ok();
}

Status FakeRegistry::GetBlobRange(const std::string& repo, const std::string& digest,
                                  int64_t offset, int64_t length, int64_t /*size*/,
                                  const ByteSink& sink) {
  Count("GetBlobRange");
  std::string part;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = repos_.find(repo);
    auto b = blob_data_.find(digest);
    if (r == repos_.end() || !r->second.blobs.count(digest) || b == blob_data_.end()) {
      return NotFound("blob " + digest + " in " + name_ + "/" + repo);
    }
    const std::string& all = b->second;
    if (offset > static_cast<int64_t>(all.size())) {
      return MakeError(EINVAL, "range starts past the end of " + digest);
    }
    part = all.substr(static_cast<size_t>(offset),
                      length < 0 ? std::string::npos : static_cast<size_t>(length));
    served_ += static_cast<int64_t>(part.size());
  }
  return part.empty() ? Ok() : sink(part.data(), part.size());
}

Result<bool> FakeRegistry::BlobExists(const std::string& repo, const std::string& digest) {
  Count("BlobExists");
  std::lock_guard<std::mutex> lock(mu_);
  auto r = repos_.find(repo);
  return r != repos_.end() && r->second.blobs.count(digest) > 0;
}

Result<bool> FakeRegistry::MountBlob(const std::string& repo, const std::string& digest,
                                     const std::string& from_repo) {
  Count("MountBlob");
  std::lock_guard<std::mutex> lock(mu_);
  auto from = repos_.find(from_repo);
  if (from == repos_.end() || !from->second.blobs.count(digest)) return false;
  repos_[repo].blobs.insert(digest);
  return true;
}

Status FakeRegistry::PutBlob(const std::string& repo, const UploadDigest& upload_digest,
                             int64_t size, const std::function<size_t(char*, size_t)>& reader) {
  Count("PutBlob");
  std::string digest = upload_digest.Describe();
  std::string bytes;
  char buf[64 << 10];
  while (size < 0 || static_cast<int64_t>(bytes.size()) < size) {
    size_t n = reader(buf, sizeof buf);
    if (n == kAbortUpload) return MakeError(ECANCELED, "upload of " + digest + " abandoned");
    if (n == 0) break;
    bytes.append(buf, n);
  }
  digest = upload_digest.Get();
  if (DigestOf(bytes) != digest) {
    return MakeError(EINVAL, "DIGEST_INVALID: uploaded bytes are not " + digest);
  }
  std::lock_guard<std::mutex> lock(mu_);
  blob_data_[digest] = std::move(bytes);
  repos_[repo].blobs.insert(digest);
  return Ok();
}

Result<std::vector<std::string>> FakeRegistry::ListTags(const std::string& repo) {
  Count("ListTags");
  std::lock_guard<std::mutex> lock(mu_);
  auto r = repos_.find(repo);
  if (r == repos_.end()) return NotFound(name_ + "/" + repo);
  std::vector<std::string> tags;
  for (const auto& [tag, digest] : r->second.tags) tags.push_back(tag);
  return tags;
}

void FakeRegistry::MakeCatalogEndless() {
  std::lock_guard<std::mutex> lock(mu_);
  endless_catalog_ = true;
}

Result<std::vector<std::string>> FakeRegistry::Catalog(const std::function<bool()>& stop) {
  Count("Catalog");
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, repo] : repos_) names.push_back(name);
    if (!endless_catalog_) return names;
  }
  for (int page = 0;; ++page) {
    if (stop && stop())
      return MakeError(ECANCELED, "listing the catalog of " + name_ + ": stopped");
    names.push_back("page" + std::to_string(page));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ---- FailingRegistry ----------------------------------------------------------------------

void FailingRegistry::SetRule(Rule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rule_ = std::move(rule);
}

int FailingRegistry::Faults() const {
  std::lock_guard<std::mutex> lock(mu_);
  return faults_;
}

Fault FailingRegistry::Ask(const RegistryCall& call) {
  Rule rule;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rule = rule_;
  }
  if (!rule) return Fault::None();
  // Asked without the lock: a rule may hold its call (until a test releases it) while other
  // calls go on.
  Fault f = rule(call);
  std::lock_guard<std::mutex> lock(mu_);
  if (f.errnum != 0 || f.cut_after >= 0 || f.corrupt_at >= 0) ++faults_;
  return f;
}

#define REGFS_FAULT_GATE(op, repo, ref)                                                        \
  do {                                                                                         \
    Fault f = Ask(RegistryCall{op, repo, ref, 0});                                             \
    if (f.errnum != 0)                                                                         \
      return MakeError(f.errnum,                                                               \
                       std::string("injected failure of ") + op + " " + (repo) + " " + (ref)); \
  } while (0)

Result<RawManifest> FailingRegistry::GetManifest(const std::string& repo, const std::string& ref) {
  REGFS_FAULT_GATE("GetManifest", repo, ref);
  return inner_->GetManifest(repo, ref);
}

Result<std::string> FailingRegistry::ResolveDigest(const std::string& repo,
                                                   const std::string& ref) {
  REGFS_FAULT_GATE("ResolveDigest", repo, ref);
  return inner_->ResolveDigest(repo, ref);
}

Status FailingRegistry::PutManifest(const std::string& repo, const std::string& ref,
                                    const std::string& bytes, const std::string& media_type) {
  REGFS_FAULT_GATE("PutManifest", repo, ref);
  return inner_->PutManifest(repo, ref, bytes, media_type);
}

Status FailingRegistry::DeleteManifest(const std::string& repo, const std::string& ref) {
  REGFS_FAULT_GATE("DeleteManifest", repo, ref);
  return inner_->DeleteManifest(repo, ref);
}

Status FailingRegistry::GetBlobRange(const std::string& repo, const std::string& digest,
                                     int64_t offset, int64_t length, int64_t size,
                                     const ByteSink& sink) {
  Fault f = Ask(RegistryCall{"GetBlobRange", repo, digest, offset});
  if (f.errnum != 0) {
    return MakeError(f.errnum, "injected failure of GetBlobRange " + repo + " " + digest);
  }
  int64_t pos = offset;
  bool cut = false;
  Status s = inner_->GetBlobRange(
      repo, digest, offset, length, size, [&](const char* data, size_t n) -> Status {
        std::string chunk(data, n);
        if (f.cut_after >= 0 && pos - offset + static_cast<int64_t>(n) > f.cut_after) {
          chunk.resize(static_cast<size_t>(std::max<int64_t>(0, f.cut_after - (pos - offset))));
          cut = true;
        }
        if (f.corrupt_at >= pos && f.corrupt_at < pos + static_cast<int64_t>(chunk.size())) {
          chunk[static_cast<size_t>(f.corrupt_at - pos)] ^= 0xff;
        }
        pos += static_cast<int64_t>(chunk.size());
        if (!chunk.empty()) RETURN_IF_ERROR(sink(chunk.data(), chunk.size()));
        if (cut)
          return MakeError(EIO, "injected cut of " + digest + " at byte " + std::to_string(pos));
        return Ok();
      });
  return s;
}

Result<bool> FailingRegistry::BlobExists(const std::string& repo, const std::string& digest) {
  REGFS_FAULT_GATE("BlobExists", repo, digest);
  return inner_->BlobExists(repo, digest);
}

Result<bool> FailingRegistry::MountBlob(const std::string& repo, const std::string& digest,
                                        const std::string& from_repo) {
  REGFS_FAULT_GATE("MountBlob", repo, digest);
  return inner_->MountBlob(repo, digest, from_repo);
}

Status FailingRegistry::PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                                const std::function<size_t(char*, size_t)>& reader) {
  REGFS_FAULT_GATE("PutBlob", repo, digest.Describe());
  return inner_->PutBlob(repo, digest, size, reader);
}

Result<std::vector<std::string>> FailingRegistry::ListTags(const std::string& repo) {
  REGFS_FAULT_GATE("ListTags", repo, "");
  return inner_->ListTags(repo);
}

Result<std::vector<std::string>> FailingRegistry::Catalog(const std::function<bool()>& stop) {
  REGFS_FAULT_GATE("Catalog", "", "");
  return inner_->Catalog(stop);
}

#undef REGFS_FAULT_GATE

RegistryFactory FactoryOf(std::map<std::string, std::shared_ptr<Registry>> registries) {
  return [registries = std::move(registries)](const std::string& host,
                                              const LogFn&) -> Result<std::shared_ptr<Registry>> {
    auto it = registries.find(host);
    if (it == registries.end()) return MakeError(ENOENT, "no registry " + host + " in this test");
    return it->second;
  };
}

}  // namespace regfs::testing
