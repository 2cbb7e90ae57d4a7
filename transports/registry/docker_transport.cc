#include "transports/registry/docker_transport.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "transports/signature/sigstore.h"
#include "transports/util/digest.h"

namespace regfs {

namespace {

// A blob of at most `max` bytes, whole, into memory (signature payloads and configs).
Result<std::string> GetSmallBlob(Registry& client, const std::string& repo,
                                 const std::string& digest, int64_t size, int64_t max) {
  if (size > max) {
    return MakeError(EFBIG, "blob " + digest + " of " + std::to_string(size) +
                                " bytes is over the " + std::to_string(max) + "-byte limit");
  }
  std::string bytes;
  RETURN_IF_ERROR(
      client.GetBlobRange(repo, digest, 0, -1, size, [&](const char* data, size_t n) -> Status {
        if (static_cast<int64_t>(bytes.size() + n) > max) {
          return MakeError(EFBIG, "blob " + digest + " is over the limit");
        }
        bytes.append(data, n);
        return Ok();
      }));
  return bytes;
}

// Cache entries tried per blob before it is checked and uploaded.
constexpr int kMaxMountTries = 3;

// Whether `repo` has the blob now, mounting it from where it is known to be on this registry
// (the source, else the blob location cache's most recent places), else asking the repository.
Result<bool> ReuseBlob(Registry& client, const std::string& repo, const std::string& digest,
                       const DockerReference* source) {
  const std::string& registry = client.registry();
  BlobLocationCache* known = client.blob_locations();
  std::vector<std::string> places;
  if (known) places = known->Repositories(registry, digest);
  if (std::find(places.begin(), places.end(), repo) != places.end()) {
    // Here already, as far as we know: a HEAD, not a mount. A mount of a blob the repository
    // has rewrites its link, and docker-registry then refuses a manifest pushed at that
    // moment (another tag's) for a blob it can't see (MANIFEST_BLOB_UNKNOWN).
    ASSIGN_OR_RETURN(bool here, client.BlobExists(repo, digest));
    if (here) return true;
    known->Forget(registry, repo, digest);
  }
  // On one registry a mount answers both questions (present already, or mountable) at once.
  if (source && source->registry == registry && source->repository != repo) {
    ASSIGN_OR_RETURN(bool mounted, client.MountBlob(repo, digest, source->repository));
    if (mounted) return true;
  }
  int tries = 0;
  for (const std::string& from : places) {
    if (from == repo || (source && source->registry == registry && source->repository == from)) {
      continue;
    }
    if (++tries > kMaxMountTries) break;
    ASSIGN_OR_RETURN(bool mounted, client.MountBlob(repo, digest, from));
    if (mounted) return true;
    known->Forget(registry, from, digest);  // wrong: it cost one request
  }
  return client.BlobExists(repo, digest);
}

// Uploads a blob held in memory.
Status PutSmallBlob(Registry& client, const std::string& repo, const std::string& digest,
                    const std::string& bytes) {
  size_t at = 0;
  RETURN_IF_ERROR(
      client.PutBlob(repo, digest, static_cast<int64_t>(bytes.size()), [&](char* out, size_t n) {
        size_t take = std::min(n, bytes.size() - at);
        std::memcpy(out, bytes.data() + at, take);
        at += take;
        return take;
      }));
  if (BlobLocationCache* known = client.blob_locations()) {
    known->Record(client.registry(), repo, digest);
  }
  return Ok();
}

// The attachment manifest, or nullopt when there is none.
Result<std::optional<RawManifest>> GetAttachment(Registry& client, const std::string& repo,
                                                 const std::string& manifest_digest) {
  RETURN_IF_ERROR(ValidateDigest(manifest_digest));
  auto m = client.GetManifest(repo, SigstoreAttachmentTag(manifest_digest));
  if (!m.ok()) {
    if (m.error().errnum == ENOENT) return std::optional<RawManifest>();
    return Annotate(std::move(m).error(), "reading the signatures of " + manifest_digest);
  }
  return std::optional<RawManifest>(std::move(*m));
}

}  // namespace

Result<std::vector<Signature>> ReadSigstoreAttachment(Registry& client, const std::string& repo,
                                                      const std::string& manifest_digest) {
  ASSIGN_OR_RETURN(std::optional<RawManifest> att, GetAttachment(client, repo, manifest_digest));
  if (!att) return std::vector<Signature>{};
  auto sigs = SignaturesFromAttachment(att->bytes, [&](const std::string& digest, int64_t size) {
    return GetSmallBlob(client, repo, digest, size, kMaxSignatureSize);
  });
  if (!sigs.ok()) {
    return Annotate(std::move(sigs).error(),
                    "reading attachment " + SigstoreAttachmentTag(manifest_digest));
  }
  return sigs;
}

Status WriteSigstoreAttachment(Registry& client, const std::string& repo,
                               const std::string& manifest_digest,
                               const std::vector<Signature>& sigs) {
  if (sigs.empty()) return Ok();
  ASSIGN_OR_RETURN(std::optional<RawManifest> att, GetAttachment(client, repo, manifest_digest));
  ASSIGN_OR_RETURN(Attachment next, AppendToAttachment(att ? att->bytes : std::string(), sigs));
  if (!next.changed) return Ok();
  for (const auto& [digest, bytes] : next.blobs) {
    RETURN_IF_ERROR(PutSmallBlob(client, repo, digest, bytes));
  }
  // The empty config: in the repository already after its first signature, and mounted from
  // another one the blob location cache knows; uploaded only when neither has it.
  ASSIGN_OR_RETURN(bool there, ReuseBlob(client, repo, kEmptyConfigDigest, nullptr));
  if (!there) RETURN_IF_ERROR(PutSmallBlob(client, repo, kEmptyConfigDigest, kEmptyConfig));
  return client.PutManifest(repo, SigstoreAttachmentTag(manifest_digest), next.manifest,
                            std::string(media::kOciManifest));
}

namespace {

class DockerSource final : public ImageSource {
 public:
  DockerSource(DockerReference ref, std::shared_ptr<Registry> client,
               DockerSignatureStorage signatures)
      : ref_(std::move(ref)), client_(std::move(client)), signatures_(std::move(signatures)) {}

  std::string Describe() const override { return "docker://" + ref_.String(); }

  Result<RawManifest> GetManifest(const std::string& instance_digest) override {
    return client_->GetManifest(ref_.repository,
                                instance_digest.empty() ? ref_.ManifestRef() : instance_digest);
  }

  Result<std::vector<Signature>> GetSignatures(const std::string& manifest_digest, bool) override {
    std::vector<Signature> sigs;
    if (signatures_.read_lookaside) {
      ASSIGN_OR_RETURN(sigs, signatures_.read_lookaside(manifest_digest));
    }
    if (signatures_.attachments) {
      ASSIGN_OR_RETURN(std::vector<Signature> attached,
                       ReadSigstoreAttachment(*client_, ref_.repository, manifest_digest));
      for (Signature& sig : attached) sigs.push_back(std::move(sig));
    }
    return sigs;
  }

  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    RETURN_IF_ERROR(client_->GetBlobRange(ref_.repository, blob.digest, 0, -1, blob.size, sink));
    if (BlobLocationCache* known = client_->blob_locations()) {
      known->Record(ref_.registry, ref_.repository, blob.digest);
    }
    return Ok();
  }

  const DockerReference* RegistryLocation() const override { return &ref_; }

  Result<std::string> ManifestDigest() override {
    return client_->ResolveDigest(ref_.repository, ref_.ManifestRef());
  }

 private:
  const DockerReference ref_;
  const std::shared_ptr<Registry> client_;
  const DockerSignatureStorage signatures_;
};

// A bounded byte pipe from the pipeline's Write() calls to the upload's read callback. The
// reader never receives the blob's last byte (or, when the size is unknown, its end) before
// Commit(): the upload can't complete until the writer has verified the digest.
class UploadPipe {
 public:
  // A blob smaller than the capacity gets a buffer of its size: many small uploads at once
  // (a sync's configs and layers) don't each hold the whole capacity.
  explicit UploadPipe(int64_t size)
      : size_(size),
        buf_(size >= 0 ? static_cast<size_t>(std::clamp<int64_t>(size, 1, kCapacity)) : kCapacity) {
  }

  // Blocks while the pipe is full. Fails once the reader has stopped.
  Status Write(const char* data, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    while (n > 0) {
      cv_.wait(lock, [&] { return count_ < buf_.size() || reader_gone_; });
      if (reader_gone_) return MakeError(EIO, "upload ended early");
      size_t tail = (head_ + count_) % buf_.size();
      size_t take = std::min({n, buf_.size() - count_, buf_.size() - tail});
      std::memcpy(buf_.data() + tail, data, take);
      count_ += take;
      data += take;
      n -= take;
      cv_.notify_all();
    }
    return Ok();
  }

  // The upload's read callback.
  size_t Read(char* out, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (aborted_) return kAbortUpload;
      size_t avail = count_;
      // Hold back the final byte until the blob is verified.
      if (size_ >= 0 && !committed_ && delivered_ + static_cast<int64_t>(avail) >= size_ &&
          avail > 0) {
        avail = static_cast<size_t>(std::max<int64_t>(0, size_ - 1 - delivered_));
      }
      if (avail > 0) {
        size_t take = std::min({n, avail, buf_.size() - head_});
        std::memcpy(out, buf_.data() + head_, take);
        head_ = (head_ + take) % buf_.size();
        count_ -= take;
        delivered_ += static_cast<int64_t>(take);
        cv_.notify_all();
        return take;
      }
      if (size_ >= 0 ? delivered_ >= size_ : committed_) return 0;  // the end
      cv_.wait(lock);
    }
  }

  void Commit() {
    std::lock_guard<std::mutex> lock(mu_);
    committed_ = true;
    cv_.notify_all();
  }
  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  void ReaderGone() {
    std::lock_guard<std::mutex> lock(mu_);
    reader_gone_ = true;
    cv_.notify_all();
  }

 private:
  static constexpr size_t kCapacity = 512 << 10;
  const int64_t size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> buf_;
  size_t head_ = 0, count_ = 0;  // guarded by mu_
  int64_t delivered_ = 0;        // guarded by mu_
  bool committed_ = false, aborted_ = false, reader_gone_ = false;
};

// Streams one blob to the registry: the upload runs on its own thread, fed by the pipe. A blob
// re-encoded on its way (digest "" and size -1) is sent as a chunked PATCH and named by the
// closing PUT, with the digest Commit() hands over.
class DockerBlobWriter final : public BlobWriter {
 public:
  DockerBlobWriter(std::shared_ptr<Registry> client, DockerReference ref, BlobInfo blob)
      : client_(std::move(client)), pipe_(blob.digest.empty() ? -1 : blob.size) {
    upload_ = std::thread([this, ref = std::move(ref), blob = std::move(blob)] {
      UploadDigest digest = blob.digest.empty()
                                ? UploadDigest::AtEnd([this] { return committed_.digest; })
                                : UploadDigest(blob.digest);
      int64_t size = blob.digest.empty() ? -1 : blob.size;
      upload_status_ = client_->PutBlob(ref.repository, digest, size,
                                        [this](char* out, size_t n) { return pipe_.Read(out, n); });
      pipe_.ReaderGone();
      if (upload_status_.ok()) {
        if (BlobLocationCache* known = client_->blob_locations()) {
          known->Record(ref.registry, ref.repository, digest.Get());
        }
      }
    });
  }

  ~DockerBlobWriter() override {
    if (upload_.joinable()) {
      pipe_.Abort();
      upload_.join();
    }
  }

  Status Write(const char* data, size_t n) override {
    Status s = pipe_.Write(data, n);
    if (!s.ok()) {
      if (upload_.joinable()) upload_.join();
      return upload_status_.ok() ? s : upload_status_;
    }
    return s;
  }

  Status Commit(const BlobInfo& blob) override {
    committed_ = blob;  // read by the upload thread once the pipe says the end was reached
    pipe_.Commit();
    if (upload_.joinable()) upload_.join();
    return upload_status_;
  }

 private:
  const std::shared_ptr<Registry> client_;
  UploadPipe pipe_;
  BlobInfo committed_;           // written before pipe_.Commit(), read after its end
  Status upload_status_ = Ok();  // written by the upload thread before it ends
  std::thread upload_;
};

class DockerDestination final : public ImageDestination {
 public:
  DockerDestination(DockerReference ref, std::shared_ptr<Registry> client,
                    DockerSignatureStorage signatures)
      : ref_(std::move(ref)), client_(std::move(client)), signatures_(std::move(signatures)) {}

  std::string Describe() const override { return "docker://" + ref_.String(); }

  // With a blob location cache, by digest alone, across the registry's repositories: of
  // several images sharing a blob (the tags and repositories of one sync), one uploads it and
  // the others then mount it from where the cache says it went. Without one they could not
  // find it, so only pushes into one repository wait for each other.
  std::shared_ptr<void> LockBlob(const BlobInfo& blob) override {
    std::string key = client_->blob_locations() ? blob.digest : ref_.repository + "@" + blob.digest;
    return std::make_shared<KeyedLocks::Guard>(client_->blob_locks().Lock(key));
  }

  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* source) override {
    ASSIGN_OR_RETURN(bool reused, ReuseBlob(*client_, ref_.repository, blob.digest, source));
    if (reused) Known(blob.digest);
    return reused;
  }

  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    return std::unique_ptr<BlobWriter>(new DockerBlobWriter(client_, ref_, blob));
  }

  // As containers/image's registry destination: uncompressed layers are pushed compressed.
  LayerCompression DesiredLayerCompression() const override { return LayerCompression::kCompress; }

  Status PutManifest(const RawManifest& m, bool is_instance) override {
    std::string ref = is_instance ? m.digest : ref_.ManifestRef();
    if (!is_instance && !ref_.digest.empty() && ref_.digest != m.digest) {
      return MakeError(EINVAL, "the manifest's digest " + m.digest + " differs from the " +
                                   "destination reference's " + ref_.digest);
    }
    return client_->PutManifest(ref_.repository, ref, m.bytes, m.media_type);
  }

  Status CanStoreSignatures(const std::vector<Signature>& sigs) override {
    for (const Signature& sig : sigs) {
      if (sig.format == Signature::Format::kSigstore && !signatures_.attachments) {
        return MakeError(EOPNOTSUPP, "writing sigstore attachments to " + ref_.Name() +
                                         " is disabled by configuration (registries.d)");
      }
      if (sig.format == Signature::Format::kSimpleSigning && !signatures_.write_lookaside) {
        return MakeError(EOPNOTSUPP,
                         "GPG signatures can't be stored in a registry, and no lookaside "
                         "storage is configured for " +
                             ref_.Name() + " (registries.d)");
      }
    }
    return Ok();
  }

  Status PutSignatures(const std::string& manifest_digest, bool,
                       const std::vector<Signature>& sigs) override {
    RETURN_IF_ERROR(CanStoreSignatures(sigs));
    std::vector<Signature> sigstore, simple;
    for (const Signature& sig : sigs) {
      (sig.format == Signature::Format::kSigstore ? sigstore : simple).push_back(sig);
    }
    if (!simple.empty()) RETURN_IF_ERROR(signatures_.write_lookaside(manifest_digest, simple));
    return WriteSigstoreAttachment(*client_, ref_.repository, manifest_digest, sigstore);
  }

  Status Commit() override { return Ok(); }

 private:
  void Known(const std::string& digest) const {
    if (BlobLocationCache* known = client_->blob_locations()) {
      known->Record(ref_.registry, ref_.repository, digest);
    }
  }

  const DockerReference ref_;
  const std::shared_ptr<Registry> client_;
  const DockerSignatureStorage signatures_;
};

}  // namespace

std::unique_ptr<ImageSource> NewDockerSource(DockerReference ref, std::shared_ptr<Registry> client,
                                             DockerSignatureStorage signatures) {
  return std::make_unique<DockerSource>(std::move(ref), std::move(client), std::move(signatures));
}

std::unique_ptr<ImageDestination> NewDockerDestination(DockerReference ref,
                                                       std::shared_ptr<Registry> client,
                                                       DockerSignatureStorage signatures) {
  return std::make_unique<DockerDestination>(std::move(ref), std::move(client),
                                             std::move(signatures));
}

}  // namespace regfs
