// The write side of Filesystem (DESIGN §1, "Writing = pushing"): mkdir makes namespaces,
// repositories and staging images; files written into a tag's directory are staged and pushed
// through the copy pipeline once the image is complete; unlink and rmdir delete at the
// registry; rename re-tags; copy_file_range between blobs happens at the registry.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "fs/filesystem.h"
#include "transports/registry/docker_transport.h"
#include "transports/registry/image_delete.h"
#include "transports/types/image_reference.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

std::string Join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

Error ReadOnly() { return MakeError(EROFS, "the mount is read-only (ro)"); }

// How long a pushed staging image keeps showing what was written after its last file closed
// — and, while a process that wrote it still runs, at most how long: a copy's next file may
// come that late when its path walk waits for lookups of the directories above (each a
// request that may stall for the timeout, retried).
constexpr int64_t kSettleMs = 2000;
int64_t SettleLimitMs(const MountOptions& options) {
  return std::max<int64_t>(kSettleMs, 4000 * static_cast<int64_t>(options.timeout));
}

// How long a staging image that was never pushed stays once its writers have ended: one of
// whose files failed, so that the file can be written again (its cp was told of the failure),
// and one that was left incomplete, so that the rest can come from later commands.
int64_t FailedStagingLimitMs(const MountOptions& options) { return SettleLimitMs(options); }
constexpr int64_t kIncompleteStagingMs = 10 * 60 * 1000;

// How long the files of an image deleted by unlinking its manifest.json stay to be removed.
constexpr int kLeftoverSeconds = 60;

}  // namespace

std::shared_ptr<StagingImage> Filesystem::StagingOf(const Node& node) {
  std::string repo, tag;
  if (node.kind == Kind::kStagedFile) {
    repo = node.path;
    tag = node.ref;
  } else if (!ImageOf(node, &repo, &tag) || IsSha256Digest(tag)) {
    return nullptr;
  }
  std::string key = node.registry + "|" + repo + "|" + tag;
  std::shared_ptr<StagingImage> settled;  // dropped after the lock is released
  std::vector<std::pair<uint64_t, std::string>> entries;
  std::vector<std::string> log;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stagings_.find(key);
    if (it == stagings_.end()) return nullptr;
    if (!StagingDone(*it->second, &log)) return it->second;
    SettleLocked(key, *it->second, &entries);
    settled = std::move(it->second);  // the directory shows the pushed image now
    stagings_.erase(it);
  }
  InvalidateEntries(entries);
  for (const std::string& line : log) Log(line);
  return nullptr;
}

bool Filesystem::StagingDone(const StagingImage& staging, std::vector<std::string>* log) const {
  if (staging.Settled(kSettleMs, SettleLimitMs(options_))) return true;
  if (!staging.Abandoned(FailedStagingLimitMs(options_), kIncompleteStagingMs)) return false;
  log->push_back("dropped the unpushed image written to " + staging.registry() + "/" +
                 staging.repo() + ":" + staging.tag() + ": " + staging.AbandonedWhy() +
                 ", and nothing has written to it since");
  return true;
}

void Filesystem::SettleLocked(const std::string& key, const StagingImage& staging,
                              std::vector<std::pair<uint64_t, std::string>>* pending) {
  auto add = [&](const std::string& node_key) {
    auto ino = inos_.find(node_key);
    if (ino == inos_.end()) return;
    auto node = nodes_.find(ino->second);
    if (node != nodes_.end() && node->second.parent != 0) {
      pending->emplace_back(node->second.parent, node->second.name);
    }
  };
  for (const std::string& name : staging.Names()) add("S|" + key + "|" + name);
  // "reg|repo|tag" -> the directory made for it, "reg|repo/tag"
  std::string dir = staging.registry() + "|" + staging.repo() + "/" + staging.tag();
  if (local_dirs_.erase(dir) > 0) add("D|" + dir);
}

void Filesystem::InvalidateEntries(const std::vector<std::pair<uint64_t, std::string>>& entries) {
  if (!invalidate_entry_) return;
  for (const auto& [parent, name] : entries) invalidate_entry_(parent, name);
}

std::shared_ptr<StagingImage> Filesystem::TakeStaging(const std::string& registry,
                                                      const std::string& repo,
                                                      const std::string& tag) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stagings_.find(registry + "|" + repo + "|" + tag);
  if (it == stagings_.end()) return nullptr;
  std::shared_ptr<StagingImage> taken = std::move(it->second);
  stagings_.erase(it);
  return taken;
}

Result<std::shared_ptr<StagingImage>> Filesystem::StagingFor(const Node& dir) {
  if (auto staging = StagingOf(dir)) return staging;
  std::string repo, tag;
  if (!ImageOf(dir, &repo, &tag) || IsSha256Digest(tag)) {
    return MakeError(EROFS, "only a tag's directory takes new files");
  }
  std::string key = dir.registry + "|" + repo + "|" + tag;
  ASSIGN_OR_RETURN(auto client, Client(dir.registry));
  SweepStagings();
  std::lock_guard<std::mutex> lock(mu_);
  leftovers_.Erase(key);
  auto& slot = stagings_[key];
  if (!slot) {
    slot = std::make_shared<StagingImage>(dir.registry, repo, tag, client,
                                          options_.cache_dir + "/staging",
                                          AttachmentsOn(dir.registry, repo));
  }
  return slot;
}

void Filesystem::SweepStagings() {
  std::vector<std::shared_ptr<StagingImage>> done;  // dropped after the lock is released
  std::vector<std::pair<uint64_t, std::string>> entries;
  std::vector<std::string> log;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = stagings_.begin(); it != stagings_.end();) {
      if (!it->second || StagingDone(*it->second, &log)) {
        if (it->second) SettleLocked(it->first, *it->second, &entries);
        done.push_back(std::move(it->second));
        it = stagings_.erase(it);
      } else {
        ++it;
      }
    }
  }
  InvalidateEntries(entries);
  for (const std::string& line : log) Log(line);
}

void Filesystem::Invalidate(const std::string& registry, const std::string& repo,
                            const std::string& tag) {
  std::lock_guard<std::mutex> lock(mu_);
  catalogs_.Erase(registry);
  tags_.Erase(registry + "/" + repo);
  tag_digests_.Erase(registry + "/" + repo + ":" + tag);
  failures_.Erase(registry + "/" + repo + ":" + tag);
  failures_.Erase(registry + "/" + repo + "|tags");
  failures_.Erase(registry + "|catalog");
}

Result<NodeAttr> Filesystem::Mkdir(uint64_t parent_ino, const std::string& name) {
  if (options_.read_only) return ReadOnly();
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  if (parent.kind != Kind::kRegistry && parent.kind != Kind::kNamespace &&
      parent.kind != Kind::kLocalDir) {
    if (parent.kind == Kind::kImage) {
      return MakeError(EINVAL, "an image directory holds files only");
    }
    return MakeError(EPERM, "directories go below a registry, namespace or repository");
  }
  bool ok = IsValidRepositoryComponent(name) || (!parent.path.empty() && IsValidTag(name));
  if (!ok) {
    return MakeError(EINVAL, "not a repository name component or tag");
  }
  std::string key;
  if (LookupChild(parent, name, &key).ok()) return MakeError(EEXIST, "exists already");
  std::string path = Join(parent.path, name);
  Node node = MakeNode(Kind::kLocalDir, parent.registry, path);
  {
    std::lock_guard<std::mutex> lock(mu_);
    local_dirs_.insert(parent.registry + "|" + path);
    removed_.Erase(parent.registry + "|" + path);
  }
  ASSIGN_OR_RETURN(NodeAttr attr, AttrOf(0, node));
  // counted once nothing can fail
  attr.ino = Intern("D|" + parent.registry + "|" + path, node, parent_ino, name);
  return attr;
}

Result<std::pair<NodeAttr, OpenedFile>> Filesystem::Create(uint64_t parent_ino,
                                                           const std::string& name, pid_t writer) {
  if (options_.read_only) return ReadOnly();
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  std::string repo, tag;
  if (!ImageOf(parent, &repo, &tag) || IsSha256Digest(tag)) {
    return MakeError(EINVAL, "files go into an image directory, <registry>/<repository>/<tag>/");
  }
  if (Status s = StagingImage::CheckName(name); !s.ok()) {
    return s.error();  // names the name and what it should be
  }
  ASSIGN_OR_RETURN(auto staging, StagingFor(parent));
  RETURN_IF_ERROR(staging->Create(name));
  Node node = MakeNode(Kind::kStagedFile, parent.registry, repo, tag);
  node.target = name;
  ASSIGN_OR_RETURN(NodeAttr attr, AttrOf(0, node));
  attr.ino =
      Intern("S|" + parent.registry + "|" + repo + "|" + tag + "|" + name, node, parent_ino, name);
  auto handle = std::make_shared<OpenHandle>();
  handle->staging = staging;
  handle->staging->OpenFile(writer);
  handle->name = name;
  handle->dirty = true;
  OpenedFile opened;
  opened.direct_io = true;
  opened.handle = AddHandle(std::move(handle));
  return std::make_pair(attr, opened);
}

Result<OpenedFile> Filesystem::OpenForWrite(const Node& node, int flags, pid_t writer) {
  if (options_.read_only) return ReadOnly();
  auto handle = std::make_shared<OpenHandle>();
  switch (node.kind) {
    case Kind::kStagedFile: {
      handle->staging = StagingOf(node);
      if (!handle->staging) return MakeError(ENOENT, "no longer staged");
      handle->staging->OpenFile(writer);
      handle->name = node.target;
      if (flags & O_TRUNC) {
        RETURN_IF_ERROR(handle->staging->Create(node.target));
        handle->dirty = true;
      }
      break;
    }
    case Kind::kManifestFile:
    case Kind::kVersion:
    case Kind::kSignature: {
      // Writing into a tag's directory stages a new image under that tag.
      if (IsSha256Digest(node.target)) {
        return MakeError(EROFS, "an image addressed by digest never changes");
      }
      Node dir = MakeNode(Kind::kImage, node.registry, node.path, node.target);
      ASSIGN_OR_RETURN(handle->staging, StagingFor(dir));
      handle->staging->OpenFile(writer);
      handle->name = node.kind == Kind::kManifestFile ? "manifest.json"
                     : node.kind == Kind::kVersion    ? "version"
                                                   : "signature-" + std::to_string(node.index + 1);
      RETURN_IF_ERROR(handle->staging->Create(handle->name));
      handle->dirty = true;
      break;
    }
    case Kind::kBlob:
    case Kind::kInstanceManifest:
      // Content-addressed and at the registry already: what is written is only checked.
      handle->check = std::make_unique<Sha256>();
      handle->check_digest = node.digest;
      handle->dirty = true;
      break;
    default:
      return MakeError(EACCES, "not a file that takes writes");
  }
  OpenedFile opened;
  opened.direct_io = true;
  opened.handle = AddHandle(std::move(handle));
  return opened;
}

Result<size_t> Filesystem::Write(uint64_t id, const char* data, size_t size, int64_t off) {
  ASSIGN_OR_RETURN(auto h, HandleOf(id));
  std::lock_guard<std::mutex> lock(h->mu);
  if (h->staging) {
    h->dirty = true;
    auto n = h->staging->Write(h->name, data, size, off);
    if (!n.ok()) return n.error();
    return n;
  }
  if (h->check) {
    if (off != h->check_next) {
      return MakeError(EINVAL, h->check_digest +
                                   " is at the registry: rewriting it takes "
                                   "sequential writes");
    }
    h->check->Update(data, size);
    h->check_next += static_cast<int64_t>(size);
    h->dirty = true;
    return size;
  }
  return MakeError(EBADF, "not open for writing");
}

Status Filesystem::Flush(uint64_t id) {
  ASSIGN_OR_RETURN(auto h, HandleOf(id));
  // A blob opened for reading has nothing to flush, and a read of it may hold h->mu while it
  // waits for the registry: a close() of a copy of its descriptor (a forked child's, say) must
  // not wait with it. (h->blob is set before the handle is shared, and never changes.)
  if (h->blob) return Ok();
  std::lock_guard<std::mutex> lock(h->mu);
  if (!h->dirty) return Ok();
  h->dirty = false;
  if (h->staging) {
    Status s = h->staging->Finish(h->name);
    if (!s.ok()) {
      // A failed blob may have undone a push (StagingImage::Unpush): the tag is looked up anew.
      Invalidate(h->staging->registry(), h->staging->repo(), h->staging->tag());
      return s.error();
    }
    if (h->staging->pushed()) {
      Invalidate(h->staging->registry(), h->staging->repo(), h->staging->tag());
      // What is known of the pushed image's signatures and verdict is from before the push.
      std::string where = h->staging->registry() + "/" + h->staging->repo();
      std::string digest = h->staging->pushed_digest();
      std::lock_guard<std::mutex> fs_lock(mu_);
      signatures_.Erase(where + "@" + digest);
      verdicts_.Erase(where + ":" + h->staging->tag() + "@" + digest);
    }
    return s;
  }
  if (h->check) {
    std::string got = h->check->Finish();
    h->check = std::make_unique<Sha256>();
    h->check_next = 0;
    if (got != h->check_digest) {
      return MakeError(EIO, "content written has digest " + got + ", not " + h->check_digest);
    }
  }
  return Ok();
}

Result<NodeAttr> Filesystem::SetAttr(uint64_t ino, const int64_t* size) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  if (size) {
    if (options_.read_only) return ReadOnly();
    if (node.kind == Kind::kStagedFile) {
      auto staging = StagingOf(node);
      if (!staging) return MakeError(ENOENT, "no longer staged");
      if (*size == 0) {
        RETURN_IF_ERROR(staging->Create(node.target));
      } else if (*size != staging->Size(node.target)) {
        return MakeError(EINVAL, "a staged file is truncated only to 0 or to its size");
      }
    }
    // A committed image's files: a truncation before a rewrite, which open() stages.
  }
  // Mode, owner and times are accepted and ignored, so that cp -a works.
  return AttrOf(ino, node);
}

Status Filesystem::Unlink(uint64_t parent_ino, const std::string& name) {
  if (options_.read_only) return ReadOnly();
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  std::string key;
  auto found = LookupChild(parent, name, &key);
  // The kernel had the name: gone since (the image deleted with its manifest.json) is done.
  if (!found.ok()) return found.error().errnum == ENOENT ? Ok() : Status(found.error());
  const Node& node = *found;
  switch (node.kind) {
    case Kind::kStagedFile: {
      auto staging = StagingOf(node);
      if (!staging) return Ok();
      if (node.target == "manifest.json" && staging->pushed()) {
        // Pushed already: the manifest's removal deletes the image.
        ASSIGN_OR_RETURN(auto client, Client(node.registry));
        Status s = DeleteImage(client->Origin(), node.path, node.ref, /*force=*/false);
        Invalidate(node.registry, node.path, node.ref);
        if (!s.ok()) return s.error();
      }
      return staging->Remove(node.target);
    }
    case Kind::kManifestFile: {
      // Deleting the manifest deletes the image, by the rule of DeleteImage().
      auto view = View(node.registry, node.path, node.target);
      ASSIGN_OR_RETURN(auto client, Client(node.registry));
      Status s = DeleteImage(client->Origin(), node.path, node.target, /*force=*/false);
      Invalidate(node.registry, node.path, node.target);
      if (!s.ok()) return s.error();
      if (view.ok() && !IsSha256Digest(node.target)) {
        // The rest of the directory stays until removed, so that rm -r can finish.
        std::lock_guard<std::mutex> lock(mu_);
        PutExpiring(leftovers_, node.registry + "|" + node.path + "|" + node.target,
                    {*view, {"manifest.json"}, Expiry(kLeftoverSeconds)});
      }
      return Ok();
    }
    case Kind::kVersion:
    case Kind::kBlob:
    case Kind::kInstanceManifest:
    case Kind::kSignature: {
      // They go with the manifest; in a deleted image's directory they are removed here.
      std::lock_guard<std::mutex> lock(mu_);
      Leftovers* left = leftovers_.Peek(node.registry + "|" + node.path + "|" + node.target);
      if (left) left->gone.insert(name);
      return Ok();
    }
    case Kind::kSymlink:
      return MakeError(EPERM, "<repo>:<tag> and <repo>@<digest> links are not removable");
    default:
      return MakeError(EISDIR, "a directory (rmdir removes it)");
  }
}

Status Filesystem::Rmdir(uint64_t parent_ino, const std::string& name) {
  if (options_.read_only) return ReadOnly();
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  std::string key;
  auto found = LookupChild(parent, name, &key);
  if (!found.ok()) return found.error().errnum == ENOENT ? Ok() : Status(found.error());
  const Node& node = *found;
  std::string repo, tag;
  bool image = ImageOf(node, &repo, &tag);
  if (node.kind == Kind::kLocalDir) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string prefix = node.registry + "|" + node.path + "/";
    auto sub = local_dirs_.lower_bound(prefix);
    if (sub != local_dirs_.end() && sub->rfind(prefix, 0) == 0) {
      return MakeError(ENOTEMPTY, "directories made here are below it");
    }
  }
  if (image && !IsSha256Digest(tag)) {
    auto dropped = TakeStaging(node.registry, repo, tag);  // its uploads abort outside mu_
    {
      std::lock_guard<std::mutex> lock(mu_);
      leftovers_.Erase(node.registry + "|" + repo + "|" + tag);
    }
    Invalidate(node.registry, repo, tag);
    auto tags = Tags(node.registry, repo);
    if (tags.ok() && std::find(tags->begin(), tags->end(), tag) != tags->end()) {
      ASSIGN_OR_RETURN(auto client, Client(node.registry));
      Status s = DeleteImage(client->Origin(), repo, tag, /*force=*/false);
      Invalidate(node.registry, repo, tag);
      if (!s.ok() && s.error().errnum != ENOENT) return s.error();
    }
  } else if (node.kind == Kind::kNamespace || node.kind == Kind::kLocalDir) {
    // A repository without tags is gone as far as the tree goes, though the registry may keep
    // listing it in its catalog: this mount stops showing it.
    Invalidate(node.registry, node.path, "");
    auto tags = Tags(node.registry, node.path);
    if (tags.ok() && !tags->empty()) return MakeError(ENOTEMPTY, "the repository has tags");
    std::lock_guard<std::mutex> lock(mu_);
    removed_.Put(node.registry + "|" + node.path, true);
  } else if (node.kind != Kind::kImage) {
    return MakeError(ENOTDIR, "not a directory");
  }
  std::lock_guard<std::mutex> lock(mu_);
  local_dirs_.erase(node.registry + "|" + node.path);
  return Ok();
}

Status Filesystem::Rename(uint64_t parent_ino, const std::string& name, uint64_t new_parent_ino,
                          const std::string& new_name) {
  if (options_.read_only) return ReadOnly();
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  std::string key;
  ASSIGN_OR_RETURN(Node node, LookupChild(parent, name, &key));
  // Re-tagging: a tag's directory renamed within its repository.
  std::string repo, tag;
  bool retag = ImageOf(node, &repo, &tag) && !IsSha256Digest(tag) && new_parent_ino == parent_ino &&
               IsValidTag(new_name);
  if (retag && node.kind == Kind::kLocalDir) {
    auto tags = Tags(node.registry, repo);  // a directory made here: pushed yet?
    retag = tags.ok() && std::find(tags->begin(), tags->end(), tag) != tags->end();
  }
  if (!retag) {
    // mv then copies and removes
    return MakeError(EXDEV, "only a tag's directory is renamed, within its repository");
  }
  auto dropped = TakeStaging(node.registry, repo, tag);  // its uploads abort outside mu_
  ASSIGN_OR_RETURN(auto client, Client(node.registry));
  Registry& origin = client->Origin();  // the manifest the tag names where it is re-tagged
  auto manifest = origin.GetManifest(repo, tag);
  if (!manifest.ok()) return manifest.error();
  Status put = origin.PutManifest(repo, new_name, manifest->bytes, manifest->media_type);
  Invalidate(node.registry, repo, new_name);
  if (!put.ok()) return put.error();
  Status removed = RemoveTag(origin, repo, tag);
  Invalidate(node.registry, repo, tag);
  if (!removed.ok()) {
    // Never left under both names: take the new one back.
    Status undo = RemoveTag(origin, repo, new_name);
    Invalidate(node.registry, repo, new_name);
    Error e =
        Annotate(removed.error(), "removing " + repo + ":" + tag + " after tagging " + new_name);
    if (!undo.ok()) e.message += "; " + new_name + " is left too: " + undo.error().message;
    return e;
  }
  // The kernel keeps the directory's inode under its new name: it is now the new tag's.
  std::lock_guard<std::mutex> lock(mu_);
  local_dirs_.erase(node.registry + "|" + node.path);
  auto old = inos_.find(key);
  if (old != inos_.end()) {
    uint64_t ino = old->second;
    inos_.erase(old);
    std::string new_key = "I|" + node.registry + "|" + repo + "|" + new_name;
    Node& moved = nodes_[ino];
    moved.kind = Kind::kImage;
    moved.path = repo;
    moved.ref = new_name;
    moved.key = new_key;
    inos_[new_key] = ino;
  }
  return Ok();
}

Result<size_t> Filesystem::CopyFileRange(uint64_t in_id, int64_t in_off, uint64_t out_id,
                                         int64_t out_off, size_t len) {
  ASSIGN_OR_RETURN(auto in, HandleOf(in_id));
  ASSIGN_OR_RETURN(auto out, HandleOf(out_id));
  // Only a whole blob into a staged file of its name; anything else the caller copies itself.
  if (!in->blob || !out->staging || out->name != DigestHex(in->blob_info.digest)) {
    return MakeError(
        EOPNOTSUPP, "only a whole blob into the staged file of its name is copied at the registry");
  }
  if (in_off >= in->blob_info.size) return size_t{0};
  if (in_off != 0 || out_off != 0 || len < static_cast<size_t>(in->blob_info.size)) {
    return MakeError(
        EOPNOTSUPP, "only a whole blob into the staged file of its name is copied at the registry");
  }
  DockerReference where;
  where.registry = in->location.client->registry();
  where.repository = in->location.repository;
  where.digest = in->blob_info.digest;
  auto src = NewDockerSource(where, in->location.client);
  std::lock_guard<std::mutex> lock(out->mu);
  Status s = out->staging->CopyFrom(out->name, *src, in->blob_info);
  if (!s.ok()) return s.error();
  out->dirty = true;
  return static_cast<size_t>(in->blob_info.size);
}

}  // namespace regfs
