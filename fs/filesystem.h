// Filesystem: the FUSE-free core of `regfs mount` (DESIGN §1). It maps inode numbers to nodes
// of the tree — registries, namespaces, repositories, image directories in dir: layout, their
// files, the repo:tag and repo@digest symlinks and the .regfs control directory — and answers
// lookups, listings, attributes and reads with errno-carrying Results. The FUSE adapter only
// translates calls to these methods.
//
// Thread-safe: called from the FUSE worker threads. Network requests are made without holding
// the filesystem lock, so a slow registry never blocks paths of another.
//
// Errors are returned, each with a message, and logged by the caller (the FUSE adapter logs a
// failed operation once); the core logs nothing about the operations it answers.
//
// Lookup counts follow libfuse's passthrough_hp: a lookup that returns a node counts one, and
// the caller that cannot hand it to the kernel (a failed reply) gives it back with Forget.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fs/blob_cache.h"
#include "fs/blob_store.h"
#include "fs/fetch_pool.h"
#include "fs/lru_cache.h"
#include "fs/mount_options.h"
#include "fs/staging_image.h"
#include "transports/manifest/manifest.h"
#include "transports/registry/registry.h"
#include "transports/signature/policy.h"

namespace regfs {

inline constexpr uint64_t kRootIno = 1;

struct NodeAttr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type and permission bits
  uint32_t nlink = 1;
  int64_t size = 0;
  double timeout = 0;        // seconds the kernel may cache the attributes
  double entry_timeout = 0;  // seconds it may cache the name → inode entry
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0;
};

struct OpenedFile {
  uint64_t handle = 0;
  bool keep_cache = false;  // content addressed by digest: never changes
  bool direct_io = false;   // generated on open (stats): no page cache, reads to EOF
};

class Filesystem {
 public:
  // `registries` opens the registry of a host on first use; `counters` (optional) is what
  // those registries count, shown in .regfs/stats.
  static Result<std::unique_ptr<Filesystem>> Create(
      const MountOptions& options, RegistryFactory registries,
      std::shared_ptr<RegistryCounters> counters = nullptr);
  ~Filesystem();

  // Counts one lookup of the inode returned; an error counts none.
  Result<NodeAttr> Lookup(uint64_t parent, const std::string& name);
  // Gives back `count` lookups; a node left with none is dropped. Forgetting more than was
  // counted is a bug, reported as an error (the count is then taken as zero).
  Status Forget(uint64_t ino, uint64_t count);
  Result<NodeAttr> GetAttr(uint64_t ino);
  // What `df` shows: the cache, its size bounded by cache_size.
  struct SpaceUsage {
    int64_t total = 0;  // bytes: cache_size
    int64_t used = 0;   // bytes: cached blobs and downloads in progress
  };
  SpaceUsage Space() const;
  Result<std::vector<DirEntry>> ReadDir(uint64_t ino);
  Result<std::string> ReadLink(uint64_t ino);
  // `writer`: the process opening, as the kernel names it (0: unknown).
  Result<OpenedFile> Open(uint64_t ino, int flags, pid_t writer = 0);
  Result<size_t> Read(uint64_t handle, char* buf, size_t size, int64_t off);
  void Release(uint64_t handle);
  Result<std::string> GetXattr(uint64_t ino, const std::string& name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);

  // The write side (fs/filesystem_write.cc): writing is pushing, removing is deleting.
  // Mkdir and Create count one lookup of the inode they return, as Lookup does.
  Result<NodeAttr> Mkdir(uint64_t parent, const std::string& name);
  Result<std::pair<NodeAttr, OpenedFile>> Create(uint64_t parent, const std::string& name,
                                                 pid_t writer = 0);
  Result<size_t> Write(uint64_t handle, const char* data, size_t size, int64_t off);
  // The close() of a file: a staged file is checked, and the image pushed when complete.
  Status Flush(uint64_t handle);
  // Truncation of a staged file; mode, owner and times are accepted and ignored (cp -a).
  Result<NodeAttr> SetAttr(uint64_t ino, const int64_t* size);
  Status Unlink(uint64_t parent, const std::string& name);
  Status Rmdir(uint64_t parent, const std::string& name);
  Status Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                const std::string& new_name);
  // copy_file_range from a blob of this mount into a staged blob: done at the registry.
  Result<size_t> CopyFileRange(uint64_t in_handle, int64_t in_off, uint64_t out_handle,
                               int64_t out_off, size_t len);

  // One line to the log (the log= file, else stderr).
  void Log(const std::string& line);
  // How to make the kernel drop its entry of `name` in directory `parent_ino` (FUSE's
  // notify_inval_entry), set before the mount serves; called outside every lock, never waited
  // for by a request.
  void SetEntryInvalidator(std::function<void(uint64_t parent_ino, const std::string& name)> f) {
    invalidate_entry_ = std::move(f);
  }
  // What a long-lived mount does now and then (every kHousekeepingSeconds, from a thread of
  // the FUSE adapter), so that what it holds follows what it serves even while nobody writes
  // or lists: drops the staging images that are done (SweepStagings), and hands the heap's
  // free pages back to the system (malloc_trim: freed buffers of many threads otherwise stay
  // in their arenas, and RSS creeps up over hours though nothing leaks).
  void Housekeep();
  static constexpr int kHousekeepingSeconds = 10;
  // Where an inode is in the tree, for the log: "<registry>/<repo>/<tag>/manifest.json", ""
  // for the root, "inode N" for one not known.
  std::string PathOf(uint64_t ino);

  // How many entries the in-memory caches hold now (.regfs/stats, tests).
  struct CachedEntries {
    size_t views = 0;
    size_t tag_digests = 0;
    size_t tag_lists = 0;
    size_t catalogs = 0;
    size_t locations = 0;
    size_t dirs = 0;
    size_t signatures = 0;  // attachment listings
    size_t verdicts = 0;
    // Not bounded by caps: the inodes the kernel holds, and what this mount made.
    size_t inodes = 0;
    size_t staging_images = 0;
    size_t local_dirs = 0;
  };
  CachedEntries Cached();

 private:
  enum class Kind {
    kRoot,
    kControl,
    kStats,
    kPid,
    kRegistry,
    kNamespace,
    kImage,
    kManifestFile,
    kVersion,
    kInstanceManifest,
    kBlob,
    kSymlink,
    kLocalDir,    // made by mkdir: a namespace, repository or tag until pushed
    kStagedFile,  // a file of a staging image
    kSignature,   // signature-N: a sigstore signature from the image's attachment
  };
  struct Node {
    Kind kind = Kind::kRoot;
    std::string registry;
    std::string path;    // namespace path, or the repository of an image and its files
    std::string ref;     // image: tag or digest
    std::string digest;  // instance manifest, blob
    std::string media_type;
    std::string target;  // symlink; staged file: its name; image files: the directory's ref
    int64_t size = 0;
    uint64_t lookups = 0;
    std::string key;      // in inos_
    uint64_t parent = 0;  // the lookup that gave it last, in children_
    std::string name;
    // Signatures: N - 1, and the layer annotations (digest: the payload's, media_type: its
    // MIME type, ref: the manifest digest signed, target: the directory's ref).
    size_t index = 0;
    std::map<std::string, std::string> annotations;
  };
  static Node MakeNode(Kind kind, std::string registry = {}, std::string path = {},
                       std::string ref = {}, std::string digest = {}, std::string media_type = {}) {
    Node n;
    n.kind = kind;
    n.registry = std::move(registry);
    n.path = std::move(path);
    n.ref = std::move(ref);
    n.digest = std::move(digest);
    n.media_type = std::move(media_type);
    return n;
  }
  struct ImageEntry {
    std::string name;
    Kind kind;
    std::string digest;
    std::string media_type;
    int64_t size = 0;
    std::map<std::string, std::string> annotations;  // signatures
  };
  // The sigstore signatures in the attachment of a manifest, as listed (signature-N, N from
  // 1): kind kSignature, digest and size of the payload, MIME type and annotations, and the
  // file's size computed from them. Payloads are fetched on read.
  struct SignatureList {
    std::vector<ImageEntry> entries;
    std::vector<int64_t> payload_sizes;
  };
  // A policy verdict on an image directory's manifest.
  struct CachedVerdict {
    std::chrono::steady_clock::time_point expires;
    PolicyVerdict verdict;
  };
  // An image directory's contents, by the digest of its top-level manifest.
  struct ImageView {
    RawManifest top;
    std::vector<ImageEntry> entries;
    std::map<std::string, std::string> instance_bytes;  // digest → manifest bytes
  };
  // What an image directory ("registry/repo/ref") was last seen to show, for the count of
  // directories known to hold each blob (blob_dirs_).
  struct DirBlobs {
    std::string manifest_digest;
    std::vector<std::string> blobs;
  };
  // The files left in the directory of an image deleted by unlinking its manifest.json.
  // Like Timed, it has an `expires`: PeekUnexpired() and PutExpiring() take both.
  struct Leftovers {
    std::shared_ptr<const ImageView> view;
    std::set<std::string> gone;
    std::chrono::steady_clock::time_point expires;
  };
  template <class T>
  struct Timed {
    std::chrono::steady_clock::time_point expires;
    T value;
  };
  struct OpenHandle {
    ~OpenHandle() {
      if (staging) staging->CloseFile();
    }
    std::string bytes;           // small files, pinned at open
    std::shared_ptr<Blob> blob;  // blobs
    BlobInfo blob_info;          // blobs
    BlobLocation location;       // blobs
    ReadCursor cursor;
    std::mutex mu;  // guards cursor and the write state below (lock order: see mu_)
    std::shared_ptr<StagingImage> staging;  // staged files
    std::string name;                       // staged files
    bool dirty = false;                     // written since the last flush
    // A file of a committed image opened for writing: the bytes are only checked against it.
    std::unique_ptr<Sha256> check;
    std::string check_digest;
    int64_t check_next = 0;
  };

  Filesystem(const MountOptions& options, RegistryFactory registries);

  // The registry of a host, opened on first use; an error (a blocked host) is not kept.
  Result<std::shared_ptr<Registry>> Client(const std::string& registry);
  // One listing of a registry's catalog, on a thread of its own (catalog_threads_), shared by
  // everyone who asks for that catalog meanwhile.
  struct CatalogFetch {
    std::chrono::steady_clock::time_point started;
    bool done = false;                                       // guarded by mu_
    std::optional<Result<std::vector<std::string>>> result;  // guarded by mu_, once done
  };
  // The catalog of a registry (empty for one without _catalog): the cached one, else the
  // listing's result if it comes before `deadline`, which is counted from the start of the
  // listing — started now unless one is in flight. nullopt: not listed yet (the listing goes
  // on and is cached when it ends). A failed listing is remembered for kFailureTtl seconds.
  Result<std::optional<std::vector<std::string>>> CatalogWithin(
      const std::string& registry, std::chrono::steady_clock::duration deadline);
  // The body of a catalog listing's thread: lists, caches the result, wakes the waiters.
  void ListCatalog(const std::string& registry, const std::shared_ptr<CatalogFetch>& fetch);
  using ListCache = LruCache<std::string, Timed<std::vector<std::string>>>;
  // How long ago a cached catalog or tag list was fetched (max when none is cached).
  std::chrono::steady_clock::duration ListAge(const ListCache& lists, const std::string& key,
                                              int ttl);
  // Tags of a repository; an empty list when it is not one.
  Result<std::vector<std::string>> Tags(const std::string& registry, const std::string& repo);
  // The image of directory registry/repo/ref; records the directory as holding its blobs
  // (NoteDirectoryLocked).
  Result<std::shared_ptr<const ImageView>> View(const std::string& registry,
                                                const std::string& repo, const std::string& ref);
  // The same, for a `ref` that is not a directory of the tree (a manifest file's digest).
  Result<std::shared_ptr<const ImageView>> FindOrBuildView(const std::string& registry,
                                                           const std::string& repo,
                                                           const std::string& ref);
  Result<std::shared_ptr<const ImageView>> BuildView(const std::string& registry,
                                                     const std::string& repo, RawManifest top);
  // Whether registries.d has the sigstore attachments of the repository read.
  bool AttachmentsOn(const std::string& registry, const std::string& repo) const;
  // The signature files of the image with `manifest_digest` in registry/repo: its attachment
  // manifest, looked up once per tag_ttl (an absent one too), none when attachments are off.
  Result<std::shared_ptr<const SignatureList>> SignaturesOf(const std::string& registry,
                                                            const std::string& repo,
                                                            const std::string& manifest_digest);
  // The directory's entries: the view's, then its signatures.
  Result<std::vector<ImageEntry>> EntriesOf(const std::string& registry, const std::string& repo,
                                            const ImageView& view);
  // The payload of a signature, fetched (and checked against its digest) unless kept.
  Result<std::string> PayloadOf(const std::string& registry, const std::string& repo,
                                const std::string& digest, int64_t size);
  // The signature file of an entry listed by SignaturesOf.
  Result<std::string> SignatureFile(const std::string& registry, const std::string& repo,
                                    const ImageEntry& e, int64_t payload_size);
  // The policy's verdict on the image whose directory is registry/repo/dir_ref and whose
  // manifest is `manifest_ref` (a digest, or dir_ref); kept per (repository, ref, manifest
  // digest): accepted ones until evicted, refused ones for tag_ttl.
  Result<PolicyVerdict> VerdictOf(const std::string& registry, const std::string& repo,
                                  const std::string& dir_ref, const std::string& manifest_ref);
  // EACCES when the policy refuses the image a file to be opened belongs to.
  Status CheckPolicy(const Node& node);
  // Records that directory `dir` ("registry/repo/ref") shows `view`: the directory holds its
  // blobs (st_nlink) and `where` is one more location of each. May evict the least recently
  // noted directory (UnnoteDirectoryLocked). REQUIRES: mu_ held.
  void NoteDirectoryLocked(const std::string& dir, const ImageView& view,
                           const BlobLocation& where);
  // Undoes what NoteDirectoryLocked() recorded for a directory that is evicted or shows
  // another image now: it no longer counts for its blobs, and its (registry, repository) is
  // no longer a location of a blob no other directory there holds. REQUIRES: mu_ held.
  void UnnoteDirectoryLocked(const std::string& dir, const DirBlobs& shown);
  // Where a blob node can be fetched from, in the order seen: recorded when a view listing it
  // was shown, which is done again if need be.
  Result<std::vector<BlobLocation>> LocationsOf(const Node& node);

  Result<Node> NodeOf(uint64_t ino);
  // Adds (or finds) the node for `key` and counts one lookup; `parent_ino` and `name`: the
  // lookup (or create, mkdir) that gave it, for LastLookup and Settle.
  uint64_t Intern(const std::string& key, const Node& node, uint64_t parent_ino = 0,
                  const std::string& name = {});
  Result<NodeAttr> AttrOf(uint64_t ino, const Node& node);
  static std::string ImageEntryKey(const std::string& registry, const std::string& repo,
                                   const std::string& dir_ref, const ImageEntry& e);
  // A repository removed by rmdir here, and not tagged since.
  bool IsRemoved(const std::string& registry, const std::string& path);
  // What is left of the directory of a deleted image, while it is.
  std::optional<Leftovers> LeftoversOf(const std::string& registry, const std::string& repo,
                                       const std::string& tag);
  // A name in an image directory: a staged file, else a file of the image at the registry.
  Result<Node> LookupInImage(const Node& dir, const std::string& name, std::string* key);
  Result<Node> LookupChild(const Node& parent, const std::string& name, std::string* key);
  std::string StatsJson();
  uint32_t DirMode() const;
  // The (registry, repository, tag) a directory stands for as an image, if it can.
  bool ImageOf(const Node& dir, std::string* repo, std::string* tag) const;
  // The staging image of a tag directory, or null. A settled one (pushed and idle) or an
  // abandoned one is dropped, and null returned.
  std::shared_ptr<StagingImage> StagingOf(const Node& dir);
  // Whether a staging image can go: pushed and settled, or abandoned (then a line for the log
  // is added to `log`).
  bool StagingDone(const StagingImage& staging, std::vector<std::string>* log) const;
  // A staging image settled or was abandoned: its directory shows the image at the registry
  // from now on (if there is one).
  // The kernel is told to drop its entries of the staged files and of the directory made for
  // it (which is no longer this mount's own), so that it forgets their inodes instead of
  // keeping one node per file ever written (`pending`: what to tell it once mu_ is released).
  void SettleLocked(const std::string& key, const StagingImage& staging,
                    std::vector<std::pair<uint64_t, std::string>>* pending);
  void InvalidateEntries(const std::vector<std::pair<uint64_t, std::string>>& entries);
  // Drops every staging image that is done (StagingDone), not only when its own directory is
  // looked up again: each holds its spill files until it goes, and a daemon that pushes tag
  // after tag, or sees copy after copy fail, would keep every one of them. Called when a
  // staging image is made and when a directory that may show one is listed.
  void SweepStagings();
  // Removes the staging image of a tag from stagings_ and returns it, to be dropped by the
  // caller outside mu_ (dropping it aborts its uploads).
  std::shared_ptr<StagingImage> TakeStaging(const std::string& registry, const std::string& repo,
                                            const std::string& tag);
  // The staging image of a tag directory, made if there is none.
  Result<std::shared_ptr<StagingImage>> StagingFor(const Node& dir);
  // Forgets what is cached about a tag (after a push or a delete).
  void Invalidate(const std::string& registry, const std::string& repo, const std::string& tag);
  Result<std::shared_ptr<OpenHandle>> HandleOf(uint64_t handle);
  uint64_t AddHandle(std::shared_ptr<OpenHandle> handle);
  Result<OpenedFile> OpenForWrite(const Node& node, int flags, pid_t writer);
  // Drops the kernel's entries, outside mu_ (the FUSE adapter does it on a thread of its own).
  std::function<void(uint64_t parent_ino, const std::string& name)> invalidate_entry_;
  // What the last successful lookup of (parent, name) gave, counted again as the kernel's.
  Result<NodeAttr> LastLookup(uint64_t parent_ino, const std::string& name);
  std::chrono::steady_clock::time_point Expiry(int seconds) const;

  const MountOptions options_;
  const RegistryFactory registries_factory_;
  std::shared_ptr<RegistryCounters> counters_;
  std::unique_ptr<BlobCache> cache_;
  std::unique_ptr<FetchPool> pool_;
  std::unique_ptr<BlobStore> blobs_;
  FILE* log_ = nullptr;

  // Locks, in the order they are taken (one is only taken while holding none after it):
  //   1. OpenHandle::mu, around one handle's reads or writes
  //   2. a StagingImage's push lock, then one of its files' stream lock: held across that
  //      image's own requests (uploads, the push), which only its writers wait for
  //   3. mu_, the filesystem lock: the tree and its caches. Never held across a network
  //      request, a blob's disk I/O or anything that can wait for one; a StagingImage or an
  //      OpenHandle is never destroyed under it
  //   4. a StagingImage's mu_ (its quick accessors, such as Settled(), are called under mu_)
  //   5. the locks inside BlobStore, BlobCache and the registries
  //   6. log_mu_, around one line of the log
  // So stat and readdir of one path never wait for a request about another, and those of a
  // staging image's directory never wait for its uploads.
  std::mutex log_mu_;

  std::mutex mu_;
  uint64_t next_ino_ = 2;  // guarded by mu_
  // The nodes the kernel holds a lookup of (and the root). Open handles keep what they read
  // (bytes, blob, staging image) rather than a node, and the kernel forgets no inode that has
  // an open file, so a node whose lookups reach zero is dropped.
  std::map<uint64_t, Node> nodes_;        // guarded by mu_
  std::map<std::string, uint64_t> inos_;  // key → ino, guarded by mu_
  // What the last lookup of (parent ino, name) that succeeded gave, while the kernel holds
  // it: the answer again when looking it up once more fails for a moment (Lookup).
  std::map<std::pair<uint64_t, std::string>, uint64_t> children_;  // guarded by mu_
  std::set<std::string> registries_;                               // guarded by mu_
  std::map<std::string, std::shared_ptr<Registry>> clients_;       // guarded by mu_
  std::set<std::string> uncataloged_;  // registries without _catalog, guarded by mu_
  // Catalog listings in flight by registry (one at most each), and the thread of each
  // registry's latest listing, joined before the next one starts and by the destructor, which
  // sets stopping_ first so that a listing that never ends stops at its next page.
  std::map<std::string, std::shared_ptr<CatalogFetch>> catalog_fetches_;  // guarded by mu_
  std::map<std::string, std::thread> catalog_threads_;                    // guarded by mu_
  std::condition_variable catalog_done_;  // a CatalogFetch is done (with mu_)
  std::atomic<bool> stopping_{false};
  // The caches, bounded by options_.caps. The timed ones are read with Peek(), so that their
  // oldest entries are those that expire first, and dropped once expired (PutExpiring).
  ListCache catalogs_;                                             // registry, guarded by mu_
  ListCache tags_;                                                 // "reg/repo", guarded by mu_
  LruCache<std::string, Timed<std::string>> tag_digests_;          // "reg/repo:tag", guarded by mu_
  LruCache<std::string, std::shared_ptr<const ImageView>> views_;  // digest, guarded by mu_
  // Image lookups that failed other than with ENOENT (a registry down, stalled, answering
  // garbage), answered with the same error for kFailureTtl seconds rather than each paying
  // the whole timeout again; and so are catalog listings that failed.
  LruCache<std::string, Timed<Error>> failures_;  // "reg/repo:ref", "reg|catalog", by mu_
  static constexpr int kFailureTtl = 5;
  // What each image directory shows (bounded: caps.dirs), and from it, for every blob, the
  // directories known to hold it and its locations in the order seen.
  LruCache<std::string, DirBlobs> dir_blobs_;                      // by dir, guarded by mu_
  std::map<std::string, std::set<std::string>> blob_dirs_;         // blob → dirs, by mu_
  std::map<std::string, std::vector<BlobLocation>> locations_;     // by blob, guarded by mu_
  uint64_t next_handle_ = 1;                                       // guarded by mu_
  std::map<uint64_t, std::shared_ptr<OpenHandle>> handles_;        // guarded by mu_
  std::set<std::string> local_dirs_;                               // "reg|path", guarded by mu_
  std::map<std::string, std::shared_ptr<StagingImage>> stagings_;  // "reg|repo|tag", by mu_
  LruCache<std::string, Leftovers> leftovers_;                     // "reg|repo|tag", by mu_
  // "reg|path" of repositories removed here (the value is unused), guarded by mu_.
  LruCache<std::string, bool> removed_;
  // Attachment listings by "reg/repo@digest", guarded by mu_.
  LruCache<std::string, Timed<std::shared_ptr<const SignatureList>>> signatures_;
  LruCache<std::string, std::string> payloads_;    // small signature payloads by digest, by mu_
  LruCache<std::string, CachedVerdict> verdicts_;  // "reg/repo:ref@digest", guarded by mu_
};

}  // namespace regfs
