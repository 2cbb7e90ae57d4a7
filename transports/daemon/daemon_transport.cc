#include "transports/daemon/daemon_transport.h"

#include <thread>

#include "transports/archive/archive_sink.h"
#include "transports/archive/docker_archive.h"
#include "transports/util/file_util.h"
#include "transports/util/upload_pipe.h"

namespace regfs {
namespace {

static_assert(UploadPipe::kAborted == HttpRequest::kAbortUpload);

// What the engine is asked for: the image ID, or the name as the docker CLI writes it.
std::string EngineName(const ImageReference& ref) {
  return ref.daemon_image_id.empty() ? FamiliarString(ref.docker) : ref.daemon_image_id;
}

// The archive's bytes, into the body of POST /images/load as they come: the upload runs on a
// thread of its own, fed through a pipe; Commit() ends the body and waits for the engine's
// verdict. Destroyed without Commit(), the upload is broken off mid-body.
class LoadSink final : public ArchiveSink {
 public:
  explicit LoadSink(std::shared_ptr<DaemonClient> client) : client_(std::move(client)), pipe_(-1) {
    upload_ = std::thread([this] {
      upload_status_ =
          client_->LoadImage([this](char* out, size_t n) { return pipe_.Read(out, n); });
      pipe_.ReaderGone();
    });
  }

  ~LoadSink() override {
    if (upload_.joinable()) {
      pipe_.Abort();
      upload_.join();
    }
  }

  Status Write(const char* data, size_t n) override {
    Status s = pipe_.Write(data, n);
    if (!s.ok()) {
      // The engine stopped reading: its answer says why.
      if (upload_.joinable()) upload_.join();
      return upload_status_.ok() ? s : upload_status_;
    }
    return s;
  }

  Status Commit() override {
    pipe_.Commit();
    if (upload_.joinable()) upload_.join();
    return upload_status_;
  }

 private:
  const std::shared_ptr<DaemonClient> client_;
  UploadPipe pipe_;
  Status upload_status_ = Ok();  // written by the upload thread before it ends
  std::thread upload_;
};

// A docker-archive: destination that keeps layers as they come: the engine decompresses what
// it loads itself, so the copy need not (containers/image's daemon destination preserves them
// too, where its docker-archive: one decompresses).
class DaemonDestination final : public ImageDestination {
 public:
  explicit DaemonDestination(std::unique_ptr<ImageDestination> archive)
      : archive_(std::move(archive)) {}

  std::string Describe() const override { return archive_->Describe(); }
  LayerCompression DesiredLayerCompression() const override { return LayerCompression::kPreserve; }
  bool SerialBlobs() const override { return archive_->SerialBlobs(); }
  std::shared_ptr<void> LockBlob(const BlobInfo& blob) override { return archive_->LockBlob(blob); }
  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* source) override {
    return archive_->TryReuseBlob(blob, source);
  }
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    return archive_->NewBlobWriter(blob);
  }
  Status PutManifest(const RawManifest& manifest, bool is_instance) override {
    return archive_->PutManifest(manifest, is_instance);
  }
  Status CanStoreSignatures(const std::vector<Signature>& sigs) override {
    return archive_->CanStoreSignatures(sigs);
  }
  Status PutSignatures(const std::string& manifest_digest, bool is_instance,
                       const std::vector<Signature>& sigs) override {
    return archive_->PutSignatures(manifest_digest, is_instance, sigs);
  }
  Status Commit() override { return archive_->Commit(); }

 private:
  const std::unique_ptr<ImageDestination> archive_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> NewDaemonSource(const ImageReference& ref,
                                                     std::shared_ptr<DaemonClient> client) {
  ASSIGN_OR_RETURN(UniqueFd file, NewUnlinkedTempFile("regfs-docker-save"));
  const std::string name = EngineName(ref);
  int64_t written = 0;
  const ByteSink to_file = [&](const char* data, size_t n) -> Status {
    RETURN_IF_ERROR(WriteAll(file.get(), data, n, "the temporary copy of " + ref.String()));
    written += static_cast<int64_t>(n);
    return Ok();
  };
  RETURN_IF_ERROR(client->SaveImage(name, to_file));
  if (written == 0) {
    return MakeError(EIO,
                     "the Docker daemon at " + client->host().given + " sent nothing for " + name);
  }
  // One image, whatever it is tagged: ImageSave was asked for exactly one.
  return NewDockerArchiveSource(std::move(file), ref.String(), "", -1);
}

Result<std::unique_ptr<ImageDestination>> NewDaemonDestination(
    const ImageReference& ref, std::shared_ptr<DaemonClient> client) {
  if (!ref.daemon_image_id.empty() || ref.docker.tag.empty()) {
    return MakeError(EINVAL,
                     "invalid destination " + ref.String() + ": a destination must be a name:tag");
  }
  // An engine that isn't there fails the copy before anything is read from the source.
  RETURN_IF_ERROR(client->Ping());
  ASSIGN_OR_RETURN(std::unique_ptr<ImageDestination> archive,
                   NewDockerArchiveDestination(std::make_unique<LoadSink>(std::move(client)),
                                               ref.docker, ref.String()));
  return std::unique_ptr<ImageDestination>(new DaemonDestination(std::move(archive)));
}

}  // namespace regfs
