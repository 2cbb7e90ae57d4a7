#include "fs/filesystem.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/config/auth_file.h"
#include "transports/dir/dir_transport.h"
#include "transports/signature/sigstore.h"
#include "transports/types/image_reference.h"
#include "transports/types/signature.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

constexpr double kForever = 3600;
// A name missing from a cached list younger than this is not asked about again.
constexpr auto kRecheckAfter = std::chrono::seconds(1);
// How long a lookup waits for a catalog being listed (counted from the listing's start) before
// it decides without one, as in a registry that has none.
constexpr auto kCatalogWait = std::chrono::seconds(1);
constexpr uint32_t kDirMode = S_IFDIR | 0555;
constexpr uint32_t kFileMode = S_IFREG | 0444;

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string Join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

// A bound of at least one entry, as LruCache requires.
size_t Cap(size_t n) { return std::max<size_t>(1, n); }

// The daemon's threads (/proc/self/task), for .regfs/stats; -1 where /proc cannot tell.
int ThreadCount() {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

// Signature payloads up to this size are kept in memory (cosign's are a few hundred bytes).
constexpr size_t kKeptPayload = 16 << 10;

// "signature-N" → N - 1; false for any other name.
bool SignatureIndex(const std::string& name, size_t* index) {
  const std::string prefix = "signature-";
  if (!StartsWith(name, prefix) || name.size() == prefix.size() ||
      name.size() > prefix.size() + 6 || name[prefix.size()] == '0' ||
      name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
    return false;
  }
  *index = std::stoul(name.substr(prefix.size())) - 1;
  return true;
}

// What identifies a signature file's content: its payload's digest, MIME type and
// annotations (two signers of one image share a payload).
std::string SignatureId(const std::string& payload_digest, const std::string& mime_type,
                        const std::map<std::string, std::string>& annotations) {
  Signature sig;
  sig.mime_type = mime_type;
  sig.annotations = annotations;
  return DigestOf(payload_digest + "\n" + SignatureBlob(sig));
}

}  // namespace

Filesystem::Filesystem(const MountOptions& options, RegistryFactory registries)
    : options_(options),
      registries_factory_(std::move(registries)),
      catalogs_(Cap(options.caps.catalogs)),
      tags_(Cap(options.caps.tag_lists)),
      tag_digests_(Cap(options.caps.tag_digests)),
      views_(Cap(options.caps.views)),
      failures_(Cap(options.caps.failures)),
      dir_blobs_(Cap(options.caps.dirs)),
      leftovers_(Cap(options.caps.gone)),
      removed_(Cap(options.caps.gone)),
      signatures_(Cap(options.caps.signatures)),
      payloads_(Cap(options.caps.payloads)),
      verdicts_(Cap(options.caps.verdicts)) {}

Filesystem::~Filesystem() {
  stopping_ = true;  // a catalog listing stops at its next page
  std::map<std::string, std::thread> listings;
  std::map<uint64_t, std::shared_ptr<OpenHandle>> handles;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listings.swap(catalog_threads_);
    handles.swap(handles_);
  }
  for (auto& [registry, thread] : listings) thread.join();  // they end by taking mu_
  handles.clear();                                          // outside mu_, as everywhere
  pool_.reset();  // waits for running downloads before the store and cache go
  blobs_.reset();
  cache_.reset();
  if (log_ && log_ != stderr) std::fclose(log_);
}

Result<std::unique_ptr<Filesystem>> Filesystem::Create(const MountOptions& options,
                                                       RegistryFactory registries,
                                                       std::shared_ptr<RegistryCounters> counters) {
  std::unique_ptr<Filesystem> fs(new Filesystem(options, std::move(registries)));
  fs->counters_ = counters ? std::move(counters) : std::make_shared<RegistryCounters>();
  fs->log_ = stderr;
  if (!options.log_file.empty()) {
    fs->log_ = std::fopen(options.log_file.c_str(), "ae");
    if (!fs->log_) return SysError("opening log file", options.log_file);
    std::setvbuf(fs->log_, nullptr, _IOLBF, 0);
  }
  ASSIGN_OR_RETURN(fs->cache_, BlobCache::Open(options.cache_dir, options.cache_size));
  RETURN_IF_ERROR(RemoveAll(options.cache_dir + "/staging"));  // a previous mount's leftovers
  RETURN_IF_ERROR(MakeDirs(options.cache_dir + "/staging", 0700));
  fs->pool_ = std::make_unique<FetchPool>(8);
  Filesystem* self = fs.get();
  fs->blobs_ = std::make_unique<BlobStore>(fs->cache_.get(), fs->pool_.get(), options.verify,
                                           [self](const std::string& line) { self->Log(line); });
  fs->registries_ = RegistriesWithCredentials(options.authfile);
  fs->nodes_[kRootIno] = MakeNode(Kind::kRoot);
  fs->nodes_[kRootIno].lookups = 1;
  return fs;
}

void Filesystem::Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu_);
  char stamp[32];
  time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &t);
  std::fprintf(log_, "%s regfs: %s\n", stamp, line.c_str());
}

std::chrono::steady_clock::time_point Filesystem::Expiry(int seconds) const {
  return std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
}

Result<std::shared_ptr<Registry>> Filesystem::Client(const std::string& registry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(registry);
    if (it != clients_.end()) return it->second;
  }
  // Opening makes no request, but may read configuration files: not under mu_.
  ASSIGN_OR_RETURN(std::shared_ptr<Registry> opened,
                   registries_factory_(registry, [this](const std::string& line) { Log(line); }));
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.try_emplace(registry, std::move(opened)).first->second;
}

Result<std::optional<std::vector<std::string>>> Filesystem::CatalogWithin(
    const std::string& registry, std::chrono::steady_clock::duration deadline) {
  std::thread finished;  // the previous listing's, joined outside mu_
  std::unique_lock<std::mutex> lock(mu_);
  if (auto* cached = PeekUnexpired(catalogs_, registry)) {
    return std::optional<std::vector<std::string>>(cached->value);
  }
  if (auto* failed = PeekUnexpired(failures_, registry + "|catalog")) return failed->value;
  std::shared_ptr<CatalogFetch>& fetch = catalog_fetches_[registry];
  if (!fetch) {
    fetch = std::make_shared<CatalogFetch>();
    fetch->started = std::chrono::steady_clock::now();
    std::thread& slot = catalog_threads_[registry];
    finished = std::move(slot);  // done: a listing leaves catalog_fetches_ as it ends
    slot = std::thread([this, registry, f = fetch] { ListCatalog(registry, f); });
  }
  std::shared_ptr<CatalogFetch> waited = fetch;
  catalog_done_.wait_until(lock, waited->started + deadline, [&] { return waited->done; });
  std::optional<Result<std::vector<std::string>>> result = waited->result;
  lock.unlock();
  if (finished.joinable()) finished.join();
  if (!result) return std::optional<std::vector<std::string>>();
  if (!result->ok()) return result->error();
  return std::optional<std::vector<std::string>>(std::move(*result).value());
}

void Filesystem::ListCatalog(const std::string& registry,
                             const std::shared_ptr<CatalogFetch>& fetch) {
  Result<std::vector<std::string>> repos = MakeError(ECANCELED, "not listed");
  auto client = Client(registry);
  if (!client.ok()) {
    repos = client.error();
  } else {
    repos = (*client)->Catalog([this] { return stopping_.load(); });
  }
  bool missing =
      !repos.ok() && (repos.error().errnum == ENOENT || repos.error().errnum == EOPNOTSUPP);
  if (missing) {
    // A registry without _catalog lists nothing, but lookups still work (LookupChild).
    repos = std::vector<std::string>{};
  } else if (!repos.ok() && repos.error().errnum != ECANCELED) {
    // Nobody may be waiting for it: lookups went on without the catalog (LookupChild).
    Log("the catalog of " + registry + " is not available: " + repos.error().message);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (repos.ok()) {
    if (missing) {
      uncataloged_.insert(registry);
    } else {
      uncataloged_.erase(registry);
    }
    PutExpiring(catalogs_, registry, {Expiry(options_.list_ttl), *repos});
  } else if (repos.error().errnum != ECANCELED) {
    PutExpiring(failures_, registry + "|catalog",
                {Expiry(std::min(kFailureTtl, options_.list_ttl)), repos.error()});
  }
  fetch->result = std::move(repos);
  fetch->done = true;
  catalog_fetches_.erase(registry);
  catalog_done_.notify_all();
}

std::chrono::steady_clock::duration Filesystem::ListAge(const ListCache& lists,
                                                        const std::string& key, int ttl) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto* list = lists.Peek(key);
  if (!list) return std::chrono::steady_clock::duration::max();
  return std::chrono::steady_clock::now() - (list->expires - std::chrono::seconds(ttl));
}

Result<std::vector<std::string>> Filesystem::Tags(const std::string& registry,
                                                  const std::string& repo) {
  std::string key = registry + "/" + repo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto* cached = PeekUnexpired(tags_, key)) return cached->value;
    if (auto* failed = PeekUnexpired(failures_, key + "|tags")) return failed->value;
  }
  ASSIGN_OR_RETURN(auto client, Client(registry));
  auto tags = client->ListTags(repo);
  if (!tags.ok()) {
    if (tags.error().errnum != ENOENT) {
      std::lock_guard<std::mutex> lock(mu_);
      PutExpiring(failures_, key + "|tags",
                  {Expiry(std::min(kFailureTtl, options_.list_ttl)), tags.error()});
      return tags.error();
    }
    tags = std::vector<std::string>{};
  }
  std::lock_guard<std::mutex> lock(mu_);
  PutExpiring(tags_, key, {Expiry(options_.list_ttl), *tags});
  return *tags;
}

Result<std::shared_ptr<const Filesystem::ImageView>> Filesystem::View(const std::string& registry,
                                                                      const std::string& repo,
                                                                      const std::string& ref) {
  ASSIGN_OR_RETURN(auto view, FindOrBuildView(registry, repo, ref));
  std::string dir = registry + "/" + repo + "/" + ref;
  auto noted = [&] {
    const DirBlobs* shown = dir_blobs_.Find(dir);
    return shown && shown->manifest_digest == view->top.digest;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (noted()) return view;
  }
  ASSIGN_OR_RETURN(auto client, Client(registry));  // no request: opened already
  std::lock_guard<std::mutex> lock(mu_);
  if (!noted()) NoteDirectoryLocked(dir, *view, BlobLocation{client, repo});
  return view;
}

void Filesystem::NoteDirectoryLocked(const std::string& dir, const ImageView& view,
                                     const BlobLocation& where) {
  // A tag that moved: its directory no longer holds the blobs of the old image.
  if (const DirBlobs* before = dir_blobs_.Peek(dir)) UnnoteDirectoryLocked(dir, *before);
  DirBlobs shown;
  shown.manifest_digest = view.top.digest;
  for (const ImageEntry& e : view.entries) {
    if (e.kind != Kind::kBlob) continue;
    shown.blobs.push_back(e.digest);
    blob_dirs_[e.digest].insert(dir);
    std::vector<BlobLocation>& known = locations_[e.digest];
    bool seen = std::any_of(known.begin(), known.end(), [&](const BlobLocation& l) {
      return l.repository == where.repository && l.client->registry() == where.client->registry();
    });
    if (!seen) known.push_back(where);
  }
  for (const auto& [gone, what] : dir_blobs_.Put(dir, std::move(shown))) {
    UnnoteDirectoryLocked(gone, what);
  }
}

void Filesystem::UnnoteDirectoryLocked(const std::string& dir, const DirBlobs& shown) {
  // dir is "registry/repo/ref" and a ref has no '/': the directory's location is its prefix.
  const std::string place = dir.substr(0, dir.rfind('/') + 1);
  auto same_place = [&](const std::string& other) {
    return other.size() > place.size() && other.compare(0, place.size(), place) == 0 &&
           other.find('/', place.size()) == std::string::npos;
  };
  for (const std::string& b : shown.blobs) {
    auto dirs = blob_dirs_.find(b);
    if (dirs == blob_dirs_.end()) continue;
    dirs->second.erase(dir);
    bool place_still_holds = std::any_of(dirs->second.begin(), dirs->second.end(), same_place);
    if (dirs->second.empty()) blob_dirs_.erase(dirs);
    if (place_still_holds) continue;
    auto known = locations_.find(b);
    if (known == locations_.end()) continue;
    std::erase_if(known->second, [&](const BlobLocation& l) {
      return place == l.client->registry() + "/" + l.repository + "/";
    });
    if (known->second.empty()) locations_.erase(known);
  }
}

Result<std::shared_ptr<const Filesystem::ImageView>> Filesystem::FindOrBuildView(
    const std::string& registry, const std::string& repo, const std::string& ref) {
  std::string digest = IsSha256Digest(ref) ? ref : "";
  std::string tag_key = registry + "/" + repo + ":" + ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (digest.empty()) {
      if (auto* cached = PeekUnexpired(tag_digests_, tag_key)) digest = cached->value;
    }
    if (!digest.empty()) {
      if (auto* view = views_.Find(digest)) return *view;
    }
    if (auto* failed = PeekUnexpired(failures_, tag_key)) return failed->value;
  }
  ASSIGN_OR_RETURN(auto client, Client(registry));
  auto fetched = client->GetManifest(repo, digest.empty() ? ref : digest);
  if (!fetched.ok()) {
    if (fetched.error().errnum != ENOENT) {
      std::lock_guard<std::mutex> lock(mu_);
      PutExpiring(failures_, tag_key,
                  {Expiry(std::min(kFailureTtl, options_.tag_ttl)), fetched.error()});
    }
    return fetched.error();
  }
  RawManifest top = std::move(fetched).value();
  if (!IsSha256Digest(ref)) {
    std::lock_guard<std::mutex> lock(mu_);
    PutExpiring(tag_digests_, tag_key, {Expiry(options_.tag_ttl), top.digest});
    if (auto* view = views_.Find(top.digest)) return *view;
  }
  auto built = BuildView(registry, repo, std::move(top));
  if (!built.ok() && built.error().errnum != ENOENT) {
    // Content that does not parse, a bad instance manifest: not asked for again at once either.
    std::lock_guard<std::mutex> lock(mu_);
    PutExpiring(failures_, tag_key,
                {Expiry(std::min(kFailureTtl, options_.tag_ttl)), built.error()});
  }
  return built;
}

Result<std::shared_ptr<const Filesystem::ImageView>> Filesystem::BuildView(
    const std::string& registry, const std::string& repo, RawManifest top) {
  ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(top.bytes, top.media_type));
  auto view = std::make_shared<ImageView>();
  view->entries.push_back({"manifest.json",
                           Kind::kManifestFile,
                           top.digest,
                           top.media_type,
                           static_cast<int64_t>(top.bytes.size()),
                           {}});
  view->entries.push_back(
      {"version", Kind::kVersion, "", "", static_cast<int64_t>(kDirVersion.size()), {}});
  std::vector<Manifest> images;
  ASSIGN_OR_RETURN(auto client, Client(registry));
  if (parsed.is_index) {
    for (const Descriptor& d : parsed.manifests) {
      ASSIGN_OR_RETURN(RawManifest inst, client->GetManifest(repo, d.digest));
      ASSIGN_OR_RETURN(Manifest m, ParseManifest(inst.bytes, inst.media_type));
      if (m.is_index) return MakeError(EOPNOTSUPP, "nested indexes are not supported");
      view->entries.push_back({std::string(DigestHex(d.digest)) + ".manifest.json",
                               Kind::kInstanceManifest,
                               d.digest,
                               inst.media_type,
                               static_cast<int64_t>(inst.bytes.size()),
                               {}});
      view->instance_bytes[d.digest] = std::move(inst.bytes);
      images.push_back(std::move(m));
    }
  } else {
    images.push_back(std::move(parsed));
  }
  std::set<std::string> seen;
  for (const Manifest& m : images) {
    std::vector<const Descriptor*> blobs = {&m.config};
    for (const auto& l : m.layers) blobs.push_back(&l);
    for (const Descriptor* d : blobs) {
      if (!seen.insert(d->digest).second) continue;
      view->entries.push_back(
          {std::string(DigestHex(d->digest)), Kind::kBlob, d->digest, d->media_type, d->size, {}});
    }
  }
  view->top = std::move(top);
  // Declared before the lock so that the views evicted are destroyed after it is released.
  std::vector<std::pair<std::string, std::shared_ptr<const ImageView>>> evicted;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto* built = views_.Find(view->top.digest)) return *built;  // by another thread meanwhile
  evicted = views_.Put(view->top.digest, view);
  return std::shared_ptr<const ImageView>(view);
}

bool Filesystem::AttachmentsOn(const std::string& registry, const std::string& repo) const {
  return !options_.sigstore_attachments || options_.sigstore_attachments(registry, repo);
}

Result<std::shared_ptr<const Filesystem::SignatureList>> Filesystem::SignaturesOf(
    const std::string& registry, const std::string& repo, const std::string& manifest_digest) {
  static const auto kNone = std::make_shared<const SignatureList>();
  if (!AttachmentsOn(registry, repo)) return kNone;
  std::string key = registry + "/" + repo + "@" + manifest_digest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto* cached = PeekUnexpired(signatures_, key)) return cached->value;
  }
  ASSIGN_OR_RETURN(auto client, Client(registry));
  auto list = std::make_shared<SignatureList>();
  auto attachment = client->GetManifest(repo, SigstoreAttachmentTag(manifest_digest));
  if (!attachment.ok() && attachment.error().errnum != ENOENT) {
    return Annotate(std::move(attachment).error(), "reading the signatures of " + manifest_digest);
  }
  if (attachment.ok()) {
    // An attachment that is no OCI image manifest holds no signatures regfs can show.
    auto parsed = ParseManifest(attachment->bytes, attachment->media_type);
    if (parsed.ok() && !parsed->is_index) {
      for (const Descriptor& layer : parsed->layers) {
        // Every layer, as containers/image reads them (other MIME types too: a verifier
        // refuses those), but for those no copy could read either.
        if (!IsSha256Digest(layer.digest) || layer.size < 0 || layer.size > kMaxSignatureSize) {
          continue;
        }
        // The file's size from the descriptor alone: base64's length depends on the size only.
        Signature sig;
        sig.mime_type = layer.media_type;
        sig.payload.assign(static_cast<size_t>(layer.size), '\0');
        sig.annotations = layer.annotations;
        ImageEntry e;
        e.name = "signature-" + std::to_string(list->entries.size() + 1);
        e.kind = Kind::kSignature;
        e.digest = layer.digest;
        e.media_type = layer.media_type;
        e.size = static_cast<int64_t>(SignatureBlob(sig).size());
        e.annotations = layer.annotations;
        list->entries.push_back(std::move(e));
        list->payload_sizes.push_back(layer.size);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  PutExpiring(signatures_, key, {Expiry(options_.tag_ttl), list});
  return std::shared_ptr<const SignatureList>(list);
}

Result<std::vector<Filesystem::ImageEntry>> Filesystem::EntriesOf(const std::string& registry,
                                                                  const std::string& repo,
                                                                  const ImageView& view) {
  ASSIGN_OR_RETURN(auto sigs, SignaturesOf(registry, repo, view.top.digest));
  std::vector<ImageEntry> out = view.entries;
  out.insert(out.end(), sigs->entries.begin(), sigs->entries.end());
  return out;
}

Result<std::string> Filesystem::PayloadOf(const std::string& registry, const std::string& repo,
                                          const std::string& digest, int64_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto* kept = payloads_.Find(digest)) return *kept;
  }
  ASSIGN_OR_RETURN(auto client, Client(registry));
  std::string bytes;
  RETURN_IF_ERROR(
      client->GetBlobRange(repo, digest, 0, -1, size, [&](const char* data, size_t n) -> Status {
        if (static_cast<int64_t>(bytes.size() + n) > kMaxSignatureSize) {
          return MakeError(EFBIG, "signature payload " + digest + " is over the limit");
        }
        bytes.append(data, n);
        return Ok();
      }));
  if (DigestOf(bytes) != digest) {
    return MakeError(EIO,
                     "signature payload " + digest + " has content with digest " + DigestOf(bytes));
  }
  if (bytes.size() <= kKeptPayload) {
    std::lock_guard<std::mutex> lock(mu_);
    payloads_.Put(digest, bytes);
  }
  return bytes;
}

Result<std::string> Filesystem::SignatureFile(const std::string& registry, const std::string& repo,
                                              const ImageEntry& e, int64_t payload_size) {
  Signature sig;
  sig.mime_type = e.media_type;
  sig.annotations = e.annotations;
  ASSIGN_OR_RETURN(sig.payload, PayloadOf(registry, repo, e.digest, payload_size));
  return SignatureBlob(sig);
}

Result<PolicyVerdict> Filesystem::VerdictOf(const std::string& registry, const std::string& repo,
                                            const std::string& dir_ref,
                                            const std::string& manifest_ref) {
  ASSIGN_OR_RETURN(auto view, FindOrBuildView(registry, repo, manifest_ref));
  // The tag takes part: a signature's identity names it.
  std::string key = registry + "/" + repo + ":" + dir_ref + "@" + view->top.digest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto* cached = verdicts_.Find(key)) {
      if (cached->expires > std::chrono::steady_clock::now()) return cached->verdict;
      verdicts_.Erase(key);
    }
  }
  PolicyImage image;
  image.ref.transport = Transport::kDocker;
  image.ref.docker.registry = registry;
  image.ref.docker.repository = repo;
  if (IsSha256Digest(dir_ref)) {
    image.ref.docker.digest = dir_ref;
  } else {
    image.ref.docker.tag = dir_ref;
  }
  image.manifest = view->top.bytes;
  if (PolicyNeedsSignatures(*options_.policy, image.ref)) {
    ASSIGN_OR_RETURN(auto sigs, SignaturesOf(registry, repo, view->top.digest));
    for (size_t i = 0; i < sigs->entries.size(); ++i) {
      const ImageEntry& e = sigs->entries[i];
      Signature sig;
      sig.mime_type = e.media_type;
      sig.annotations = e.annotations;
      ASSIGN_OR_RETURN(sig.payload, PayloadOf(registry, repo, e.digest, sigs->payload_sizes[i]));
      image.signatures.push_back(std::move(sig));
    }
  }
  PolicyVerdict verdict = EvaluatePolicy(*options_.policy, image);
  auto expires =
      verdict.accepted ? std::chrono::steady_clock::time_point::max() : Expiry(options_.tag_ttl);
  std::lock_guard<std::mutex> lock(mu_);
  verdicts_.Put(key, {expires, verdict});
  return verdict;
}

Status Filesystem::CheckPolicy(const Node& node) {
  if (!options_.policy) return Ok();
  switch (node.kind) {
    case Kind::kManifestFile:
    case Kind::kVersion:
    case Kind::kInstanceManifest:
    case Kind::kBlob:
    case Kind::kSignature:
      break;
    default:
      return Ok();  // not a file of an image
  }
  // manifest.json and signature-N are of one manifest, named by digest in node.ref.
  bool by_digest = node.kind == Kind::kManifestFile || node.kind == Kind::kSignature;
  ASSIGN_OR_RETURN(PolicyVerdict verdict, VerdictOf(node.registry, node.path, node.target,
                                                    by_digest ? node.ref : node.target));
  if (verdict.accepted) return Ok();
  if (node.kind == Kind::kBlob) {
    // One inode wherever the blob is: readable when another directory holding it was
    // accepted.
    std::lock_guard<std::mutex> lock(mu_);
    auto dirs = blob_dirs_.find(node.digest);
    if (dirs != blob_dirs_.end()) {
      for (const std::string& dir : dirs->second) {
        const DirBlobs* shown = dir_blobs_.Peek(dir);
        size_t slash = dir.rfind('/');
        if (!shown || slash == std::string::npos) continue;
        std::string where = dir.substr(0, slash);  // "registry/repo"
        auto* cached =
            verdicts_.Peek(where + ":" + dir.substr(slash + 1) + "@" + shown->manifest_digest);
        if (cached && cached->verdict.accepted) return Ok();
      }
    }
  }
  return MakeError(EACCES, "refused by the signature policy: " + verdict.reason);
}

Filesystem::CachedEntries Filesystem::Cached() {
  std::lock_guard<std::mutex> lock(mu_);
  return {views_.size(),     tag_digests_.size(), tags_.size(),       catalogs_.size(),
          locations_.size(), dir_blobs_.size(),   signatures_.size(), verdicts_.size(),
          nodes_.size(),     stagings_.size(),    local_dirs_.size()};
}

Result<std::vector<BlobLocation>> Filesystem::LocationsOf(const Node& node) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = locations_.find(node.digest);
    if (it != locations_.end()) return it->second;
  }
  RETURN_IF_ERROR(View(node.registry, node.path, node.ref));  // records its blobs' locations
  std::lock_guard<std::mutex> lock(mu_);
  auto it = locations_.find(node.digest);
  if (it == locations_.end()) return MakeError(EIO, "no registry known for blob " + node.digest);
  return it->second;
}

Result<Filesystem::Node> Filesystem::NodeOf(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return MakeError(ENOENT, "stale inode");
  return it->second;
}

uint64_t Filesystem::Intern(const std::string& key, const Node& node, uint64_t parent_ino,
                            const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = inos_.find(key);
  uint64_t ino;
  if (it != inos_.end()) {
    ino = it->second;
  } else {
    ino = next_ino_++;
    inos_[key] = ino;
    nodes_[ino] = node;
    nodes_[ino].key = key;
  }
  Node& interned = nodes_[ino];
  ++interned.lookups;
  if (parent_ino != 0) {
    auto last = children_.find({interned.parent, interned.name});
    if (last != children_.end() && last->second == ino) children_.erase(last);
    interned.parent = parent_ino;
    interned.name = name;
    children_[{parent_ino, name}] = ino;
  }
  if (node.kind == Kind::kRegistry) registries_.insert(node.registry);
  return ino;
}

Status Filesystem::Forget(uint64_t ino, uint64_t count) {
  if (ino == kRootIno) return Ok();  // never dropped
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) {
    return MakeError(EINVAL, "bug: the kernel forgets " + std::to_string(count) +
                                 " lookups of inode " + std::to_string(ino) +
                                 ", which has none left");
  }
  Node& node = it->second;
  Status status = Ok();
  if (count > node.lookups) {
    // The kernel holds no more than it was given: a lookup reply was counted wrong.
    status = MakeError(EINVAL, "bug: the kernel forgets " + std::to_string(count) +
                                   " lookups of inode " + std::to_string(ino) + " (" + node.key +
                                   "), which has " + std::to_string(node.lookups));
    count = node.lookups;
  }
  node.lookups -= count;
  if (node.lookups > 0) return status;
  // The kernel has dropped the inode, and nothing else refers to it (see nodes_).
  auto child = children_.find({node.parent, node.name});
  if (child != children_.end() && child->second == ino) children_.erase(child);
  auto key = inos_.find(node.key);
  if (key != inos_.end() && key->second == ino) inos_.erase(key);  // not a renamed-over name
  nodes_.erase(it);
  return status;
}

std::string Filesystem::PathOf(uint64_t ino) {
  auto found = NodeOf(ino);
  if (!found.ok()) return "inode " + std::to_string(ino);
  const Node& n = *found;
  std::string dir = n.registry + (n.path.empty() ? "" : "/" + n.path);
  switch (n.kind) {
    case Kind::kRoot:
      return "";
    case Kind::kControl:
      return ".regfs";
    case Kind::kStats:
      return ".regfs/stats";
    case Kind::kPid:
      return ".regfs/pid";
    case Kind::kRegistry:
    case Kind::kNamespace:
    case Kind::kLocalDir:
      return dir;
    case Kind::kImage:
      return dir + "/" + n.ref;
    case Kind::kStagedFile:
      return dir + "/" + n.ref + "/" + n.target;
    case Kind::kManifestFile:
      return dir + "/" + n.target + "/manifest.json";
    case Kind::kVersion:
      return dir + "/" + n.target + "/version";
    case Kind::kInstanceManifest:
      return dir + "/" + n.target + "/" + std::string(DigestHex(n.digest)) + ".manifest.json";
    case Kind::kBlob:
      return dir + "/" + n.target + "/" + std::string(DigestHex(n.digest));
    case Kind::kSignature:
      return dir + "/" + n.target + "/signature-" + std::to_string(n.index + 1);
    case Kind::kSymlink: {
      size_t slash = n.target.find('/');
      std::string ref = n.target.substr(slash + 1);
      return dir + "/" + n.target.substr(0, slash) + (IsSha256Digest(ref) ? "@" : ":") + ref;
    }
  }
  return dir;
}

std::string Filesystem::ImageEntryKey(const std::string& registry, const std::string& repo,
                                      const std::string& dir_ref, const ImageEntry& e) {
  switch (e.kind) {
    case Kind::kBlob:
      return "B|" + e.digest;
    case Kind::kInstanceManifest:
      return "X|" + e.digest;
    case Kind::kManifestFile:
      // One inode per directory and manifest digest: an open manifest.json keeps the image it
      // was opened on, page cache included, however the tag moves.
      return "M|" + registry + "|" + repo + "|" + dir_ref + "|" + e.digest;
    case Kind::kSignature:
      // By repository and content: the attachment lives beside the manifest in its repository.
      return "G|" + registry + "|" + repo + "|" + dir_ref + "|" + e.name + "|" +
             SignatureId(e.digest, e.media_type, e.annotations);
    default:
      return "V|" + registry + "|" + repo + "|" + dir_ref;
  }
}

bool Filesystem::ImageOf(const Node& dir, std::string* repo, std::string* tag) const {
  if (dir.kind == Kind::kImage) {
    *repo = dir.path;
    *tag = dir.ref;
    return true;
  }
  if (dir.kind != Kind::kLocalDir) return false;
  size_t slash = dir.path.rfind('/');
  if (slash == std::string::npos || !IsValidTag(dir.path.substr(slash + 1))) return false;
  *repo = dir.path.substr(0, slash);
  *tag = dir.path.substr(slash + 1);
  return true;
}

std::optional<Filesystem::Leftovers> Filesystem::LeftoversOf(const std::string& registry,
                                                             const std::string& repo,
                                                             const std::string& tag) {
  std::lock_guard<std::mutex> lock(mu_);
  Leftovers* left = PeekUnexpired(leftovers_, registry + "|" + repo + "|" + tag);
  if (!left) return std::nullopt;
  return *left;
}

bool Filesystem::IsRemoved(const std::string& registry, const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!removed_.Peek(registry + "|" + path)) return false;
  }
  auto tags = Tags(registry, path);  // tagged again since?
  if (!tags.ok() || tags->empty()) return true;
  std::lock_guard<std::mutex> lock(mu_);
  removed_.Erase(registry + "|" + path);
  return false;
}

Result<Filesystem::Node> Filesystem::LookupInImage(const Node& dir, const std::string& name,
                                                   std::string* key) {
  std::string repo, ref;
  if (!ImageOf(dir, &repo, &ref)) return MakeError(ENOENT, "not an image directory");
  if (!IsSha256Digest(ref)) {
    // While a staging image is there, the directory is what was written into it.
    if (auto staging = StagingOf(dir)) {
      if (!staging->Has(name)) return MakeError(ENOENT, "not written into this staging image");
      *key = "S|" + dir.registry + "|" + repo + "|" + ref + "|" + name;
      Node n = MakeNode(Kind::kStagedFile, dir.registry, repo, ref);
      n.target = name;
      return n;
    }
  }
  std::shared_ptr<const ImageView> view;
  if (auto left = LeftoversOf(dir.registry, repo, ref)) {
    if (left->gone.count(name)) {
      return MakeError(ENOENT, "removed from the deleted image's directory");
    }
    view = left->view;
  }
  if (!view && dir.kind == Kind::kLocalDir) {
    // A directory made here names an image only once one is pushed under its tag.
    auto tags = Tags(dir.registry, repo);
    if (!tags.ok() || std::find(tags->begin(), tags->end(), ref) == tags->end()) {
      return MakeError(ENOENT, "no image is pushed under this tag yet");
    }
  }
  bool left = view != nullptr;
  if (!view) {
    ASSIGN_OR_RETURN(view, View(dir.registry, repo, ref));
  }
  size_t index = 0;
  if (!left && SignatureIndex(name, &index)) {
    ASSIGN_OR_RETURN(auto sigs, SignaturesOf(dir.registry, repo, view->top.digest));
    if (index >= sigs->entries.size()) return MakeError(ENOENT, "no such signature of the image");
    const ImageEntry& e = sigs->entries[index];
    Node n = MakeNode(e.kind, dir.registry, repo, view->top.digest, e.digest, e.media_type);
    n.size = e.size;
    n.target = ref;
    n.index = index;
    n.annotations = e.annotations;
    *key = ImageEntryKey(dir.registry, repo, ref, e);
    return n;
  }
  for (const ImageEntry& e : view->entries) {
    if (e.name != name) continue;
    Node n = MakeNode(e.kind, dir.registry, repo, ref, e.digest, e.media_type);
    n.size = e.size;
    n.target = ref;  // the directory's tag or digest, for writes
    if (e.kind == Kind::kManifestFile) n.ref = e.digest;
    *key = ImageEntryKey(dir.registry, repo, ref, e);
    return n;
  }
  return MakeError(ENOENT, "not a file of the image");
}

Result<Filesystem::Node> Filesystem::LookupChild(const Node& parent, const std::string& name,
                                                 std::string* key) {
  switch (parent.kind) {
    case Kind::kRoot:
      if (name == ".regfs") {
        *key = "C";
        return MakeNode(Kind::kControl);
      }
      if (!IsValidRegistryHost(name)) return MakeError(ENOENT, "not a registry host name");
      *key = "R|" + name;
      return MakeNode(Kind::kRegistry, name);
    case Kind::kControl:
      if (name == "stats") {
        *key = "C|stats";
        return MakeNode(Kind::kStats);
      }
      if (name == "pid") {
        *key = "C|pid";
        return MakeNode(Kind::kPid);
      }
      return MakeError(ENOENT, ".regfs holds stats and pid only");
    case Kind::kRegistry:
    case Kind::kNamespace:
    case Kind::kLocalDir: {
      const std::string& reg = parent.registry;
      const std::string& path = parent.path;
      {
        // Directories made by mkdir come first.
        std::lock_guard<std::mutex> lock(mu_);
        if (local_dirs_.count(reg + "|" + Join(path, name))) {
          *key = "D|" + reg + "|" + Join(path, name);
          return MakeNode(Kind::kLocalDir, reg, Join(path, name));
        }
      }
      if (parent.kind == Kind::kLocalDir) {
        auto in_image = LookupInImage(parent, name, key);
        if (in_image.ok() || in_image.error().errnum != ENOENT) return in_image;
        // Files written here make it an image directory: nothing else is in it.
        if (StagingOf(parent)) return MakeError(ENOENT, "not written into this staging image");
        // The first file a copy writes here is looked up first: a dir: layout name in a
        // directory made for an image is that image's file to be, not a repository to ask the
        // registry about (a request that may fail, and with it the copy of that file).
        std::string repo, tag;
        if (ImageOf(parent, &repo, &tag) && StagingImage::CheckName(name).ok()) {
          return MakeError(ENOENT, "not written into this image directory yet");
        }
      }
      // Pasted references: repo:tag and repo@sha256:… are symlinks into the tree.
      size_t at = name.find('@');
      size_t colon = name.find(':');
      if (at != std::string::npos || (colon != std::string::npos && !StartsWith(name, "sha256:"))) {
        size_t split = at != std::string::npos ? at : colon;
        std::string comp = name.substr(0, split), ref = name.substr(split + 1);
        bool ok = IsValidRepositoryComponent(comp) &&
                  (at != std::string::npos ? IsSha256Digest(ref) : IsValidTag(ref));
        if (!ok) return MakeError(ENOENT, "neither <repo>:<tag> nor <repo>@sha256:<hex>");
        Node n = MakeNode(Kind::kSymlink, reg, path);
        n.target = comp + "/" + ref;
        *key = "L|" + reg + "|" + path + "|" + name;
        return n;
      }
      if (!path.empty() && StartsWith(name, "sha256:")) {
        if (!IsSha256Digest(name)) return MakeError(ENOENT, "not a sha256 digest");
        RETURN_IF_ERROR(View(reg, path, name));  // exists? (then cached for good)
        Node n = MakeNode(Kind::kImage, reg, path, name);
        *key = "I|" + reg + "|" + path + "|" + name;
        return n;
      }
      bool tag_like = !path.empty() && IsValidTag(name);
      bool component_like = IsValidRepositoryComponent(name);
      if (!tag_like && !component_like) {
        return MakeError(ENOENT, "not a repository name component or tag");
      }
      if (tag_like) {
        ASSIGN_OR_RETURN(std::vector<std::string> tags, Tags(reg, path));
        if (std::find(tags.begin(), tags.end(), name) != tags.end()) {
          *key = "I|" + reg + "|" + path + "|" + name;
          return MakeNode(Kind::kImage, reg, path, name);
        }
      }
      // Without a catalog to tell, a component that is no repository may still be a
      // namespace, and only deeper lookups can tell: `uncataloged` when the registry has no
      // _catalog (or shows it to nobody), `unlisted` when it has not been listed within
      // kCatalogWait (a listing that is slow, endless or failed holds up no lookup), and
      // `catalog_error` when it failed for now.
      bool uncataloged = false, unlisted = false;
      std::optional<Error> catalog_error;
      if (component_like) {
        std::string child = Join(path, name);
        // Whether the catalog lists child; nullopt without a catalog to tell.
        auto in_catalog = [&]() -> std::optional<bool> {
          auto repos = CatalogWithin(reg, kCatalogWait);
          int err = repos.ok() ? 0 : repos.error().errnum;
          catalog_error.reset();
          if (err == EIO || err == EAGAIN || err == ETIMEDOUT) catalog_error = repos.error();
          std::lock_guard<std::mutex> lock(mu_);
          uncataloged = uncataloged_.count(reg) > 0 || err == EACCES;
          unlisted = !uncataloged && (!repos.ok() || !repos->has_value());
          if (uncataloged || unlisted) return std::nullopt;
          return std::any_of((*repos)->begin(), (*repos)->end(), [&](const std::string& r) {
            return r == child || StartsWith(r, child + "/");
          });
        };
        std::optional<bool> in = in_catalog();
        if (in == false && ListAge(catalogs_, reg, options_.list_ttl) > kRecheckAfter) {
          // A miss in a cached catalog: the repository may be new. Ask again, once.
          {
            std::lock_guard<std::mutex> lock(mu_);
            catalogs_.Erase(reg);
          }
          in = in_catalog();
        }
        bool listed = in.value_or(false) && !IsRemoved(reg, child);
        if (!listed) {
          auto tags = Tags(reg, child);  // not in the catalog: maybe a repository all the same
          if (!tags.ok()) return tags.error();
          listed = !tags->empty();
        }
        if (listed) {
          *key = "N|" + reg + "|" + child;
          return MakeNode(Kind::kNamespace, reg, child);
        }
      }
      if (tag_like && ListAge(tags_, reg + "/" + path, options_.list_ttl) > kRecheckAfter) {
        // A tag pushed since the list was cached.
        ASSIGN_OR_RETURN(auto client, Client(reg));
        auto digest = client->ResolveDigest(path, name);
        if (digest.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          tags_.Erase(reg + "/" + path);
          *key = "I|" + reg + "|" + path + "|" + name;
          return MakeNode(Kind::kImage, reg, path, name);
        }
        if (digest.error().errnum != ENOENT) return digest.error();
      }
      // Deeper lookups decide whether anything is there (docker.io/library/alpine): at a
      // registry without _catalog, and for a first component while the catalog cannot tell.
      // Below that, a name not listed yet is no namespace: it is more likely a new tag, and
      // taking it for a directory would send `cp -r IMG REPO/TAG` into REPO/TAG/IMG.
      if (component_like && (uncataloged || (unlisted && path.empty())) &&
          !IsRemoved(reg, Join(path, name))) {
        *key = "N|" + reg + "|" + Join(path, name);
        return MakeNode(Kind::kNamespace, reg, Join(path, name));
      }
      if (catalog_error) return *catalog_error;  // no telling, for now
      return MakeError(ENOENT, "no such tag or repository at the registry");
    }
    case Kind::kImage:
      return LookupInImage(parent, name, key);
    default:
      return MakeError(ENOTDIR, "not a directory");
  }
}

Result<NodeAttr> Filesystem::Lookup(uint64_t parent_ino, const std::string& name) {
  ASSIGN_OR_RETURN(Node parent, NodeOf(parent_ino));
  std::string key;
  auto found = LookupChild(parent, name, &key);
  if (!found.ok()) {
    // The kernel asks again about a name it holds when its entry expires — also for every
    // directory above a path being opened. A registry failing for a moment (EIO, EAGAIN)
    // does not make a directory or file it had a moment ago vanish from under a copy: the
    // last answer stands, for a second at a time, until one comes or the name is gone.
    int err = found.error().errnum;
    if (err == EIO || err == EAGAIN) {
      if (auto last = LastLookup(parent_ino, name); last.ok()) return last;
    }
    return found.error();
  }
  Node child = std::move(found).value();
  ASSIGN_OR_RETURN(NodeAttr attr, AttrOf(0, child));
  // Counted only now that nothing can fail: each lookup counted is one the kernel holds.
  attr.ino = Intern(key, child, parent_ino, name);
  // Which file a name in a tag's directory is changes when the tag moves.
  if ((parent.kind == Kind::kImage && !IsSha256Digest(parent.ref)) ||
      parent.kind == Kind::kLocalDir) {
    attr.entry_timeout = std::min<double>(attr.entry_timeout, options_.tag_ttl);
  }
  return attr;
}

Result<NodeAttr> Filesystem::LastLookup(uint64_t parent_ino, const std::string& name) {
  Node node;
  uint64_t ino = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find({parent_ino, name});
    if (it == children_.end()) return MakeError(ENOENT, "not looked up before");
    ino = it->second;
    node = nodes_.at(ino);
  }
  ASSIGN_OR_RETURN(NodeAttr attr, AttrOf(ino, node));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) return MakeError(ENOENT, "forgotten meanwhile");
    ++it->second.lookups;  // the kernel holds one more
  }
  attr.entry_timeout = std::min(attr.entry_timeout, 1.0);
  attr.timeout = std::min(attr.timeout, 1.0);
  return attr;
}

Result<NodeAttr> Filesystem::AttrOf(uint64_t ino, const Node& node) {
  NodeAttr a;
  a.ino = ino;
  a.mode = kDirMode;
  a.nlink = 2;
  a.timeout = options_.list_ttl;
  bool by_digest = IsSha256Digest(node.ref);
  switch (node.kind) {
    case Kind::kRoot:
    case Kind::kControl:
      break;
    case Kind::kRegistry:
    case Kind::kNamespace:
      a.mode = DirMode();
      break;
    case Kind::kImage:
      a.timeout = by_digest ? kForever : options_.tag_ttl;
      if (!by_digest) a.mode = DirMode();
      break;
    case Kind::kLocalDir:
      a.mode = DirMode();
      a.timeout = 0;
      break;
    case Kind::kStagedFile: {
      auto staging = StagingOf(node);
      if (!staging || !staging->Has(node.target)) return MakeError(ENOENT, "no longer staged");
      a.mode = S_IFREG | 0644;
      a.nlink = 1;
      a.timeout = 0;
      a.size = staging->Size(node.target);
      break;
    }
    case Kind::kStats:
    case Kind::kPid:
      a.mode = kFileMode;
      a.nlink = 1;
      a.timeout = 0;
      a.size = node.kind == Kind::kStats
                   ? static_cast<int64_t>(StatsJson().size())
                   : static_cast<int64_t>(std::to_string(getpid()).size() + 1);
      break;
    case Kind::kManifestFile: {
      a.mode = kFileMode;
      a.nlink = 1;
      a.timeout = by_digest ? kForever : options_.tag_ttl;
      // node.ref is the manifest's digest, not a directory: nothing to note (View).
      ASSIGN_OR_RETURN(auto view, FindOrBuildView(node.registry, node.path, node.ref));
      a.size = static_cast<int64_t>(view->top.bytes.size());
      break;
    }
    case Kind::kVersion:
    case Kind::kInstanceManifest:
      a.mode = kFileMode;
      a.nlink = 1;
      a.timeout = kForever;
      a.size = node.size;
      break;
    case Kind::kSignature:
      // Its inode names its content; whether the attachment still lists it, for tag_ttl.
      a.mode = kFileMode;
      a.nlink = 1;
      a.timeout = options_.tag_ttl;
      a.size = node.size;
      break;
    case Kind::kBlob: {
      a.mode = kFileMode;
      a.timeout = kForever;
      a.size = node.size;
      // st_nlink = 1 + the image directories known to hold the blob (two tags of one image
      // are two directories). The 1 is the registry's content store, which every image
      // directory links into, as in a hard-link farm. Views are lazy, so GNU du decides at its
      // first stat of the blob, before the other directories holding it are known; a count
      // that is at least 2 from that first stat on makes du count the blob once whatever it
      // is given, and ls -l still shows how widely the blob is shared.
      std::lock_guard<std::mutex> lock(mu_);
      auto it = blob_dirs_.find(node.digest);
      size_t dirs = it == blob_dirs_.end() ? 0 : it->second.size();
      a.nlink = static_cast<uint32_t>(1 + std::max<size_t>(1, dirs));
      break;
    }
    case Kind::kSymlink:
      a.mode = S_IFLNK | 0777;
      a.nlink = 1;
      a.size = static_cast<int64_t>(node.target.size());
      a.timeout = kForever;
      break;
  }
  a.entry_timeout = a.timeout;
  return a;
}

Result<NodeAttr> Filesystem::GetAttr(uint64_t ino) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  auto a = AttrOf(ino, node);
  if (!a.ok()) return a.error();
  return a;
}

Result<std::vector<DirEntry>> Filesystem::ReadDir(uint64_t ino) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  std::vector<DirEntry> out;
  auto ino_of = [&](const std::string& key) -> uint64_t {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = inos_.find(key);
    return it == inos_.end() ? 0 : it->second;  // 0: unknown until looked up
  };
  switch (node.kind) {
    case Kind::kRoot: {
      out.push_back({".regfs", ino_of("C"), kDirMode});
      std::set<std::string> regs;
      {
        std::lock_guard<std::mutex> lock(mu_);
        regs = registries_;
      }
      for (const auto& r : regs) out.push_back({r, ino_of("R|" + r), kDirMode});
      return out;
    }
    case Kind::kControl:
      out.push_back({"stats", ino_of("C|stats"), kFileMode});
      out.push_back({"pid", ino_of("C|pid"), kFileMode});
      return out;
    case Kind::kRegistry:
    case Kind::kNamespace:
    case Kind::kLocalDir:
    case Kind::kImage: {
      SweepStagings();  // what is done with goes before it is listed
      std::set<std::string> seen;
      // An image directory (a tag's, or one made here): its staged files until pushed, then
      // the image at the registry.
      std::string repo, ref;
      if (ImageOf(node, &repo, &ref)) {
        auto staging = IsSha256Digest(ref) ? nullptr : StagingOf(node);
        if (staging) {
          for (const std::string& name : staging->Names()) {
            out.push_back({name, ino_of("S|" + node.registry + "|" + repo + "|" + ref + "|" + name),
                           S_IFREG});
          }
        } else if (auto left = LeftoversOf(node.registry, repo, ref)) {
          for (const ImageEntry& e : left->view->entries) {
            if (left->gone.count(e.name)) continue;
            out.push_back({e.name, ino_of(ImageEntryKey(node.registry, repo, ref, e)), kFileMode});
          }
        } else {
          // A directory made here shows the image once one is pushed under its tag.
          bool at_registry = node.kind == Kind::kImage;
          if (!at_registry) {
            auto tags = Tags(node.registry, repo);
            at_registry = tags.ok() && std::find(tags->begin(), tags->end(), ref) != tags->end();
          }
          if (at_registry) {
            auto view = View(node.registry, repo, ref);
            if (!view.ok()) return view.error();
            auto entries = EntriesOf(node.registry, repo, **view);
            if (!entries.ok()) return entries.error();
            for (const ImageEntry& e : *entries) {
              out.push_back(
                  {e.name, ino_of(ImageEntryKey(node.registry, repo, ref, e)), kFileMode});
            }
          }
        }
        for (const auto& e : out) seen.insert(e.name);
      }
      if (node.kind == Kind::kImage) return out;
      // Namespace: directories made here, repositories from the catalog and the tags.
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::string prefix = node.registry + "|" + (node.path.empty() ? "" : node.path + "/");
        for (auto it = local_dirs_.lower_bound(prefix);
             it != local_dirs_.end() && StartsWith(*it, prefix); ++it) {
          std::string rest = it->substr(prefix.size());
          if (rest.find('/') == std::string::npos && seen.insert(rest).second) {
            out.push_back({rest, 0, DirMode()});
          }
        }
      }
      std::vector<std::string> tags;
      if (!node.path.empty()) {
        auto t = Tags(node.registry, node.path);
        if (!t.ok()) return t.error();
        tags = std::move(t).value();
      }
      // A repository's tags are listed whatever its catalog does, which only adds the deeper
      // repositories, if it comes as soon as a lookup would wait for it. Anything else waits
      // for the catalog as long as a request may stall: the listing goes on, cached when done.
      bool repository = !tags.empty();
      auto listed = CatalogWithin(node.registry,
                                  repository ? std::chrono::steady_clock::duration(kCatalogWait)
                                             : std::chrono::seconds(options_.timeout));
      const std::vector<std::string> none;
      const std::vector<std::string>* repos = &none;
      if (listed.ok() && listed->has_value()) {
        repos = &**listed;
      } else if (!repository) {
        if (!listed.ok()) return listed.error();
        return MakeError(EAGAIN, "the catalog of " + node.registry +
                                     " is still being listed after " +
                                     std::to_string(options_.timeout) + " s; try again later");
      }
      std::set<std::string> tag_set(tags.begin(), tags.end());
      std::set<std::string> components;
      std::string prefix = node.path.empty() ? "" : node.path + "/";
      for (const auto& r : *repos) {
        if (!StartsWith(r, prefix) || r.size() == prefix.size()) continue;
        std::string rest = r.substr(prefix.size());
        std::string comp = rest.substr(0, rest.find('/'));
        if (!tag_set.count(comp)) components.insert(comp);  // a tag wins over a component
      }
      for (const auto& c : components) {
        if (IsRemoved(node.registry, Join(node.path, c)) || !seen.insert(c).second) continue;
        out.push_back({c, ino_of("N|" + node.registry + "|" + Join(node.path, c)), DirMode()});
      }
      for (const auto& t : tags) {
        if (!seen.insert(t).second) continue;
        out.push_back({t, ino_of("I|" + node.registry + "|" + node.path + "|" + t), DirMode()});
      }
      return out;
    }
    default:
      return MakeError(ENOTDIR, "not a directory");
  }
}

Result<std::string> Filesystem::ReadLink(uint64_t ino) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  if (node.kind != Kind::kSymlink) return MakeError(EINVAL, "not a symlink");
  return node.target;
}

Result<OpenedFile> Filesystem::Open(uint64_t ino, int flags, pid_t writer) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  if ((flags & O_ACCMODE) != O_RDONLY) return OpenForWrite(node, flags, writer);
  RETURN_IF_ERROR(CheckPolicy(node));
  auto handle = std::make_shared<OpenHandle>();
  OpenedFile opened;
  switch (node.kind) {
    case Kind::kStagedFile: {
      auto staging = StagingOf(node);
      if (!staging) return MakeError(ENOENT, "no longer staged");
      ASSIGN_OR_RETURN(handle->bytes, staging->ReadSmall(node.target));
      opened.direct_io = true;
      break;
    }
    case Kind::kStats:
      handle->bytes = StatsJson();
      opened.direct_io = true;
      break;
    case Kind::kPid:
      handle->bytes = std::to_string(getpid()) + "\n";
      break;
    case Kind::kVersion:
      handle->bytes = std::string(kDirVersion);
      opened.keep_cache = true;
      break;
    case Kind::kManifestFile: {
      auto view = FindOrBuildView(node.registry, node.path, node.ref);  // by digest, as above
      if (!view.ok()) return view.error();
      handle->bytes = (*view)->top.bytes;  // an open file keeps the digest it opened on
      opened.keep_cache = IsSha256Digest(node.ref);
      break;
    }
    case Kind::kInstanceManifest: {
      auto view = View(node.registry, node.path, node.ref);
      if (!view.ok()) return view.error();
      auto it = (*view)->instance_bytes.find(node.digest);
      if (it == (*view)->instance_bytes.end()) return MakeError(EIO, "instance manifest gone");
      handle->bytes = it->second;
      opened.keep_cache = true;
      break;
    }
    case Kind::kBlob: {
      auto located = LocationsOf(node);
      if (!located.ok()) return located.error();
      auto blob = blobs_->Open(node.digest, node.size, *located);
      if (!blob.ok()) return blob.error();
      handle->blob = std::move(blob->blob);
      handle->cursor = blob->cursor;
      handle->blob_info = BlobInfo{node.digest, node.size, node.media_type};
      // copy_file_range copies from the directory's own registry where it can.
      handle->location = located->front();
      for (const BlobLocation& l : *located) {
        if (l.client->registry() == node.registry && l.repository == node.path) {
          handle->location = l;
        }
      }
      opened.keep_cache = blob->keep_cache;
      break;
    }
    case Kind::kSignature: {
      auto sigs = SignaturesOf(node.registry, node.path, node.ref);
      if (!sigs.ok()) return sigs.error();
      ImageEntry e;
      e.digest = node.digest;
      e.media_type = node.media_type;
      e.annotations = node.annotations;
      // The payload's size as listed; a signature no longer listed still reads as it was.
      int64_t payload_size = -1;
      for (size_t i = 0; i < (*sigs)->entries.size(); ++i) {
        if ((*sigs)->entries[i].digest == node.digest) payload_size = (*sigs)->payload_sizes[i];
      }
      auto bytes = SignatureFile(node.registry, node.path, e, payload_size);
      if (!bytes.ok()) return bytes.error();
      if (static_cast<int64_t>(bytes->size()) != node.size) {
        return MakeError(EIO, "signature " + std::to_string(node.index + 1) + " has " +
                                  std::to_string(bytes->size()) + " bytes, not the " +
                                  std::to_string(node.size) + " its attachment says");
      }
      handle->bytes = std::move(bytes).value();
      opened.keep_cache = true;  // its inode names its content
      break;
    }
    case Kind::kSymlink:
      return MakeError(ELOOP, "a symlink");
    default:
      return MakeError(EISDIR, "a directory");
  }
  opened.handle = AddHandle(std::move(handle));
  return opened;
}

uint64_t Filesystem::AddHandle(std::shared_ptr<OpenHandle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_handle_++;
  handles_[id] = std::move(handle);
  return id;
}

Result<std::shared_ptr<Filesystem::OpenHandle>> Filesystem::HandleOf(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(id);
  if (it == handles_.end()) return MakeError(EBADF, "no such open file");
  return it->second;
}

Result<size_t> Filesystem::Read(uint64_t fh, char* buf, size_t size, int64_t off) {
  std::shared_ptr<OpenHandle> h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = handles_.find(fh);
    if (it == handles_.end()) return MakeError(EBADF, "no such open file");
    h = it->second;
  }
  if (h->blob) {
    std::lock_guard<std::mutex> lock(h->mu);
    auto n = h->blob->Read(buf, size, off, &h->cursor);
    if (!n.ok()) return n.error();
    return n;
  }
  if (off >= static_cast<int64_t>(h->bytes.size())) return size_t{0};
  size_t n = std::min(size, h->bytes.size() - static_cast<size_t>(off));
  std::memcpy(buf, h->bytes.data() + off, n);
  return n;
}

void Filesystem::Release(uint64_t fh) {
  std::shared_ptr<OpenHandle> released;  // closed (staging image, blob) after the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return;
  released = std::move(it->second);
  handles_.erase(it);
}

Result<std::string> Filesystem::GetXattr(uint64_t ino, const std::string& name) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  if (node.kind == Kind::kBlob || node.kind == Kind::kInstanceManifest) {
    if (name == "user.regfs.digest") return node.digest;
    if (name == "user.regfs.mediatype") return node.media_type;
  }
  if (node.kind == Kind::kImage && options_.policy && name == "user.regfs.verified") {
    // What accepted the image; a refused one has no such attribute (ENODATA).
    auto verdict = VerdictOf(node.registry, node.path, node.ref, node.ref);
    if (!verdict.ok()) return verdict.error();
    if (!verdict->accepted) {
      return MakeError(ENODATA, "refused by the signature policy: " + verdict->reason);
    }
    return verdict->accepted_by;
  }
  if (node.kind == Kind::kImage &&
      (name == "user.regfs.digest" || name == "user.regfs.mediatype")) {
    auto view = View(node.registry, node.path, node.ref);
    if (!view.ok()) return view.error();
    return name == "user.regfs.digest" ? (*view)->top.digest : (*view)->top.media_type;
  }
  return MakeError(ENODATA, "no such attribute");
}

Result<std::vector<std::string>> Filesystem::ListXattr(uint64_t ino) {
  ASSIGN_OR_RETURN(Node node, NodeOf(ino));
  if (node.kind == Kind::kImage && options_.policy) {
    std::vector<std::string> names = {"user.regfs.digest", "user.regfs.mediatype"};
    // Listed only where getxattr answers it: an accepted image.
    auto verdict = VerdictOf(node.registry, node.path, node.ref, node.ref);
    if (verdict.ok() && verdict->accepted) names.push_back("user.regfs.verified");
    return names;
  }
  if (node.kind == Kind::kBlob || node.kind == Kind::kInstanceManifest ||
      node.kind == Kind::kImage) {
    return std::vector<std::string>{"user.regfs.digest", "user.regfs.mediatype"};
  }
  return std::vector<std::string>{};
}

uint32_t Filesystem::DirMode() const { return options_.read_only ? kDirMode : (S_IFDIR | 0755); }

Filesystem::SpaceUsage Filesystem::Space() const {
  int64_t used = cache_->bytes() + cache_->partial_bytes();
  return {options_.cache_size, std::min(used, options_.cache_size)};
}

void Filesystem::Housekeep() {
  SweepStagings();
  malloc_trim(0);
}

std::string Filesystem::StatsJson() {
  nlohmann::ordered_json j = {{"requests", counters_->requests.load()},
                              {"blob_bytes", counters_->blob_bytes.load()},
                              {"cache_hits", blobs_->cache_hits()},
                              {"cache_bytes", cache_->bytes()},
                              {"cache_partial_bytes", cache_->partial_bytes()}};
  // What the bounded in-memory caches hold (options_.caps), to watch a long-lived mount.
  CachedEntries c = Cached();
  j["entries"] = {{"views", c.views},           {"tag_digests", c.tag_digests},
                  {"tag_lists", c.tag_lists},   {"catalogs", c.catalogs},
                  {"locations", c.locations},   {"dirs", c.dirs},
                  {"signatures", c.signatures}, {"verdicts", c.verdicts},
                  {"inodes", c.inodes},         {"staging_images", c.staging_images},
                  {"local_dirs", c.local_dirs}};
  // The daemon's heap (glibc's view): bytes allocated, and bytes held free in its arenas —
  // to tell a leak or a filling cache (in_use) from fragmentation (free).
  struct mallinfo2 heap = mallinfo2();
  j["heap"] = {{"in_use", heap.uordblks + heap.hblkhd},
               {"free", heap.fordblks},
               {"sqlite", BlobLocationCache::MemoryUsed()}};
  j["threads"] = ThreadCount();
  return j.dump(2) + "\n";
}

}  // namespace regfs
