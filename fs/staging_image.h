// StagingImage: an image being written into MNT/<registry>/<repo>/<tag>/ (DESIGN §1, "Writing =
// pushing"). It accepts only dir: layout names; each blob file is checked against its name and
// streamed to the registry while it is written sequentially (and kept in a spill file beside,
// so that out-of-order writes and a failed stream can still be pushed). Once manifest.json and
// everything it references are present — in any order of arrival — the image is pushed through
// the copy pipeline, whose source is this object: blobs already at the registry are skipped and
// the manifest goes last, so no tag exists before the image is complete. signature-N files go
// with it, as the pushed manifest's sigstore attachment (stored before the manifest): one that
// is not a valid signature fails its close() and holds the push until written again; one closed
// after the push is added to the pushed manifest's attachment. A failed cp leaves no tag: a file
// whose close() failed (its content, a write to it, or the push it completed) holds the image
// until it is written again and closed without error, and a file that fails after the push
// (the registry completed the image from blobs it held before the cp wrote the rest) undoes
// the push.
//
// Thread-safe. Locks, in the order they are taken (one is only taken while holding none after
// it): push_mu_, then a File's stream_mu, then mu_. mu_ guards the local state that stat,
// readdir and the push read; it is never held across a network request or a blob's disk I/O,
// so that stat and ls of the directory answer while a blob uploads or the image is pushed. A
// File's stream_mu is held across that one file's requests (BlobExists, its upload), which only
// writes and closes of the same file wait for.
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
  // `attachments`: whether signatures go to the sigstore attachment (registries.d); else a
  // staged signature makes the push fail.
  StagingImage(std::string registry, std::string repo, std::string tag,
               std::shared_ptr<Registry> client, std::string spill_dir, bool attachments = true);
  ~StagingImage() override = default;  // files are dropped with their uploads and spills

  // EINVAL, with the reason, for a name the dir: layout does not have.
  static Status CheckName(const std::string& name);

  // Creates (or truncates) a file.
  Status Create(const std::string& name);
  Result<size_t> Write(const std::string& name, const char* data, size_t n, int64_t off);
  // Ends a file's writing: checks it (a blob against its name, version's content, a manifest's
  // size limit), finishes its upload, and pushes the image when it is complete. Returns the
  // push's result to the close() that completed the image. A failure holds the image until the
  // file is written again, and undoes the push if the image was pushed before.
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
  // The digest of the manifest pushed last ("" before the first push).
  std::string pushed_digest() const;
  // Pushed, no file of it open, untouched for `idle_ms`, and no process that opened one of its
  // files still running (or untouched for `max_idle_ms` whatever runs): its directory can show
  // the image at the registry again. Until then the directory shows what was written, so that
  // a copy still under way (cp, mv) finds its own files and none of the pushed image's — also
  // when its next file comes late, its path walk held up by a slow registry.
  bool Settled(int64_t idle_ms, int64_t max_idle_ms) const;
  // Never pushed, no file of it open, no process that opened one still running, and untouched
  // for `failed_idle_ms` if the close() of one of its files failed (the copy that wrote it
  // was told, and has ended), else for `idle_ms` (a copy that stopped half-way): nothing will
  // finish it, and it can go with what it holds.
  bool Abandoned(int64_t failed_idle_ms, int64_t idle_ms) const;
  // Why it counts as abandoned, for the log.
  std::string AbandonedWhy() const;
  // A file of the image opened by process `writer` (0: unknown), and closed.
  void OpenFile(pid_t writer = 0);
  void CloseFile();

  const std::string& registry() const { return registry_; }
  const std::string& repo() const { return repo_; }
  const std::string& tag() const { return tag_; }

  // ImageSource, for the push.
  std::string Describe() const override;
  Result<RawManifest> GetManifest(const std::string& instance_digest) override;
  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override;
  // The staged signature-N files, in the order of N, as the top-level manifest's.
  Result<std::vector<Signature>> GetSignatures(const std::string& manifest_digest,
                                               bool is_instance) override;

 private:
  struct File {
    File() = default;
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    // A file dropped before its upload completed: the upload is aborted, the spill removed.
    // That can wait for the registry: a File is never destroyed under mu_.
    ~File() {
      upload.reset();
      if (!spill_path.empty()) unlink(spill_path.c_str());
    }
    // Set by Create(), then constant.
    bool is_blob = false;
    std::string digest;      // blobs and instance manifests: from the name
    std::string spill_path;  // blobs
    // Guarded by the image's mu_.
    std::string bytes;  // manifests, version, signatures
    int64_t size = 0;   // bytes written (the extent)
    bool finished = false;
    bool adopted = false;       // at the registry without our bytes
    bool is_signature = false;  // signature-N: checked at close, blocks the push until valid
    bool broken = false;        // a write failed: its close fails
    // A blob's stream, guarded by stream_mu.
    std::mutex stream_mu;
    UniqueFd spill;
    int64_t end = 0;         // the extent, as the stream knows it (size follows it)
    bool sequential = true;  // every write so far came at the end
    std::unique_ptr<Sha256> hash;
    std::unique_ptr<BlobWriter> upload;  // streaming while sequential; null once failed
    bool already_there = false;          // the registry had it when writing began
  };
  using FilePtr = std::shared_ptr<File>;

  Result<FilePtr> FindLocked(const std::string& name);
  // Finish without what a failure does to the image.
  Status FinishFile(const std::string& name);
  // Checks a blob's content against its name and completes its upload: under its stream_mu.
  Status FinishBlob(const std::string& name, const FilePtr& f);
  Result<size_t> WriteFile(const std::string& name, const char* data, size_t n, int64_t off);
  // `name` failed: the image waits for it to be written again; a push is undone.
  Status Fail(const std::string& name, const Error& why);
  // Pushes the image if manifest.json and everything it references are there.
  Status PushIfComplete();
  // What the current manifest.json still needs; empty when the image is complete. Blobs
  // neither written here nor known at the registry either way are asked about (outside mu_).
  Result<std::vector<std::string>> Missing();
  // The same from what is known: such blobs go to `unknown` if given, else count as missing.
  Result<std::vector<std::string>> MissingLocked(std::vector<std::string>* unknown);
  Status Push();
  // A blob of an image already pushed failed (the cp that wrote it failed): the tag goes back
  // to what it named before the push — removed if it was new — unless it moved meanwhile.
  Status Unpush(const Error& why);
  // Adds a signature closed after its image was pushed to the pushed manifest's attachment.
  Status PushLateSignature(const std::string& name);

  const std::string registry_, repo_, tag_;
  const std::shared_ptr<Registry> client_;
  const std::string spill_dir_;
  std::unique_ptr<ImageDestination> dest_;

  mutable std::mutex mu_;
  std::map<std::string, FilePtr> files_;   // guarded by mu_
  std::set<std::string> at_registry_;      // digests seen at the registry, guarded by mu_
  std::set<std::string> not_at_registry_;  // … and not, for this manifest, guarded by mu_
  // Files whose close() failed: the image is not pushed (even when the registry could complete
  // it with its own copy of a blob that failed here) until each is written again and closed
  // without error. guarded by mu_
  std::set<std::string> held_;
  uint64_t manifest_generation_ = 0;  // manifest.json (re)created, guarded by mu_
  bool pushed_ = false;               // guarded by mu_
  std::string pushed_digest_;         // guarded by mu_
  std::string replaced_digest_;       // the tag's digest before the push ("": none), mu_
  int open_files_ = 0;                // guarded by mu_
  std::set<pid_t> writers_;           // processes that opened its files, guarded by mu_
  bool WriterRunningLocked() const;
  std::chrono::steady_clock::time_point touched_ = std::chrono::steady_clock::now();  // mu_
  std::mutex push_mu_;  // one push at a time; held across the push's requests
};

}  // namespace regfs
