#include "transports/archive/oci_archive.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "transports/archive/archive_sink.h"
#include "transports/archive/tar_archive.h"
#include "transports/archive/tar_writer.h"
#include "transports/oci/oci_transport.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr size_t kChunk = 1 << 20;

class TarLayoutFiles final : public OciLayoutFiles {
 public:
  explicit TarLayoutFiles(std::shared_ptr<const TarArchive> archive)
      : archive_(std::move(archive)) {}

  Result<std::string> ReadFile(const std::string& name, int64_t max) const override {
    return archive_->ReadFile(name, max);
  }

  Status StreamFile(const std::string& name, const ByteSink& sink) const override {
    ASSIGN_OR_RETURN(const TarArchive::Member* m, archive_->FindFile(name));
    ASSIGN_OR_RETURN(std::unique_ptr<TarInput> in, archive_->OpenData(*m));
    std::vector<char> buf(kChunk);
    while (true) {
      ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
      if (n == 0) return Ok();
      RETURN_IF_ERROR(sink(buf.data(), n));
    }
  }

 private:
  const std::shared_ptr<const TarArchive> archive_;
};

// Appends the file at `path` to the tar as `name`.
Status TarFile(TarWriter& tar, const std::string& path, const std::string& name) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("opening", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return SysError("stat", path);
  RETURN_IF_ERROR(tar.WriteHeader(TarHeader{name, "", '0', 0644, st.st_size}));
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(kChunk);
  for (int64_t left = st.st_size; left > 0;) {
    ssize_t n = read(fd.get(), buf.data(), std::min<size_t>(buf.size(), left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SysError("reading", path);
    RETURN_IF_ERROR(tar.WriteData(buf.data(), static_cast<size_t>(n)));
    left -= n;
  }
  return Ok();
}

// The layout in `dir` as a tar: directories, then files, in name order (as a directory walk
// writes them), with fixed times and owners so that the same image gives the same bytes.
Status TarLayout(const std::string& dir, ArchiveSink& out) {
  TarWriter tar([&](const char* data, size_t n) { return out.Write(data, n); });
  RETURN_IF_ERROR(tar.WriteHeader(TarHeader{"blobs/", "", '5', 0755, 0}));
  RETURN_IF_ERROR(tar.WriteHeader(TarHeader{"blobs/sha256/", "", '5', 0755, 0}));
  ASSIGN_OR_RETURN(std::vector<std::string> blobs, ListDir(dir + "/blobs/sha256"));
  for (const std::string& b : blobs) {
    RETURN_IF_ERROR(TarFile(tar, dir + "/blobs/sha256/" + b, "blobs/sha256/" + b));
  }
  RETURN_IF_ERROR(TarFile(tar, dir + "/index.json", "index.json"));
  RETURN_IF_ERROR(TarFile(tar, dir + "/oci-layout", "oci-layout"));
  RETURN_IF_ERROR(tar.Finish());
  return out.Commit();
}

class OciArchiveDestination final : public ImageDestination {
 public:
  OciArchiveDestination(std::string path, std::string ref, std::string tmpdir,
                        std::unique_ptr<ImageDestination> layout)
      : path_(std::move(path)),
        ref_(std::move(ref)),
        tmpdir_(std::move(tmpdir)),
        layout_(std::move(layout)) {}

  ~OciArchiveDestination() override {
    layout_.reset();
    (void)RemoveAll(tmpdir_);
  }

  std::string Describe() const override {
    return "oci-archive:" + path_ + (ref_.empty() ? "" : ":" + ref_);
  }
  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* from) override {
    return layout_->TryReuseBlob(blob, from);
  }
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    return layout_->NewBlobWriter(blob);
  }
  Status PutManifest(const RawManifest& m, bool is_instance) override {
    return layout_->PutManifest(m, is_instance);
  }
  Status Commit() override {
    RETURN_IF_ERROR(layout_->Commit());
    ASSIGN_OR_RETURN(std::unique_ptr<ArchiveSink> out, NewFileArchiveSink(path_));
    return TarLayout(tmpdir_ + "/layout", *out);
  }

 private:
  const std::string path_;
  const std::string ref_;
  const std::string tmpdir_;
  std::unique_ptr<ImageDestination> layout_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> NewOciArchiveSource(const std::string& path,
                                                         const std::string& ref) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("opening OCI archive", path);
  std::string desc = "oci-archive:" + path + (ref.empty() ? "" : ":" + ref);
  ASSIGN_OR_RETURN(std::shared_ptr<const TarArchive> archive,
                   TarArchive::Open(std::move(fd), desc));
  return NewOciSource(std::make_shared<TarLayoutFiles>(std::move(archive)), desc, ref);
}

Result<std::unique_ptr<ImageDestination>> NewOciArchiveDestination(const std::string& path,
                                                                   const std::string& ref) {
  if (IsDirectory(path)) return MakeError(EISDIR, "oci-archive:" + path + " is a directory");
  // Beside the archive: on its filesystem, so the space it needs is where the archive goes.
  RemoveStaleTemps(path);
  std::string tmpdir = TempPrefix(path) + "XXXXXX";
  if (!mkdtemp(tmpdir.data())) return SysError("creating a temporary directory", tmpdir);
  auto layout = NewOciDestination(tmpdir + "/layout", ref);
  if (!layout.ok()) {
    (void)RemoveAll(tmpdir);
    return std::move(layout).error();
  }
  return std::unique_ptr<ImageDestination>(
      new OciArchiveDestination(path, ref, tmpdir, std::move(*layout)));
}

}  // namespace regfs
