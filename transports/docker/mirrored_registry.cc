#include "transports/docker/mirrored_registry.h"

#include <optional>

#include "transports/docker/try_in_order.h"

namespace regfs {
namespace {

class MirroredRegistry final : public Registry {
 public:
  MirroredRegistry(std::shared_ptr<Registry> origin, std::shared_ptr<const RegistriesConf> conf,
                   PullSourceClient client_for, LogFn log)
      : origin_(std::move(origin)),
        conf_(std::move(conf)),
        client_for_(std::move(client_for)),
        log_(std::move(log)) {}

  const std::string& registry() const override { return origin_->registry(); }
  Registry& Origin() override { return *origin_; }
  BlobLocationCache* blob_locations() const override { return origin_->blob_locations(); }
  KeyedLocks& blob_locks() override { return origin_->blob_locks(); }

  // ---- Pulls: the places in order -----------------------------------------------------------

  Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref) override {
    return Pull(repo, ref, [&](Registry& r, const DockerReference& at) {
      return r.GetManifest(at.repository, at.ManifestRef());
    });
  }

  Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref) override {
    return Pull(repo, ref, [&](Registry& r, const DockerReference& at) {
      return r.ResolveDigest(at.repository, at.ManifestRef());
    });
  }

  Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                      int64_t length, int64_t size, const ByteSink& sink) override {
    // A place that fails after delivering bytes hands over where it stopped: the bytes are
    // the digest's wherever they come from (and checked against it above).
    int64_t delivered = 0;
    std::optional<Error> sink_error;  // the reader stopped: no other place is asked
    const ByteSink counted = [&](const char* data, size_t n) -> Status {
      Status s = sink(data, n);
      if (!s.ok()) {
        sink_error = s.error();
        return s;
      }
      delivered += static_cast<int64_t>(n);
      return s;
    };
    return Pull(repo, digest, [&](Registry& r, const DockerReference& at) -> Status {
      if (sink_error) return *sink_error;
      if (length >= 0 && delivered == length) return Ok();
      return r.GetBlobRange(at.repository, digest, offset + delivered,
                            length < 0 ? -1 : length - delivered, size, counted);
    });
  }

  // Tags as a tag is pulled: the tree lists those that a lookup of a tag resolves.
  Result<std::vector<std::string>> ListTags(const std::string& repo) override {
    return Pull(repo, "latest",
                [&](Registry& r, const DockerReference& at) { return r.ListTags(at.repository); });
  }

  // ---- Writes, and what decides them: the origin ------------------------------------------

  Status PutManifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                     const std::string& media_type) override {
    RETURN_IF_ERROR(WritableRepo(repo));
    return origin_->PutManifest(repo, ref, bytes, media_type);
  }

  Status DeleteManifest(const std::string& repo, const std::string& ref) override {
    RETURN_IF_ERROR(WritableRepo(repo));
    return origin_->DeleteManifest(repo, ref);
  }

  Result<bool> BlobExists(const std::string& repo, const std::string& digest) override {
    RETURN_IF_ERROR(WritableRepo(repo));
    return origin_->BlobExists(repo, digest);
  }

  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo) override {
    RETURN_IF_ERROR(WritableRepo(repo));
    return origin_->MountBlob(repo, digest, from_repo);
  }

  Status PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                 const std::function<size_t(char*, size_t)>& reader) override {
    RETURN_IF_ERROR(WritableRepo(repo));
    return origin_->PutBlob(repo, digest, size, reader);
  }

  // The host's own catalog: mirrors serve images, not a listing of the origin.
  Result<std::vector<std::string>> Catalog(const std::function<bool()>& stop) override {
    return origin_->Catalog(stop);
  }

 private:
  Status WritableRepo(const std::string& repo) const {
    return conf_->CheckNotBlocked(registry() + "/" + repo);
  }

  // attempt(client, reference at that place) at each place `repo` with `ref` (a tag, or a
  // digest) is pulled from, in order.
  template <class F>
  std::invoke_result_t<F, Registry&, const DockerReference&> Pull(const std::string& repo,
                                                                  const std::string& ref,
                                                                  F&& attempt) {
    DockerReference wanted{registry(), repo, "", "", false};
    (ref.find(':') == std::string::npos ? wanted.tag : wanted.digest) = ref;
    ASSIGN_OR_RETURN(std::vector<PullSource> places, conf_->PullSources(wanted));
    return TryInOrder(
        places.size(),
        [&](size_t i) {
          const PullSource& place = places[i];
          return attempt(*client_for_(place), place.ref);
        },
        [&](size_t i) { return places[i].ref.String(); }, log_);
  }

  const std::shared_ptr<Registry> origin_;
  const std::shared_ptr<const RegistriesConf> conf_;
  const PullSourceClient client_for_;
  const LogFn log_;
};

}  // namespace

std::shared_ptr<Registry> NewMirroredRegistry(std::shared_ptr<Registry> origin,
                                              std::shared_ptr<const RegistriesConf> conf,
                                              PullSourceClient client_for, LogFn log) {
  return std::make_shared<MirroredRegistry>(std::move(origin), std::move(conf),
                                            std::move(client_for), std::move(log));
}

}  // namespace regfs
