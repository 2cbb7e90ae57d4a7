#include "fs/staging_image.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "transports/copy/copy.h"
#include "transports/dir/dir_transport.h"
#include "transports/dir/local_blob.h"
#include "transports/manifest/manifest.h"
#include "transports/registry/docker_transport.h"
#include "transports/registry/image_delete.h"

namespace regfs {
namespace {

bool IsHex64(std::string_view s) { return IsSha256Digest("sha256:" + std::string(s)); }

// "signature-N", N a positive decimal number.
bool IsSignatureName(const std::string& name) {
  std::string_view n(name);
  if (n.substr(0, 10) != "signature-" || n.size() == 10 || n[10] == '0') return false;
  return n.substr(10).find_first_not_of("0123456789") == std::string_view::npos;
}

// The push's destination: the registry, where the blobs this staging image uploaded or mounted
// are known to be, so that the pipeline does not ask for them again.
class KnownBlobsDestination final : public ImageDestination {
 public:
  KnownBlobsDestination(ImageDestination& inner, std::set<std::string> known)
      : inner_(inner), known_(std::move(known)) {}
  std::string Describe() const override { return inner_.Describe(); }
  std::shared_ptr<void> LockBlob(const BlobInfo& blob) override { return inner_.LockBlob(blob); }
  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* source) override {
    if (known_.count(blob.digest)) return true;
    return inner_.TryReuseBlob(blob, source);
  }
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    return inner_.NewBlobWriter(blob);
  }
  Status PutManifest(const RawManifest& m, bool is_instance) override {
    return inner_.PutManifest(m, is_instance);
  }
  Status CanStoreSignatures(const std::vector<Signature>& sigs) override {
    return inner_.CanStoreSignatures(sigs);
  }
  Status PutSignatures(const std::string& manifest_digest, bool is_instance,
                       const std::vector<Signature>& sigs) override {
    return inner_.PutSignatures(manifest_digest, is_instance, sigs);
  }
  Status Commit() override { return inner_.Commit(); }
  // The image is pushed as it was written: its manifest names the very blobs copied in.
  LayerCompression DesiredLayerCompression() const override { return LayerCompression::kPreserve; }

 private:
  ImageDestination& inner_;
  const std::set<std::string> known_;
};

}  // namespace

StagingImage::StagingImage(std::string registry, std::string repo, std::string tag,
                           std::shared_ptr<Registry> client, std::string spill_dir,
                           bool attachments)
    : registry_(std::move(registry)),
      repo_(std::move(repo)),
      tag_(std::move(tag)),
      client_(std::move(client)),
      spill_dir_(std::move(spill_dir)) {
  DockerReference ref;
  ref.registry = registry_;
  ref.repository = repo_;
  ref.tag = tag_;
  DockerSignatureStorage storage;
  storage.attachments = attachments;
  dest_ = NewDockerDestination(ref, client_, std::move(storage));
}

Status StagingImage::CheckName(const std::string& name) {
  if (name == "manifest.json" || name == "version" || IsSignatureName(name) || IsHex64(name)) {
    return Ok();
  }
  const std::string suffix = ".manifest.json";
  if (name.size() == 64 + suffix.size() && name.substr(64) == suffix &&
      IsHex64(name.substr(0, 64))) {
    return Ok();
  }
  return MakeError(EINVAL, "\"" + name +
                               "\" is not a dir: layout name (manifest.json, version, "
                               "<sha256 hex>, <sha256 hex>.manifest.json, signature-N)");
}

std::string StagingImage::Describe() const {
  return "staging image " + registry_ + "/" + repo_ + ":" + tag_;
}

Result<StagingImage::FilePtr> StagingImage::FindLocked(const std::string& name) {
  auto it = files_.find(name);
  if (it == files_.end()) return MakeError(ENOENT, name + " is not staged in " + Describe());
  return it->second;
}

Status StagingImage::Create(const std::string& name) {
  RETURN_IF_ERROR(CheckName(name));
  auto f = std::make_shared<File>();
  if (IsHex64(name)) {
    f->is_blob = true;
    f->digest = "sha256:" + name;
    f->hash = std::make_unique<Sha256>();
    f->spill_path = spill_dir_ + "/" + name + ".XXXXXX";
    int fd = mkostemp(f->spill_path.data(), O_CLOEXEC);
    if (fd < 0) {
      Error e = SysError("creating", f->spill_path);
      f->spill_path.clear();  // nothing to remove
      return e;
    }
    f->spill = UniqueFd(fd);
  } else if (name.size() > 64 && name.find(".manifest.json") == 64) {
    f->digest = "sha256:" + name.substr(0, 64);
  } else if (IsSignatureName(name)) {
    f->is_signature = true;
  }
  FilePtr replaced;  // dropped (its upload aborted) after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  FilePtr& slot = files_[name];
  replaced = std::move(slot);
  slot = std::move(f);
  if (name == "manifest.json") {
    pushed_ = false;  // a new manifest: a new push, moving the tag
    not_at_registry_.clear();
    ++manifest_generation_;
  }
  return Ok();
}

Result<size_t> StagingImage::Write(const std::string& name, const char* data, size_t n,
                                   int64_t off) {
  auto written = WriteFile(name, data, n, off);
  if (!written.ok()) {
    // What was written is not what the writer meant: the file's close fails too.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(name);
    if (it != files_.end()) it->second->broken = true;
  }
  return written;
}

Result<size_t> StagingImage::WriteFile(const std::string& name, const char* data, size_t n,
                                       int64_t off) {
  FilePtr f;
  bool rewrite = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(f, FindLocked(name));
    rewrite = f->finished;
    f->finished = false;  // written again after a close: check it again
    if (!f->is_blob) {
      if (off + static_cast<int64_t>(n) > kMaxManifestSize) {
        return MakeError(EFBIG, name + " is over the 4 MiB limit");
      }
      if (f->bytes.size() < static_cast<size_t>(off) + n) {
        f->bytes.resize(static_cast<size_t>(off) + n);
      }
      f->bytes.replace(static_cast<size_t>(off), n, data, n);
      f->size = static_cast<int64_t>(f->bytes.size());
      return n;
    }
  }
  // A blob: the spill, the hash and the upload, under the file's own lock only.
  {
    std::lock_guard<std::mutex> stream(f->stream_mu);
    if (!f->spill.valid()) {
      // closed when the file was last finished (FinishBlob): it is written again
      int fd = open(f->spill_path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return SysError("opening", f->spill_path);
      f->spill = UniqueFd(fd);
    }
    RETURN_IF_ERROR(WriteAllAt(f->spill.get(), data, n, off, f->spill_path));
    if (f->sequential && !rewrite && off == f->end) {
      f->hash->Update(data, n);
      if (f->end == 0 && !f->upload && !f->already_there) {
        auto there = client_->BlobExists(repo_, f->digest);
        if (there.ok() && *there) {
          f->already_there = true;  // no upload: the bytes are only checked
        } else {
          auto writer = dest_->NewBlobWriter(BlobInfo{f->digest, -1, ""});
          if (writer.ok()) f->upload = std::move(writer).value();
        }
      }
      if (f->upload && !f->upload->Write(data, n).ok()) f->upload.reset();  // the push uploads it
    } else {
      f->sequential = false;  // staged on disk only; hashed and uploaded when complete
      f->upload.reset();
    }
    f->end = std::max(f->end, off + static_cast<int64_t>(n));
    std::lock_guard<std::mutex> lock(mu_);
    f->size = f->end;
  }
  return n;
}

Status StagingImage::Adopt(const std::string& name) {
  FilePtr f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(f, FindLocked(name));
    if (!f->is_blob) return MakeError(EINVAL, name + " is not a blob");
  }
  std::lock_guard<std::mutex> stream(f->stream_mu);
  f->upload.reset();
  std::lock_guard<std::mutex> lock(mu_);
  f->adopted = true;
  at_registry_.insert(f->digest);
  return Ok();
}

Status StagingImage::CopyFrom(const std::string& name, ImageSource& src, const BlobInfo& blob) {
  if (std::string(DigestHex(blob.digest)) != name) {
    return MakeError(EOPNOTSUPP, "copying " + blob.digest + " into a file named " + name);
  }
  FilePtr f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(f, FindLocked(name));
    if (f->size > 0) return MakeError(EOPNOTSUPP, name + " has bytes written already");
  }
  RETURN_IF_ERROR(CopyBlob(src, *dest_, blob));
  RETURN_IF_ERROR(Adopt(name));
  std::lock_guard<std::mutex> stream(f->stream_mu);
  f->end = blob.size;
  std::lock_guard<std::mutex> lock(mu_);
  f->size = blob.size;
  return Ok();
}

Status StagingImage::Remove(const std::string& name) {
  FilePtr removed;  // dropped after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return MakeError(ENOENT, name + " is not staged in " + Describe());
  removed = std::move(it->second);
  files_.erase(it);
  return Ok();
}

bool StagingImage::Has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.count(name) > 0;
}

int64_t StagingImage::Size(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(name);
  return it == files_.end() ? 0 : it->second->size;
}

std::vector<std::string> StagingImage::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, f] : files_) out.push_back(name);
  return out;
}

Result<std::string> StagingImage::ReadSmall(const std::string& name) const {
  FilePtr f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(name);
    if (it == files_.end()) return MakeError(ENOENT, name + " is not staged in " + Describe());
    if (!it->second->is_blob) return it->second->bytes;
    f = it->second;  // keeps the spill file while it is read, outside the lock
  }
  return ReadFileBounded(f->spill_path, kMaxManifestSize);
}

bool StagingImage::pushed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pushed_;
}

std::string StagingImage::pushed_digest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pushed_digest_;
}

bool StagingImage::Settled(int64_t idle_ms, int64_t max_idle_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pushed_ || open_files_ > 0) return false;
  auto idle = std::chrono::steady_clock::now() - touched_;
  if (idle <= std::chrono::milliseconds(idle_ms)) return false;
  if (idle > std::chrono::milliseconds(max_idle_ms)) return true;
  return !WriterRunningLocked();
}

bool StagingImage::WriterRunningLocked() const {
  return std::any_of(writers_.begin(), writers_.end(),
                     [](pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; });
}

bool StagingImage::Abandoned(int64_t failed_idle_ms, int64_t idle_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (pushed_ || open_files_ > 0) return false;
  auto idle = std::chrono::steady_clock::now() - touched_;
  if (idle <= std::chrono::milliseconds(held_.empty() ? idle_ms : failed_idle_ms)) return false;
  return !WriterRunningLocked();
}

std::string StagingImage::AbandonedWhy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.empty() ? "its copy stopped before the image was complete"
                       : "the close() of " + *held_.begin() + " failed";
}

void StagingImage::OpenFile(pid_t writer) {
  std::lock_guard<std::mutex> lock(mu_);
  ++open_files_;
  if (writer > 0) writers_.insert(writer);
  touched_ = std::chrono::steady_clock::now();
}

void StagingImage::CloseFile() {
  std::lock_guard<std::mutex> lock(mu_);
  --open_files_;
  touched_ = std::chrono::steady_clock::now();
}

Status StagingImage::Finish(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(FindLocked(name));
  }
  Status s = FinishFile(name);
  if (s.ok()) return s;
  return Fail(name, s.error());
}

Status StagingImage::Fail(const std::string& name, const Error& why) {
  bool undo = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.insert(name);
    undo = pushed_;
  }
  if (undo) return Unpush(why);
  return why;
}

Status StagingImage::FinishFile(const std::string& name) {
  FilePtr f;
  FilePtr dropped;  // a manifest not matching its name, dropped after the lock is released
  bool broken = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(f, FindLocked(name));
    broken = f->broken;
    if (!broken && !f->finished && !f->is_blob) {
      if (name == "version" && f->bytes != kDirVersion) {
        return MakeError(EINVAL, "version must hold \"Directory Transport Version: 1.1\\n\"");
      }
      bool is_manifest = name == "manifest.json" || !f->digest.empty();
      if (is_manifest) {
        auto parsed = ParseManifest(f->bytes);
        if (!parsed.ok()) return Annotate(parsed.error(), name);
      }
      if (is_manifest && !f->digest.empty() && DigestOf(f->bytes) != f->digest) {
        Error e = MakeError(EIO, name + " has digest " + DigestOf(f->bytes) + ", not the " +
                                     f->digest + " its name says");
        dropped = std::move(files_[name]);
        files_.erase(name);
        return e;
      }
      if (f->is_signature) {
        // Kept unfinished when invalid: the image waits for it to be written again.
        auto sig = SignatureFromBlob(f->bytes);
        if (!sig.ok()) return Annotate(MakeError(EINVAL, sig.error().message), name);
      }
      f->finished = true;
    }
  }
  if (broken) {
    if (f->is_blob) {
      std::lock_guard<std::mutex> stream(f->stream_mu);
      f->spill = UniqueFd();  // as FinishBlob does: a failed file holds no descriptor
      f->upload.reset();
    }
    return MakeError(EIO, name + ": a write to it failed; it is to be written again");
  }
  if (f->is_blob) RETURN_IF_ERROR(FinishBlob(name, f));
  bool late = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(name);  // written again, without error
    late = pushed_;
  }
  if (f->is_signature && late) return PushLateSignature(name);
  return PushIfComplete();
}

Status StagingImage::FinishBlob(const std::string& name, const FilePtr& f) {
  Status verdict = Ok();
  bool at_registry = false;
  {
    std::lock_guard<std::mutex> stream(f->stream_mu);
    // No descriptor is kept while nobody writes (Write opens the spill again): a staging image
    // that waits, a failed one above all, would hold one per blob for as long as it is kept.
    f->spill = UniqueFd();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (f->finished) return Ok();
      if (f->adopted) {
        f->finished = true;  // at the registry already: no bytes of ours to check
        return Ok();
      }
    }
    std::string got;
    if (f->sequential) {
      got = f->hash->Finish();
    } else {
      Sha256 h;
      RETURN_IF_ERROR(StreamFile(f->spill_path, [&](const char* d, size_t n) {
        h.Update(d, n);
        return Ok();
      }));
      got = h.Finish();
    }
    if (got != f->digest) {
      verdict =
          MakeError(EIO, "blob " + name + " has content with digest " + got + ", not " + f->digest);
    } else {
      if (f->upload) {
        Status s = f->upload->Commit(BlobInfo{got, f->end, ""});  // waits: this file's lock only
        f->upload.reset();
        at_registry = s.ok();  // else the push uploads it from disk
      }
      at_registry = at_registry || f->already_there;
    }
  }
  FilePtr dropped;  // a blob not matching its name, dropped after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  if (!verdict.ok()) {
    // Its upload is aborted with it: the registry never completes it.
    auto it = files_.find(name);
    if (it != files_.end() && it->second == f) {
      dropped = std::move(it->second);
      files_.erase(it);
    }
    return verdict;
  }
  if (at_registry) at_registry_.insert(f->digest);
  f->finished = true;
  return Ok();
}

Status StagingImage::PushLateSignature(const std::string& name) {
  std::lock_guard<std::mutex> push_lock(push_mu_);
  std::string digest;
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(FilePtr f, FindLocked(name));
    if (!f->finished || !pushed_) return Ok();
    digest = pushed_digest_;
    bytes = f->bytes;
  }
  ASSIGN_OR_RETURN(Signature sig, SignatureFromBlob(bytes));
  std::vector<Signature> sigs = {std::move(sig)};
  RETURN_IF_ERROR(dest_->CanStoreSignatures(sigs));
  Status s = dest_->PutSignatures(digest, false, sigs);
  if (!s.ok()) {
    return Annotate(s.error(), "storing " + name + " of " + registry_ + "/" + repo_ + ":" + tag_);
  }
  return Ok();
}

Status StagingImage::PushIfComplete() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto manifest = files_.find("manifest.json");
    if (pushed_ || manifest == files_.end() || !manifest->second->finished) return Ok();
  }
  ASSIGN_OR_RETURN(std::vector<std::string> missing, Missing());
  if (!missing.empty()) return Ok();
  return Push();
}

Result<std::vector<std::string>> StagingImage::Missing() {
  std::vector<std::string> unknown;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(std::vector<std::string> missing, MissingLocked(&unknown));
    if (unknown.empty()) return missing;
    generation = manifest_generation_;
  }
  // Not written here: the registry may have them already (the same image pushed again). Asked
  // once per manifest: a blob it lacks now comes by a write here, if at all.
  std::set<std::string> there, not_there;
  for (const std::string& digest : unknown) {
    auto r = client_->BlobExists(repo_, digest);
    (r.ok() && *r ? there : not_there).insert(digest);
  }
  std::lock_guard<std::mutex> lock(mu_);
  at_registry_.insert(there.begin(), there.end());
  if (generation == manifest_generation_) {
    not_at_registry_.insert(not_there.begin(), not_there.end());
  }
  return MissingLocked(nullptr);
}

Result<std::vector<std::string>> StagingImage::MissingLocked(std::vector<std::string>* unknown) {
  std::vector<std::string> missing;
  auto top_file = files_.find("manifest.json");
  if (top_file == files_.end()) return std::vector<std::string>{"manifest.json"};
  // A signature being written, or written invalid, holds the push: it goes with the image.
  for (const auto& [name, f] : files_) {
    if (f->is_signature && !f->finished) missing.push_back(name);
  }
  // So does every file whose close failed, until it is written again.
  missing.insert(missing.end(), held_.begin(), held_.end());
  ASSIGN_OR_RETURN(Manifest top, ParseManifest(top_file->second->bytes));
  std::vector<Manifest> images;
  if (top.is_index) {
    for (const Descriptor& d : top.manifests) {
      auto it = files_.find(std::string(DigestHex(d.digest)) + ".manifest.json");
      if (it == files_.end() || !it->second->finished) {
        missing.push_back(d.digest);
        continue;
      }
      ASSIGN_OR_RETURN(Manifest m, ParseManifest(it->second->bytes));
      images.push_back(std::move(m));
    }
  } else {
    images.push_back(std::move(top));
  }
  for (const Manifest& m : images) {
    std::vector<const Descriptor*> blobs = {&m.config};
    for (const auto& l : m.layers) blobs.push_back(&l);
    for (const Descriptor* d : blobs) {
      auto it = files_.find(std::string(DigestHex(d->digest)));
      if (it != files_.end() && it->second->finished) continue;
      if (at_registry_.count(d->digest)) continue;
      if (it == files_.end() && !not_at_registry_.count(d->digest) && unknown) {
        unknown->push_back(d->digest);
        continue;
      }
      missing.push_back(d->digest);
    }
  }
  return missing;
}

Status StagingImage::Push() {
  std::lock_guard<std::mutex> push_lock(push_mu_);
  std::set<std::string> known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pushed_) return Ok();
    known = at_registry_;
  }
  // What the tag names now, so that a blob failing after the push can put it back.
  std::string replaced;
  auto before = client_->ResolveDigest(repo_, tag_);
  if (before.ok()) {
    replaced = *before;
  } else if (before.error().errnum != ENOENT) {
    return Annotate(before.error(), "pushing " + registry_ + "/" + repo_ + ":" + tag_);
  }
  KnownBlobsDestination dest(*dest_, std::move(known));
  CopyOptions options;
  options.all = true;
  auto pushed = CopyImage(*this, dest, options);
  if (!pushed.ok()) {
    return Annotate(pushed.error(), "pushing " + registry_ + "/" + repo_ + ":" + tag_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  pushed_ = true;
  pushed_digest_ = pushed->manifest_digest;
  replaced_digest_ = replaced;
  return Ok();
}

Status StagingImage::Unpush(const Error& why) {
  std::lock_guard<std::mutex> push_lock(push_mu_);
  std::string pushed, replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pushed_) return why;
    pushed = pushed_digest_;
    replaced = replaced_digest_;
    pushed_ = false;  // pushed again once the failed blob is written correctly
    pushed_digest_.clear();
  }
  std::string image = registry_ + "/" + repo_ + ":" + tag_;
  auto now = client_->ResolveDigest(repo_, tag_);
  if (!now.ok() && now.error().errnum == ENOENT) return why;  // removed meanwhile
  if (!now.ok() || *now != pushed) {
    return MakeError(why.errnum, why.message + "; " + image +
                                     " was pushed before it and has moved since: left as it is");
  }
  Status undone = Ok();
  if (replaced.empty()) {
    undone = RemoveTag(*client_, repo_, tag_);
  } else {
    auto old = client_->GetManifest(repo_, replaced);
    undone = old.ok() ? client_->PutManifest(repo_, tag_, old->bytes, old->media_type)
                      : Status(old.error());
  }
  if (!undone.ok()) {
    return MakeError(why.errnum, why.message + "; " + image +
                                     " was pushed before it, and undoing that failed: " +
                                     undone.error().message);
  }
  return MakeError(why.errnum, why.message + "; " + image + " was pushed before it: " +
                                   (replaced.empty() ? "the tag is removed"
                                                     : "the tag names " + replaced + " again"));
}

Result<RawManifest> StagingImage::GetManifest(const std::string& instance_digest) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string name = instance_digest.empty()
                         ? "manifest.json"
                         : std::string(DigestHex(instance_digest)) + ".manifest.json";
  auto it = files_.find(name);
  if (it == files_.end()) return MakeError(ENOENT, name + " is not staged in " + Describe());
  RawManifest m;
  m.bytes = it->second->bytes;
  m.digest = DigestOf(m.bytes);
  m.media_type = GuessManifestMediaType(m.bytes);
  return m;
}

Result<std::vector<Signature>> StagingImage::GetSignatures(const std::string& manifest_digest,
                                                           bool is_instance) {
  (void)manifest_digest;  // the push asks for the top-level manifest staged here
  if (is_instance) return std::vector<Signature>{};
  std::vector<std::pair<unsigned long, std::string>> staged;  // N, bytes
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : files_) {
      if (!f->is_signature || !f->finished) continue;
      staged.emplace_back(std::stoul(name.substr(10)), f->bytes);
    }
  }
  std::sort(staged.begin(), staged.end());
  std::vector<Signature> sigs;
  for (const auto& [n, bytes] : staged) {
    auto sig = SignatureFromBlob(bytes);
    if (!sig.ok()) return Annotate(sig.error(), "signature-" + std::to_string(n));
    sigs.push_back(std::move(sig).value());
  }
  return sigs;
}

Status StagingImage::GetBlob(const BlobInfo& blob, const ByteSink& sink) {
  FilePtr f;  // keeps the spill file while it is streamed, outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(std::string(DigestHex(blob.digest)));
    if (it == files_.end() || it->second->spill_path.empty() || it->second->adopted) {
      return MakeError(ENOENT, "blob " + blob.digest + " is not staged in " + Describe());
    }
    f = it->second;
  }
  return StreamFile(f->spill_path, sink);
}

}  // namespace regfs
