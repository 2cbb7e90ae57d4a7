#include "transports/sync/sync.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "transports/copy/copy.h"
#include "transports/dir/dir_transport.h"
#include "transports/registry/image_delete.h"
#include "transports/signature/policy_check.h"
#include "transports/signature/sigstore.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

using Clock = std::chrono::steady_clock;

// Go's path.Clean of a '/'-separated path: no empty or "." components, ".." resolved.
std::string CleanPath(const std::string& path) {
  const bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(part);
      }
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out.empty() ? "." : out;
}

std::string BaseName(const std::string& path) {
  std::string clean = CleanPath(path);
  size_t slash = clean.rfind('/');
  return slash == std::string::npos || clean == "/" ? clean : clean.substr(slash + 1);
}

// "sha256-<hex>…": cosign signatures and other OCI attachments stored under tags.
bool IsAttachmentTag(const std::string& tag) {
  if (tag.size() < 7 + 64 || tag.compare(0, 7, "sha256-") != 0) return false;
  return tag.find_first_not_of("0123456789abcdef", 7) >= 7 + 64;
}

// "sha256-<hex>.sig": the sigstore attachment of an image, which the copy of that image
// carries (or, with --remove-signatures, drops); never synced as an image of its own, which
// would race with that copy and undo what it adds.
bool IsSignatureTag(const std::string& tag) {
  return IsAttachmentTag(tag) && tag.size() == 7 + 64 + 4 && tag.compare(7 + 64, 4, ".sig") == 0;
}

bool IsRetryable(const Error& e) {
  switch (e.errnum) {
    case EIO:
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EAGAIN:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EPIPE:
      return true;
    default:
      return false;
  }
}

// One image to sync.
struct Job {
  const SyncSource* source = nullptr;
  ImageReference src;
  ImageReference dst;
};

class Syncer {
 public:
  Syncer(const SyncOptions& options, RegistryClients& clients)
      : options_(options), clients_(clients) {}

  SyncReport Run(const std::vector<SyncSource>& all_sources) {
    std::vector<const SyncSource*> sources;
    for (const SyncSource& s : all_sources) {
      if (options_.shard_count <= 1 ||
          ShardOf(ShardKey(s), options_.shard_count) == options_.shard_index) {
        sources.push_back(&s);
      }
    }
    listed_.resize(sources.size());
    ForEach(sources.size(), [&](size_t i) { ListSource(*sources[i], &listed_[i]); });

    std::vector<Job> jobs;
    std::map<std::string, std::string> writers;  // destination → the source writing it
    for (size_t i = 0; i < sources.size(); ++i) {
      for (const std::string& ref : listed_[i].refs) {
        auto job = MakeJob(*sources[i], ref);
        if (!job.ok()) {
          Failed(SourceName(*sources[i], ref), "", job.error());
          continue;
        }
        std::string dst = job->dst.String(), src = job->src.String();
        auto [it, fresh] = writers.emplace(dst, src);
        if (!fresh) {
          if (it->second != src) {
            Failed(src, dst,
                   MakeError(EEXIST, "the destination is also the one of " + it->second +
                                         " (--scoped keeps their names apart)"));
          }
          continue;
        }
        jobs.push_back(std::move(*job));
      }
    }
    std::sort(jobs.begin(), jobs.end(),
              [](const Job& a, const Job& b) { return a.src.String() < b.src.String(); });
    if (options_.dest_transport == Transport::kDir && !options_.dry_run) {
      // What killed runs left, also beside images that are up to date now.
      std::set<std::string> dirs;
      for (const Job& job : jobs) dirs.insert(DirName(job.dst.path));
      for (const std::string& dir : dirs) RemoveStaleStaging(dir);
    }
    if (options_.images_progress) options_.images_progress(0, jobs.size());
    ForEach(jobs.size(), [&](size_t i) {
      SyncImage(jobs[i]);
      if (options_.images_progress) options_.images_progress(++images_done_, jobs.size());
    });
    if (options_.prune && (!stop_.load() || options_.keep_going)) Prune(sources);

    SyncReport report;
    report.outcomes = std::move(outcomes_);
    std::sort(report.outcomes.begin(), report.outcomes.end(),
              [](const SyncOutcome& a, const SyncOutcome& b) {
                return std::tie(a.source, a.destination, a.action) <
                       std::tie(b.source, b.destination, b.action);
              });
    report.failed = failed_.load();
    return report;
  }

 private:
  struct Listing {
    std::vector<std::string> refs;  // what to sync
    std::set<std::string> all;      // every tag the source has (Listed() sources)
    bool ok = false;
  };

  // Runs fn(0 … n-1) on up to options_.jobs threads; stops handing out work after a failure
  // unless keep_going.
  void ForEach(size_t n, const std::function<void(size_t)>& fn) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (;;) {
        if (stop_.load()) return;
        size_t i = next.fetch_add(1);
        if (i >= n) return;
        fn(i);
      }
    };
    size_t threads = std::min<size_t>(std::max(options_.jobs, 1), n);
    std::vector<std::thread> pool;
    for (size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
    if (threads > 0) worker();
    for (auto& t : pool) t.join();
  }

  static std::string ShardKey(const SyncSource& s) {
    if (s.ref.transport == Transport::kDocker) return s.ref.docker.Name();
    std::string key = CleanPath(s.dir_suffix);
    if (size_t colon = key.rfind(':'); colon != std::string::npos && colon > key.rfind('/')) {
      key.resize(colon);
    }
    return key;
  }

  static std::string SourceName(const SyncSource& s, const std::string& ref) {
    if (s.ref.transport != Transport::kDocker) return s.ref.String();
    if (ref.empty()) return "docker://" + s.ref.docker.Name();
    return "docker://" + s.ref.docker.Name() + (IsSha256Digest(ref) ? "@" : ":") + ref;
  }

  Result<std::vector<std::string>> ListTags(const SyncSource& s) {
    if (s.options.registries_conf) {
      RETURN_IF_ERROR(s.options.registries_conf->CheckNotBlocked(s.ref.docker.Name()));
    }
    return clients_.Get(s.ref.docker.registry, s.options)->ListTags(s.ref.docker.repository);
  }

  void ListSource(const SyncSource& s, Listing* out) {
    if (s.ref.transport != Transport::kDocker) {
      out->refs = {""};
      out->ok = true;
      return;
    }
    if (!s.Listed()) {
      out->refs = s.refs;
      out->ok = true;
      return;
    }
    Result<std::vector<std::string>> tags = ListTags(s);
    if (!tags.ok()) {
      Failed(SourceName(s, ""), "",
             Annotate(tags.error(), "listing the tags of " + s.ref.docker.Name()));
      return;
    }
    for (const std::string& tag : *tags) {
      if (!IsValidTag(tag)) {
        Warn(s.ref.docker.Name() + " lists \"" + tag + "\", which is not a valid tag: skipped");
        continue;
      }
      out->all.insert(tag);
      if (IsSignatureTag(tag)) continue;
      if (!s.selects || s.selects(tag)) out->refs.push_back(tag);
    }
    std::sort(out->refs.begin(), out->refs.end());
    out->ok = true;
    if (out->refs.empty()) Warn("no tags of " + s.ref.docker.Name() + " to sync");
  }

  // The destination path of `source`'s image `ref` (tag or digest; "" for a dir: image), as
  // skopeo sync names it: DEST/<name> + suffix, where name is the image's full name with
  // --scoped and its last path component without.
  std::string DestinationPath(const SyncSource& s, const std::string& ref) const {
    std::string name;
    const std::string at = ref.empty() ? "" : (IsSha256Digest(ref) ? "@" : ":") + ref;
    if (!s.target.empty()) {
      name = s.target + at;
    } else if (s.ref.transport == Transport::kDocker) {
      name = s.ref.docker.Name() + at;
      if (!options_.scoped) name = BaseName(name);
    } else {
      name = options_.scoped ? s.dir_suffix : BaseName(s.dir_suffix);
    }
    return CleanPath(options_.destination + "/" + name) + options_.append_suffix;
  }

  Result<ImageReference> DestinationRef(const std::string& path) const {
    if (options_.dest_transport == Transport::kDocker)
      return ParseImageReference("docker://" + path);
    ImageReference dst;
    dst.transport = Transport::kDir;
    dst.path = path;
    return dst;
  }

  Result<Job> MakeJob(const SyncSource& s, const std::string& ref) {
    Job job;
    job.source = &s;
    job.src = s.ref;
    if (s.ref.transport == Transport::kDocker) {
      job.src.docker.tag.clear();
      job.src.docker.digest.clear();
      job.src.docker.tag_defaulted = false;
      (IsSha256Digest(ref) ? job.src.docker.digest : job.src.docker.tag) = ref;
    }
    ASSIGN_OR_RETURN(job.dst, DestinationRef(DestinationPath(s, ref)));
    return job;
  }

  // What the copy would write, compared with what the destination has.
  struct Plan {
    std::string action;  // "copy", "update" or "skip"
    std::string digest;  // at the destination, for "skip"
  };

  Result<Plan> PlanImage(const Job& job, ImageSource& src, const CopyOptions& copy) {
    ASSIGN_OR_RETURN(std::optional<std::string> have,
                     DigestAt(job.dst, options_.dest_options, clients_));
    if (!have) return Plan{"copy", ""};
    // A conversion's digest is known only once the layers are re-encoded (and an image the
    // destination has under the source's digest is not the converted one): never skipped.
    if (ConversionAsked(copy)) return Plan{"update", ""};
    ASSIGN_OR_RETURN(std::string source_digest, src.ManifestDigest());
    if (*have == source_digest) return SkipUnlessSignaturesMissing(job, *have);
    if (!options_.all || !copy.platforms.empty()) {
      // An index copies as one of its instances or reduced: only its body tells the digest.
      ASSIGN_OR_RETURN(RawManifest top, src.GetManifest(""));
      ASSIGN_OR_RETURN(std::string target, TargetDigest(top, copy));
      if (*have == target) return SkipUnlessSignaturesMissing(job, *have);
    }
    return Plan{"update", ""};
  }

  // The image is there already: skipped, unless the source has sigstore signatures of it that
  // the destination lacks (signed since the last sync), which the copy then adds. HEADs decide
  // the common cases: no attachment at the source, or the same one at both ends.
  Result<Plan> SkipUnlessSignaturesMissing(const Job& job, const std::string& digest) {
    const Plan skip{"skip", digest};
    if (options_.remove_signatures) return skip;
    ASSIGN_OR_RETURN(auto theirs, AttachmentDigestAt(job.src, job.source->options, digest));
    if (!theirs) return skip;
    if (job.dst.transport == Transport::kDocker) {
      ASSIGN_OR_RETURN(auto ours, AttachmentDigestAt(job.dst, options_.dest_options, digest));
      if (ours == theirs) return skip;
    }
    ASSIGN_OR_RETURN(auto source_keys, SignatureKeysAt(job.src, job.source->options, digest));
    ASSIGN_OR_RETURN(auto dest_keys, SignatureKeysAt(job.dst, options_.dest_options, digest));
    const std::set<AttachedSignatureKey> have(dest_keys.begin(), dest_keys.end());
    for (const AttachedSignatureKey& key : source_keys) {
      if (!have.count(key)) return Plan{"update", ""};
    }
    return skip;
  }

  bool AttachmentsOn(const ImageReference& ref, const RegistryOptions& options) const {
    return !options.registries_d ||
           options.registries_d->For(ref.docker).use_sigstore_attachments.value_or(true);
  }

  // The digest of the sigstore attachment of `digest` at a docker `ref` (a HEAD), nullopt when
  // there is none; for a dir: source, whether it has signature files ("" when it has).
  Result<std::optional<std::string>> AttachmentDigestAt(const ImageReference& ref,
                                                        const RegistryOptions& options,
                                                        const std::string& digest) {
    if (ref.transport != Transport::kDocker) {
      if (!PathExists(ref.path + "/signature-1")) return std::optional<std::string>();
      return std::optional<std::string>("");
    }
    if (!AttachmentsOn(ref, options)) return std::optional<std::string>();
    auto head = clients_.Get(ref.docker.registry, options)
                    ->ResolveDigest(ref.docker.repository, SigstoreAttachmentTag(digest));
    if (!head.ok()) {
      if (head.error().errnum == ENOENT) return std::optional<std::string>();
      return std::move(head).error();
    }
    return std::optional<std::string>(std::move(*head));
  }

  // The sigstore signatures stored with `digest` at `ref`, by key: a registry's attachment
  // (its manifest alone, no payload fetched), a dir:'s signature files.
  Result<std::vector<AttachedSignatureKey>> SignatureKeysAt(const ImageReference& ref,
                                                            const RegistryOptions& options,
                                                            const std::string& digest) {
    std::vector<AttachedSignatureKey> keys;
    if (ref.transport == Transport::kDocker) {
      if (!AttachmentsOn(ref, options)) return keys;
      auto attachment = clients_.Get(ref.docker.registry, options)
                            ->GetManifest(ref.docker.repository, SigstoreAttachmentTag(digest));
      if (!attachment.ok()) {
        if (attachment.error().errnum == ENOENT) return keys;
        return std::move(attachment).error();
      }
      return AttachedSignatureKeys(attachment->bytes);
    }
    ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> dir, NewDirSource(ref.path));
    ASSIGN_OR_RETURN(std::vector<Signature> sigs, dir->GetSignatures(digest, false));
    for (const Signature& sig : sigs) {
      if (sig.format == Signature::Format::kSigstore) keys.push_back(AttachedSignatureKeyOf(sig));
    }
    return keys;
  }

  Result<SyncOutcome> TrySync(const Job& job) {
    SyncOutcome out;
    ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> src,
                     OpenImageSource(job.src, job.source->options, clients_));
    CopyOptions copy;
    copy.all = options_.all;
    copy.platforms = job.source->platforms;
    copy.parallel = options_.blob_parallel;
    copy.remove_signatures = options_.remove_signatures;
    copy.format = options_.format;
    copy.blob_info = options_.dest_options.blob_locations.get();
    if (options_.policy) {
      copy.accept_source = PolicyCheck(options_.policy, job.src);
      copy.accept_needs_signatures =
          PolicyNeedsSignatures(*options_.policy, PolicyReference(job.src));
    }
    copy.signers = options_.signers;
    copy.sign_identity = !options_.sign_identity.empty()           ? options_.sign_identity
                         : job.dst.transport == Transport::kDocker ? job.dst.docker.String()
                                                                   : std::string();
    ASSIGN_OR_RETURN(Plan plan, PlanImage(job, *src, copy));
    out.action = plan.action;
    out.digest = plan.digest;
    if (plan.action == "skip" || options_.dry_run) return out;
    if (job.dst.transport == Transport::kDir) {
      RETURN_IF_ERROR(MakeDirs(DirName(job.dst.path), 0755));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<ImageDestination> dst,
                     OpenImageDestination(job.dst, options_.dest_options, clients_));
    std::unique_ptr<ImageDestination> shown;
    if (options_.wrap_destination) shown = options_.wrap_destination(*dst);
    ASSIGN_OR_RETURN(CopyResult copied, CopyImage(*src, shown ? *shown : *dst, copy));
    out.digest = copied.manifest_digest;
    out.bytes = copied.bytes_copied;
    if (copied.one_of_index) {
      Warn(job.src.String() + " is a multi-platform image: only the " +
           PlatformString(copy.platform) +
           " one was copied (--all, or platforms in the YAML, copy more)");
    }
    return out;
  }

  void SyncImage(const Job& job) {
    const auto start = Clock::now();
    Result<SyncOutcome> r = MakeError(EIO, "not run");
    for (int attempt = 0;; ++attempt) {
      r = TrySync(job);
      if (r.ok() || attempt >= options_.retry_times || !IsRetryable(r.error()) || stop_.load()) {
        break;
      }
      auto delay = options_.retry_delay.count() > 0
                       ? options_.retry_delay
                       : std::chrono::milliseconds(1000LL << std::min(attempt, 6));
      Warn("retrying " + job.src.String() + " in " + std::to_string(delay.count()) +
           " ms: " + r.error().message);
      std::this_thread::sleep_for(delay);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!r.ok()) {
      Failed(job.src.String(), job.dst.String(), r.error(), seconds);
      return;
    }
    r->source = job.src.String();
    r->destination = job.dst.String();
    r->seconds = seconds;
    if (options_.info && !options_.dry_run) {
      if (r->action == "skip") {
        options_.info("Skipped " + r->source + ": " + r->destination + " is up to date");
      } else {
        options_.info((r->action == "copy" ? "Copied " : "Updated ") + r->source + " to " +
                      r->destination + " (" + r->digest + ")");
      }
    }
    Record(std::move(*r));
  }

  // Tags (or dir: images) at the destination whose source tag is gone, for the repositories
  // synced by listing them. The tags every source writing a destination repository has are
  // kept, so that sources sharing one (without --scoped) don't prune each other.
  void Prune(const std::vector<const SyncSource*>& sources) {
    struct Scope {
      const SyncSource* source = nullptr;  // one listed source writing here
      std::set<std::string> keep;
      bool complete = true;  // every source writing here was listed
    };
    std::map<std::string, Scope> scopes;  // by the destination path with tag "T"
    for (size_t i = 0; i < sources.size(); ++i) {
      const SyncSource& s = *sources[i];
      if (s.ref.transport != Transport::kDocker) continue;
      Scope& scope = scopes[DestinationPath(s, "T")];
      if (!listed_[i].ok) scope.complete = false;
      if (s.Listed()) {
        if (!scope.source) scope.source = &s;
        scope.keep.insert(listed_[i].all.begin(), listed_[i].all.end());
      } else {
        scope.keep.insert(s.refs.begin(), s.refs.end());
      }
    }
    for (auto& [key, scope] : scopes) {
      if (!scope.source || !scope.complete) continue;
      Status s = options_.dest_transport == Transport::kDocker
                     ? PruneRepository(scope.source, scope.keep)
                     : PruneDirectory(scope.source, scope.keep);
      if (!s.ok())
        Failed(SourceName(*scope.source, ""), DestinationPath(*scope.source, ""), s.error());
    }
  }

  // The tag a destination tag stands for, when it is one this sync writes: "" otherwise.
  std::string SourceTagOf(const std::string& dest_tag) const {
    const std::string& suffix = options_.append_suffix;
    if (dest_tag.size() <= suffix.size() ||
        dest_tag.compare(dest_tag.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return "";
    }
    return dest_tag.substr(0, dest_tag.size() - suffix.size());
  }

  Status PruneRepository(const SyncSource* s, const std::set<std::string>& keep) {
    ASSIGN_OR_RETURN(ImageReference probe, DestinationRef(DestinationPath(*s, "T")));
    std::shared_ptr<RegistryClient> client =
        clients_.Get(probe.docker.registry, options_.dest_options);
    auto tags = client->ListTags(probe.docker.repository);
    if (!tags.ok() && tags.error().errnum == ENOENT) return Ok();
    if (!tags.ok()) return tags.error();
    for (const std::string& tag : *tags) {
      std::string source_tag = SourceTagOf(tag);
      if (source_tag.empty() || keep.count(source_tag) || IsAttachmentTag(tag)) continue;
      SyncOutcome out;
      out.source = SourceName(*s, source_tag);
      out.destination = "docker://" + probe.docker.Name() + ":" + tag;
      out.action = "prune";
      const auto start = Clock::now();
      if (!options_.dry_run) {
        if (Status removed = RemoveTag(*client, probe.docker.repository, tag); !removed.ok()) {
          Failed(out.source, out.destination, removed.error());
          continue;
        }
        if (options_.info) options_.info("Pruned " + out.destination);
      }
      out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      Record(std::move(out));
    }
    return Ok();
  }

  Status PruneDirectory(const SyncSource* s, const std::set<std::string>& keep) {
    // DEST/<name>:<tag><suffix>: the names in DEST's directory with this prefix.
    const std::string probe = DestinationPath(*s, "T");
    const std::string dir = DirName(probe);
    std::string prefix = BaseName(probe);
    prefix.resize(prefix.size() - 1 - options_.append_suffix.size());  // "name:"
    auto names = ListDir(dir);
    if (!names.ok() && names.error().errnum == ENOENT) return Ok();
    if (!names.ok()) return names.error();
    for (const std::string& name : *names) {
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      std::string tag = SourceTagOf(name.substr(prefix.size()));
      if (tag.empty() || !IsValidTag(tag) || keep.count(tag) || IsAttachmentTag(tag)) continue;
      const std::string path = dir + "/" + name;
      if (!PathExists(path + "/manifest.json")) continue;  // not an image directory
      SyncOutcome out;
      out.source = SourceName(*s, tag);
      out.destination = "dir:" + path;
      out.action = "prune";
      if (!options_.dry_run) {
        // Out of sight in one step, then removed.
        std::string aside = path + ".regfs-old-" + std::to_string(getpid()) + "-XXXXXX";
        if (!mkdtemp(aside.data()) || rename(path.c_str(), (aside + "/d").c_str()) != 0) {
          Failed(out.source, out.destination, SysError("removing", path));
          continue;
        }
        (void)RemoveAll(aside);
        if (options_.info) options_.info("Pruned " + out.destination);
      }
      Record(std::move(out));
    }
    return Ok();
  }

  void Record(SyncOutcome out) {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes_.push_back(std::move(out));
  }

  void Failed(const std::string& source, const std::string& destination, const Error& e,
              double seconds = 0) {
    SyncOutcome out;
    out.source = source;
    out.destination = destination;
    out.action = "failed";
    out.error = e.message;
    out.seconds = seconds;
    if (options_.warn) {
      options_.warn("failed: " + source + (destination.empty() ? "" : " to " + destination) + ": " +
                    e.message);
    }
    failed_.store(true);
    if (!options_.keep_going) stop_.store(true);
    Record(std::move(out));
  }

  void Warn(const std::string& line) {
    if (options_.warn) options_.warn(line);
  }

  const SyncOptions& options_;
  RegistryClients& clients_;
  std::vector<Listing> listed_;  // per source, written once by its lister
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<size_t> images_done_{0};
  std::mutex mu_;
  std::vector<SyncOutcome> outcomes_;  // guarded by mu_
};

}  // namespace

SyncReport Sync(const std::vector<SyncSource>& sources, const SyncOptions& options,
                RegistryClients& clients) {
  return Syncer(options, clients).Run(sources);
}

int ShardOf(const std::string& repository, int count) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bits
  for (unsigned char c : repository) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int>(h % static_cast<uint64_t>(std::max(count, 1))) + 1;
}

Result<std::pair<int, int>> ParseShard(const std::string& text) {
  size_t slash = text.find('/');
  auto number = [](const std::string& s) {
    return !s.empty() && s.size() < 7 && s.find_first_not_of("0123456789") == std::string::npos
               ? std::stoi(s)
               : -1;
  };
  int k = slash == std::string::npos ? -1 : number(text.substr(0, slash));
  int n = slash == std::string::npos ? -1 : number(text.substr(slash + 1));
  if (k < 1 || n < 1 || k > n) {
    return MakeError(EINVAL, "--shard takes K/N with 1 <= K <= N (\"" + text + "\")");
  }
  return std::make_pair(k, n);
}

Result<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
  auto bad = [&] {
    return MakeError(EINVAL, "invalid duration \"" + text + "\" (e.g. 500ms, 10s, 1m30s)");
  };
  if (text == "0") return std::chrono::milliseconds(0);
  double total = 0;
  size_t i = 0;
  if (text.empty()) return bad();
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return bad();
    double value = std::atof(text.substr(start, i - start).c_str());
    size_t unit_start = i;
    while (i < text.size() && !isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    bool known = false;
    for (const auto& [name, ms] : kUnits) {
      if (unit == name) {
        total += value * ms;
        known = true;
      }
    }
    if (!known) return bad();
  }
  if (total > 24 * 3600e3) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total)));
}

}  // namespace regfs
