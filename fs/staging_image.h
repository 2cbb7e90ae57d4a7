// StagingImage: an image being written into MNT/<registry>/<repo>/<tag>/ (DESIGN §1, "Writing =
// pushing"). It accepts only dir: layout names; each blob file is checked against its name and
// streamed to the registry while it is written sequentially (and kept in a spill file beside,
// so that out-of-order writes and a failed stream can still be pushed). Once manifest.json and
// everything it references are present — in any order of arrival — the image is pushed through
// the copy pipeline, whose source is this object: blobs already at the registry are skipped and
// the manifest goes last, so no tag exists before the image is complete.
//
// Thread-safe. Finish() may push, and then runs the network requests without holding the lock
// of other staging images.
#pragma once

#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fs/interval_set.h"
#include "transports/registry/registry.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {

class StagingImage final : public ImageSource {
 public:
  StagingImage(std::string registry, std::string repo, std::string tag,
               std::shared_ptr<Registry> client, std::string spill_dir);
  ~StagingImage() override = default;  // files are dropped with their uploads and spills

  // EINVAL, with the reason, for a name the dir: layout does not have.
  static Status CheckName(const std::string& name);

  // Creates (or truncates) a file.
  Status Create(const std::string& name);
  Result<size_t> Write(const std::string& name, const char* data, size_t n, int64_t off);
  // Ends a file's writing: checks it (a blob against its name, version's content, a manifest's
  // size limit), finishes its upload, and pushes the image when it is complete. Returns the
  // push's result to the close() that completed the image.
  Status Finish(const std::string& name);
  // The blob `name` arrived at the registry by other means (a cross-repository mount, or a
  // server-side copy from another registry): it needs no bytes.
  Status Adopt(const std::string& name);
  // Server-side copy of blob `name` from `src` through the copy pipeline: nothing when the
  // registry has it, a cross-repository mount on one registry, else streamed registry to
  // registry and verified. The blob is then adopted.
  Status CopyFrom(const std::string& name, ImageSource& src, const BlobInfo& blob);
  Status Remove(const std::string& name);

  bool Has(const std::string& name) const;
  int64_t Size(const std::string& name) const;
  std::vector<std::string> Names() const;
  Result<std::string> ReadSmall(const std::string& name) const;
  // True once the current manifest.json has been pushed.
  bool pushed() const;
  // Pushed, no file of it open, and untouched for `idle_ms`: its directory can show the image
  // at the registry again. Until then the directory shows what was written, so that a copy
  // still under way (cp, mv) finds its own files and none of the pushed image's.
  bool Settled(int64_t idle_ms) const;
  void OpenFile();
  void CloseFile();

  const std::string& registry() const { return registry_; }
  const std::string& repo() const { return repo_; }
  const std::string& tag() const { return tag_; }

  // ImageSource, for the push.
  std::string Describe() const override;
  Result<RawManifest> GetManifest(const std::string& instance_digest) override;
  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override;

 private:
  struct File {
    File() = default;
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    // A file dropped before its upload completed: the upload is aborted, the spill removed.
    ~File() {
      upload.reset();
      if (!spill_path.empty()) unlink(spill_path.c_str());
    }
    std::string bytes;  // manifests, version, signatures
    bool is_blob = false;
    std::string digest;  // blobs and instance manifests: from the name
    int64_t size = 0;    // bytes written (the extent)
    bool finished = false;
    bool adopted = false;  // at the registry without our bytes
    // Blobs:
    UniqueFd spill;
    std::string spill_path;
    bool sequential = true;  // every write so far came at the end
    std::unique_ptr<Sha256> hash;
    std::unique_ptr<BlobWriter> upload;  // streaming while sequential; null once failed
    bool already_there = false;          // the registry had it when writing began
  };

  Result<File*> Find(const std::string& name);
  // What the current manifest.json still needs; empty when the image is complete.
  Result<std::vector<std::string>> MissingLocked();
  Status Push();

  const std::string registry_, repo_, tag_;
  const std::shared_ptr<Registry> client_;
  const std::string spill_dir_;
  std::unique_ptr<ImageDestination> dest_;

  mutable std::mutex mu_;
  std::map<std::string, File> files_;      // guarded by mu_
  std::set<std::string> at_registry_;      // digests seen at the registry, guarded by mu_
  std::set<std::string> not_at_registry_;  // … and not, for this manifest, guarded by mu_
  bool pushed_ = false;                    // guarded by mu_
  int open_files_ = 0;                     // guarded by mu_
  std::chrono::steady_clock::time_point touched_ = std::chrono::steady_clock::now();  // mu_
  std::mutex push_mu_;  // one push at a time
};

}  // namespace regfs
