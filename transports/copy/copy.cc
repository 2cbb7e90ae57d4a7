#include "transports/copy/copy.h"

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "transports/util/digest.h"

namespace regfs {
namespace {

// Fetches an instance manifest named by an index and checks it is a single image.
Result<RawManifest> GetInstance(ImageSource& src, const Descriptor& d) {
  ASSIGN_OR_RETURN(RawManifest m, src.GetManifest(d.digest));
  if (m.digest != d.digest) {
    return MakeError(EIO, "instance manifest " + d.digest + " has digest " + m.digest);
  }
  if (static_cast<int64_t>(m.bytes.size()) != d.size) {
    return MakeError(EIO, "instance manifest " + d.digest + " is " +
                              std::to_string(m.bytes.size()) + " bytes, the index says " +
                              std::to_string(d.size));
  }
  if (m.media_type.empty()) m.media_type = d.media_type;
  return m;
}

}  // namespace

Result<bool> CopyBlob(ImageSource& src, ImageDestination& dst, const BlobInfo& blob,
                      const std::atomic<bool>* cancel, int64_t* moved) {
  std::shared_ptr<void> lock = dst.LockBlob(blob);
  ASSIGN_OR_RETURN(bool reused, dst.TryReuseBlob(blob, src.RegistryLocation()));
  if (reused) return false;
  ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, dst.NewBlobWriter(blob));
  Sha256 hash;
  int64_t n = 0;
  RETURN_IF_ERROR(src.GetBlob(blob, [&](const char* data, size_t len) -> Status {
    if (cancel && cancel->load()) return MakeError(ECANCELED, "cancelled");
    hash.Update(data, len);
    n += static_cast<int64_t>(len);
    if (blob.size >= 0 && n > blob.size) {
      return MakeError(
          EIO, "source sent more than the " + std::to_string(blob.size) + " bytes expected");
    }
    return writer->Write(data, len);
  }));
  if (blob.size >= 0 && n != blob.size) {
    return MakeError(EIO, "size mismatch: expected " + std::to_string(blob.size) + " bytes, got " +
                              std::to_string(n));
  }
  std::string got = hash.Finish();
  if (got != blob.digest) {
    return MakeError(EIO,
                     "digest mismatch: the content has digest " + got + ", not " + blob.digest);
  }
  RETURN_IF_ERROR(writer->Commit(BlobInfo{got, n, blob.media_type}));
  if (moved) *moved = n;
  return true;
}

namespace {

class BlobCopier {
 public:
  BlobCopier(ImageSource& src, ImageDestination& dst, const CopyOptions& options)
      : src_(src), dst_(dst), options_(options) {}

  void Add(const Descriptor& d) {
    if (seen_.insert(d.digest).second) blobs_.push_back(BlobInfo{d.digest, d.size, d.media_type});
  }

  // Copies every blob added, `parallel` at a time; the first error stops the rest.
  Status Run(CopyResult* result) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      while (!failed_.load()) {
        size_t i = next.fetch_add(1);
        if (i >= blobs_.size()) return;
        Status s = CopyOne(blobs_[i], result);
        if (!s.ok()) Fail(Annotate(std::move(s).error(), "copying blob " + blobs_[i].digest));
      }
    };
    size_t n = std::min<size_t>(std::max(options_.parallel, 1), blobs_.size());
    std::vector<std::thread> threads;
    for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    if (failed_.load()) return first_error_;
    return Ok();
  }

 private:
  Status CopyOne(const BlobInfo& blob, CopyResult* result) {
    int64_t moved = 0;
    ASSIGN_OR_RETURN(bool copied, CopyBlob(src_, dst_, blob, &failed_, &moved));
    Progress("Copying blob " + blob.digest + (copied ? " done" : " skipped: already exists"));
    std::lock_guard<std::mutex> lock(mu_);
    if (copied) {
      ++result->blobs_copied;
      result->bytes_copied += moved;
    } else {
      ++result->blobs_reused;
    }
    return Ok();
  }

  void Fail(Error e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_.load()) first_error_ = std::move(e);
    failed_.store(true);
  }

  void Progress(const std::string& line) {
    if (!options_.progress) return;
    std::lock_guard<std::mutex> lock(mu_);
    options_.progress(line);
  }

  ImageSource& src_;
  ImageDestination& dst_;
  const CopyOptions& options_;
  std::vector<BlobInfo> blobs_;
  std::set<std::string> seen_;
  std::mutex mu_;
  std::atomic<bool> failed_{false};
  Error first_error_;  // guarded by mu_
};

void AddImageBlobs(const Manifest& m, BlobCopier* copier) {
  copier->Add(m.config);
  for (const auto& l : m.layers) copier->Add(l);
}

// Writes a manifest. A registry that refuses it for a blob it said it had (docker-registry
// loses a blob mounted into one repository by two pushes at once) gets every blob checked
// again — and mounted or uploaded where missing — before the manifest is sent again.
Status PutManifest(ImageDestination& dst, const RawManifest& m, bool is_instance,
                   BlobCopier& copier) {
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    Status put = dst.PutManifest(m, is_instance);
    if (put.ok() || !put.error().HasRegistryCode("MANIFEST_BLOB_UNKNOWN") || attempt == kAttempts) {
      return put;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    CopyResult again;
    RETURN_IF_ERROR(copier.Run(&again));
  }
}

}  // namespace

Result<std::string> TargetDigest(const RawManifest& top, const CopyOptions& options) {
  ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(top.bytes, top.media_type));
  if (!parsed.is_index) return top.digest;
  if (!options.platforms.empty()) {
    ASSIGN_OR_RETURN(RawManifest reduced, ReduceIndex(top, parsed, options.platforms));
    return reduced.digest;
  }
  if (options.all) return top.digest;
  ASSIGN_OR_RETURN(Descriptor chosen, ChooseInstance(parsed, options.platform));
  return chosen.digest;
}

namespace {

// The source's signatures of a manifest, being read. Reading them costs a request or two (a
// registry's attachment, its lookaside), so unless the policy needs them first they are read
// while the blobs are copied.
using PendingSignatures = std::shared_future<Result<std::vector<Signature>>>;

// What the copy writes for one manifest: the manifest and the signatures stored with it.
struct ManifestToWrite {
  RawManifest manifest;
  PendingSignatures signatures;
};

class ImageCopy {
 public:
  ImageCopy(ImageSource& src, ImageDestination& dst, const CopyOptions& options)
      : src_(src), dst_(dst), options_(options), copier_(src, dst, options) {}

  Result<CopyResult> Run() {
    CopyResult result;
    Progress("Getting image source signatures");
    ASSIGN_OR_RETURN(RawManifest top, src_.GetManifest(""));
    ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(top.bytes, top.media_type));
    if (top.media_type.empty()) top.media_type = parsed.media_type;
    PendingSignatures top_sigs = Fetch(top.digest, false);
    Status top_accepted = Accept(top, top_sigs);
    if (!top_accepted.ok() && !parsed.is_index) return Rejected(top_accepted.error());

    ManifestToWrite out{top, None()};
    std::vector<ManifestToWrite> instances;
    if (parsed.is_index && !options_.platforms.empty()) {
      ASSIGN_OR_RETURN(out.manifest, ReduceIndex(top, parsed, options_.platforms));
      ASSIGN_OR_RETURN(parsed, ParseManifest(out.manifest.bytes, out.manifest.media_type));
    }
    if (parsed.is_index && (options_.all || !options_.platforms.empty())) {
      for (const Descriptor& d : parsed.manifests) {
        ASSIGN_OR_RETURN(RawManifest inst, GetInstance(src_, d));
        ASSIGN_OR_RETURN(Manifest m, ParseManifest(inst.bytes, inst.media_type));
        if (m.is_index)
          return MakeError(EOPNOTSUPP, "nested indexes are not supported (" + d.digest + ")");
        PendingSignatures sigs = Fetch(inst.digest, true);
        if (!top_accepted.ok()) RETURN_IF_ERROR(AcceptInstance(top_accepted, inst, sigs));
        AddImageBlobs(m, &copier_);
        instances.push_back({std::move(inst), std::move(sigs)});
      }
      if (out.manifest.digest == top.digest) {
        out.signatures = top_sigs;
      } else if (!options_.remove_signatures) {
        ASSIGN_OR_RETURN(std::vector<Signature> dropped, top_sigs.get());
        if (!dropped.empty()) {
          return MakeError(EINVAL,
                           "copying only some platforms changes the index digest, which "
                           "would invalidate its " +
                               std::to_string(dropped.size()) +
                               " signature(s); use --remove-signatures");
        }
      }
    } else if (parsed.is_index) {
      ASSIGN_OR_RETURN(Descriptor chosen, ChooseInstance(parsed, options_.platform));
      ASSIGN_OR_RETURN(out.manifest, GetInstance(src_, chosen));
      ASSIGN_OR_RETURN(parsed, ParseManifest(out.manifest.bytes, out.manifest.media_type));
      if (parsed.is_index) return MakeError(EOPNOTSUPP, "nested indexes are not supported");
      out.signatures = Fetch(out.manifest.digest, true);
      if (!top_accepted.ok()) {
        RETURN_IF_ERROR(AcceptInstance(top_accepted, out.manifest, out.signatures));
      }
      AddImageBlobs(parsed, &copier_);
      result.one_of_index = true;
    } else {
      out.signatures = top_sigs;
      AddImageBlobs(parsed, &copier_);
    }
    // A destination that keeps no signatures at all fails the copy before anything is
    // written; one that keeps some is asked once they are all known, still before any
    // manifest is written.
    RETURN_IF_ERROR(CheckSigners());
    const bool keeps_signatures = dst_.CanStoreSignatures({Signature{}}).ok();
    if (!keeps_signatures) RETURN_IF_ERROR(CheckSignaturesFit(out, instances));

    RETURN_IF_ERROR(copier_.Run(&result));
    if (keeps_signatures) RETURN_IF_ERROR(CheckSignaturesFit(out, instances));
    for (const ManifestToWrite& inst : instances) {
      RETURN_IF_ERROR(PutManifest(dst_, inst.manifest, /*is_instance=*/true, copier_));
    }
    for (const ManifestToWrite& inst : instances) {
      ASSIGN_OR_RETURN(std::vector<Signature> sigs, Carried(inst.signatures));
      if (sigs.empty()) continue;
      RETURN_IF_ERROR(dst_.PutSignatures(inst.manifest.digest, true, sigs));
    }
    ASSIGN_OR_RETURN(std::vector<Signature> top_written, Carried(out.signatures));
    for (Signer* signer : options_.signers) {
      Progress("Signing manifest using " + signer->Describe());
      auto sig = signer->Sign(out.manifest.digest, options_.sign_identity);
      if (!sig.ok()) return Annotate(std::move(sig).error(), "signing with " + signer->Describe());
      top_written.push_back(std::move(*sig));
    }
    if (!top_written.empty()) {
      Progress("Storing signatures");
      RETURN_IF_ERROR(dst_.PutSignatures(out.manifest.digest, false, top_written));
    }
    Progress("Writing manifest to image destination");
    RETURN_IF_ERROR(PutManifest(dst_, out.manifest, /*is_instance=*/false, copier_));
    RETURN_IF_ERROR(dst_.Commit());
    result.manifest_digest = out.manifest.digest;
    result.signatures_written = static_cast<int>(top_written.size());
    return result;
  }

 private:
  bool PolicyReadsSignatures() const {
    return options_.accept_source && options_.accept_needs_signatures;
  }

  static PendingSignatures Ready(Result<std::vector<Signature>> sigs) {
    std::promise<Result<std::vector<Signature>>> done;
    done.set_value(std::move(sigs));
    return done.get_future().share();
  }
  static PendingSignatures None() { return Ready(std::vector<Signature>{}); }

  // The source's signatures of a manifest, when they are carried or the policy reads them:
  // read now when the policy needs them, else in the background.
  PendingSignatures Fetch(const std::string& digest, bool is_instance) {
    if (options_.remove_signatures && !PolicyReadsSignatures()) return None();
    auto read = [this, digest, is_instance]() -> Result<std::vector<Signature>> {
      auto sigs = src_.GetSignatures(digest, is_instance);
      if (!sigs.ok()) return Annotate(std::move(sigs).error(), "reading signatures of " + digest);
      return sigs;
    };
    if (PolicyReadsSignatures()) return Ready(read());
    return std::async(std::launch::async, std::move(read)).share();
  }

  // What is written of the source's signatures.
  Result<std::vector<Signature>> Carried(const PendingSignatures& pending) const {
    if (options_.remove_signatures) return std::vector<Signature>{};
    return pending.get();
  }

  Status Accept(const RawManifest& m, const PendingSignatures& sigs) const {
    if (!options_.accept_source) return Ok();
    if (!PolicyReadsSignatures()) return options_.accept_source(m, {});
    ASSIGN_OR_RETURN(std::vector<Signature> read, sigs.get());
    return options_.accept_source(m, read);
  }

  static Error Rejected(const Error& e) { return Annotate(e, "Source image rejected"); }

  // An index the policy refused is copied only if each instance copied is accepted by its own
  // signatures.
  Status AcceptInstance(const Status& index_refusal, const RawManifest& inst,
                        const PendingSignatures& sigs) const {
    Status s = Accept(inst, sigs);
    if (s.ok()) return s;
    return Rejected(MakeError(s.error().errnum, index_refusal.error().message + "; instance " +
                                                    inst.digest + ": " + s.error().message));
  }

  // A signer has an identity to claim.
  Status CheckSigners() const {
    if (!options_.signers.empty() && options_.sign_identity.empty()) {
      return MakeError(EINVAL, "can't tell which docker reference to sign for " + dst_.Describe() +
                                   ": use --sign-identity");
    }
    return Ok();
  }

  // The destination can keep every signature the copy would write.
  Status CheckSignaturesFit(const ManifestToWrite& out,
                            const std::vector<ManifestToWrite>& instances) const {
    ASSIGN_OR_RETURN(std::vector<Signature> all, Carried(out.signatures));
    for (const ManifestToWrite& inst : instances) {
      ASSIGN_OR_RETURN(std::vector<Signature> sigs, Carried(inst.signatures));
      all.insert(all.end(), sigs.begin(), sigs.end());
    }
    for (Signer* signer : options_.signers) {
      Signature placeholder;
      placeholder.format = signer->format();
      all.push_back(std::move(placeholder));
    }
    Status fits = dst_.CanStoreSignatures(all);
    if (!fits.ok()) {
      return Annotate(std::move(fits).error(),
                      "can't copy signatures to " + dst_.Describe() +
                          (options_.signers.empty() ? " (--remove-signatures drops them)" : ""));
    }
    return Ok();
  }

  void Progress(const std::string& line) const {
    if (options_.progress) options_.progress(line);
  }

  ImageSource& src_;
  ImageDestination& dst_;
  const CopyOptions& options_;
  BlobCopier copier_;
};

}  // namespace

Result<CopyResult> CopyImage(ImageSource& src, ImageDestination& dst, const CopyOptions& options) {
  return ImageCopy(src, dst, options).Run();
}

}  // namespace regfs
