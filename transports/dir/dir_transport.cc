#include "transports/dir/dir_transport.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "transports/dir/local_blob.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

// More signatures than this on one manifest is not an image anyone made: refused.
constexpr int kMaxSignatures = 256;

// skopeo's names: signature-N for the top-level manifest, <hex>.signature-N for an instance.
std::string SignatureFile(const std::string& dir, const std::string& manifest_digest,
                          bool is_instance, int n) {
  std::string prefix = is_instance ? std::string(DigestHex(manifest_digest)) + "." : "";
  return dir + "/" + prefix + "signature-" + std::to_string(n);
}

class DirSource final : public ImageSource {
 public:
  explicit DirSource(std::string path) : path_(std::move(path)) {}

  std::string Describe() const override { return "dir:" + path_; }

  Result<RawManifest> GetManifest(const std::string& instance_digest) override {
    std::string file =
        instance_digest.empty()
            ? path_ + "/manifest.json"
            : path_ + "/" + std::string(DigestHex(instance_digest)) + ".manifest.json";
    if (!instance_digest.empty()) RETURN_IF_ERROR(ValidateDigest(instance_digest));
    ASSIGN_OR_RETURN(std::string bytes, ReadFileBounded(file, kMaxManifestSize));
    RawManifest m;
    m.digest = DigestOf(bytes);
    if (!instance_digest.empty() && m.digest != instance_digest) {
      return MakeError(EIO, file + " has digest " + m.digest + ", not " + instance_digest);
    }
    m.media_type = GuessManifestMediaType(bytes);
    m.bytes = std::move(bytes);
    return m;
  }

  Result<std::vector<Signature>> GetSignatures(const std::string& manifest_digest,
                                               bool is_instance) override {
    if (is_instance) RETURN_IF_ERROR(ValidateDigest(manifest_digest));
    std::vector<Signature> sigs;
    for (int n = 1;; ++n) {
      std::string file = SignatureFile(path_, manifest_digest, is_instance, n);
      if (!PathExists(file)) break;
      if (n > kMaxSignatures) {
        return MakeError(
            EFBIG, path_ + " has more than " + std::to_string(kMaxSignatures) + " signatures");
      }
      ASSIGN_OR_RETURN(std::string blob, ReadFileBounded(file, kMaxSignatureSize));
      auto sig = SignatureFromBlob(blob);
      if (!sig.ok()) return Annotate(std::move(sig).error(), "parsing signature " + file);
      sigs.push_back(std::move(*sig));
    }
    return sigs;
  }

  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return StreamFile(path_ + "/" + std::string(DigestHex(blob.digest)), sink);
  }

 private:
  const std::string path_;
};

bool IsEmptyDir(const std::string& path) {
  auto names = ListDir(path);
  return names.ok() && names->empty();
}

class DirDestination final : public ImageDestination {
 public:
  DirDestination(std::string path, std::string staging)
      : path_(std::move(path)), staging_(std::move(staging)) {}

  ~DirDestination() override {
    if (!committed_) (void)RemoveAll(staging_);
  }

  std::string Describe() const override { return "dir:" + path_; }

  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference*) override {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return false;
  }

  // A re-encoded blob (no digest yet) is named when it is committed.
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    auto path_for = [this](const BlobInfo& done) -> Result<std::string> {
      RETURN_IF_ERROR(ValidateDigest(done.digest));
      return staging_ + "/" + std::string(DigestHex(done.digest));
    };
    if (blob.digest.empty()) return FileBlobWriter::Create(staging_ + "/blob", path_for);
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return FileBlobWriter::Create(staging_ + "/" + std::string(DigestHex(blob.digest)));
  }

  Status PutManifest(const RawManifest& m, bool is_instance) override {
    std::string name =
        is_instance ? std::string(DigestHex(m.digest)) + ".manifest.json" : "manifest.json";
    return WriteFileAtomic(staging_ + "/" + name, m.bytes, 0644);
  }

  Status CanStoreSignatures(const std::vector<Signature>&) override { return Ok(); }

  Status PutSignatures(const std::string& manifest_digest, bool is_instance,
                       const std::vector<Signature>& sigs) override {
    if (is_instance) RETURN_IF_ERROR(ValidateDigest(manifest_digest));
    for (size_t i = 0; i < sigs.size(); ++i) {
      RETURN_IF_ERROR(WriteFileAtomic(
          SignatureFile(staging_, manifest_digest, is_instance, static_cast<int>(i) + 1),
          SignatureBlob(sigs[i]), 0644));
    }
    return Ok();
  }

  Status Commit() override {
    RETURN_IF_ERROR(WriteFileAtomic(staging_ + "/version", kDirVersion, 0644));
    if (PathExists(path_) &&
        renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) == 0) {
      // Swapped in one step: no moment without an image at path_. The old one is at staging_.
      committed_ = true;
      (void)RemoveAll(staging_);
      return Ok();
    }
    std::string old;
    if (PathExists(path_)) {
      // An empty directory or an image directory being replaced: move it aside first.
      old = path_ + ".regfs-old-" + std::to_string(getpid()) + "-XXXXXX";
      if (!mkdtemp(old.data())) return SysError("creating", old);
      if (rename(path_.c_str(), (old + "/d").c_str()) != 0) return SysError("moving aside", path_);
    }
    if (rename(staging_.c_str(), path_.c_str()) != 0) {
      Error e = SysError("renaming into place", path_);
      if (!old.empty()) (void)rename((old + "/d").c_str(), path_.c_str());
      return e;
    }
    committed_ = true;
    if (!old.empty()) (void)RemoveAll(old);
    return Ok();
  }

 private:
  const std::string path_;
  const std::string staging_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> NewDirSource(const std::string& path) {
  if (!IsDirectory(path)) {
    errno = PathExists(path) ? ENOTDIR : ENOENT;
    return SysError("opening image directory", path);
  }
  return std::unique_ptr<ImageSource>(new DirSource(path));
}

Result<std::unique_ptr<ImageDestination>> NewDirDestination(const std::string& raw_path) {
  std::string path = raw_path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (PathExists(path)) {
    if (!IsDirectory(path)) {
      return MakeError(ENOTDIR, path + " exists and is not a directory");
    }
    if (!IsEmptyDir(path)) {
      auto version = ReadFileBounded(path + "/version", 1024);
      if (!version.ok() || *version != kDirVersion) {
        return MakeError(EEXIST, path +
                                     ": not a containers image directory, don't want to "
                                     "overwrite important data");
      }
    }
  } else if (!IsDirectory(DirName(path))) {
    errno = ENOENT;
    return SysError("creating image directory in", DirName(path));
  }
  RemoveStaleTemps(path);
  std::string staging = TempPrefix(path) + "XXXXXX";
  if (!mkdtemp(staging.data())) return SysError("creating", staging);
  chmod(staging.c_str(), 0755);
  return std::unique_ptr<ImageDestination>(new DirDestination(path, staging));
}

}  // namespace regfs
