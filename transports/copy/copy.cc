#include "transports/copy/copy.h"

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "transports/copy/layer_copy.h"
#include "transports/copy/manifest_update.h"
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
  ASSIGN_OR_RETURN(int64_t n, StreamVerified(src, blob, cancel, [&](const char* data, size_t len) {
                     return writer->Write(data, len);
                   }));
  const std::string& got = blob.digest;
  RETURN_IF_ERROR(writer->Commit(BlobInfo{got, n, blob.media_type}));
  if (moved) *moved = n;
  return true;
}

namespace {

class BlobCopier {
 public:
  BlobCopier(ImageSource& src, ImageDestination& dst, const CopyOptions& options)
      : src_(src), dst_(dst), options_(options) {}

  void Add(const Descriptor& d, bool is_layer) {
    if (seen_.insert(d.digest).second) {
      items_.push_back(Item{BlobInfo{d.digest, d.size, d.media_type}, is_layer, nullptr});
    }
  }

  // A blob the copy made (a converted config), written from memory.
  void AddBytes(const std::string& media_type, std::string bytes) {
    std::string digest = DigestOf(bytes);
    if (!seen_.insert(digest).second) return;
    auto owned = std::make_shared<const std::string>(std::move(bytes));
    items_.push_back(
        Item{BlobInfo{digest, static_cast<int64_t>(owned->size()), media_type}, false, owned});
  }

  // Drops a blob added (a config the conversion replaces).
  void Drop(const std::string& digest) {
    std::erase_if(items_, [&](const Item& i) { return i.blob.digest == digest && !i.bytes; });
    seen_.erase(digest);
  }

  // How layers are re-encoded on their way; set before Run().
  void SetEncoding(const LayerEncoding& enc) { encoding_ = enc; }

  // Copies every blob added, `parallel` at a time (one at a time for a destination that takes
  // blobs serially); the first error stops the rest.
  Status Run(CopyResult* result) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      while (!failed_.load()) {
        size_t i = next.fetch_add(1);
        if (i >= items_.size()) return;
        Status s = CopyOne(items_[i], result);
        if (!s.ok()) Fail(Annotate(std::move(s).error(), "copying blob " + items_[i].blob.digest));
      }
    };
    int parallel = dst_.SerialBlobs() ? 1 : std::max(options_.parallel, 1);
    size_t n = std::min<size_t>(parallel, items_.size());
    std::vector<std::thread> threads;
    for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    if (failed_.load()) return first_error_;
    return Ok();
  }

  // What was written for the source layer `digest` (after Run()).
  LayerWritten Written(const Descriptor& layer) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(layer.digest);
    if (it != written_.end()) return it->second;
    return LayerWritten{layer.digest, layer.size, std::nullopt};
  }

 private:
  struct Item {
    BlobInfo blob;
    bool is_layer = false;
    std::shared_ptr<const std::string> bytes;  // for AddBytes()
  };

  Status CopyOne(const Item& item, CopyResult* result) {
    const BlobInfo& blob = item.blob;
    bool copied = false;
    int64_t moved = 0;
    bool reencoded = false;
    if (item.bytes) {
      ASSIGN_OR_RETURN(copied, WriteBytes(blob, *item.bytes));
      moved = copied ? blob.size : 0;
    } else if (item.is_layer && MayReencode(encoding_, blob.media_type)) {
      ASSIGN_OR_RETURN(LayerCopied layer, CopyLayer(src_, dst_, blob, encoding_, &failed_));
      copied = layer.copied;
      moved = layer.moved;
      reencoded = layer.reencoded;
      std::lock_guard<std::mutex> lock(mu_);
      written_[blob.digest] = layer.written;
    } else {
      ASSIGN_OR_RETURN(copied, CopyBlob(src_, dst_, blob, &failed_, &moved));
    }
    Progress("Copying blob " + blob.digest +
             (!copied     ? " skipped: already exists"
              : reencoded ? " done (re-encoded)"
                          : " done"));
    std::lock_guard<std::mutex> lock(mu_);
    if (copied) {
      ++result->blobs_copied;
      result->bytes_copied += moved;
    } else {
      ++result->blobs_reused;
    }
    return Ok();
  }

  Result<bool> WriteBytes(const BlobInfo& blob, const std::string& bytes) {
    std::shared_ptr<void> lock = dst_.LockBlob(blob);
    ASSIGN_OR_RETURN(bool reused, dst_.TryReuseBlob(blob, nullptr));
    if (reused) return false;
    ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, dst_.NewBlobWriter(blob));
    RETURN_IF_ERROR(writer->Write(bytes.data(), bytes.size()));
    RETURN_IF_ERROR(writer->Commit(blob));
    return true;
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
  LayerEncoding encoding_;
  std::vector<Item> items_;
  std::set<std::string> seen_;
  std::mutex mu_;
  std::atomic<bool> failed_{false};
  Error first_error_;                            // guarded by mu_
  std::map<std::string, LayerWritten> written_;  // by source digest; guarded by mu_
};

void AddImageBlobs(const Manifest& m, BlobCopier* copier) {
  copier->Add(m.config, false);
  for (const auto& l : m.layers) copier->Add(l, true);
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

bool ConversionAsked(const CopyOptions& options) {
  return !options.format.empty() || options.compress_format || options.compress_level ||
         options.layer_compression;
}

Result<std::string> TargetDigest(const RawManifest& top, const CopyOptions& options) {
  if (ConversionAsked(options)) {
    return MakeError(EOPNOTSUPP,
                     "a converted image's digest is known only once its layers are re-encoded");
  }
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
  std::optional<Manifest> image;  // an image manifest, parsed (not an index)
  ManifestUpdate update;          // its conversion: the type written, the converted config
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

    ManifestToWrite out{top, None(), std::nullopt, {}};
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
        instances.push_back({std::move(inst), std::move(sigs), m, {}});
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
      out.image = parsed;
      result.one_of_index = true;
    } else {
      out.signatures = top_sigs;
      AddImageBlobs(parsed, &copier_);
      out.image = parsed;
    }
    // A destination that keeps no signatures at all fails the copy before anything is
    // written; one that keeps some is asked once they are all known, still before any
    // manifest is written.
    RETURN_IF_ERROR(CheckSigners());
    RETURN_IF_ERROR(PlanConversion(out, instances));
    const bool keeps_signatures = dst_.CanStoreSignatures({Signature{}}).ok();
    if (!keeps_signatures) RETURN_IF_ERROR(CheckSignaturesFit(out, instances));

    RETURN_IF_ERROR(copier_.Run(&result));
    if (keeps_signatures) RETURN_IF_ERROR(CheckSignaturesFit(out, instances));
    RETURN_IF_ERROR(RebuildManifests(out, instances));
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

  // What the destination and the flags want done to layers.
  LayerEncoding Encoding() const {
    LayerEncoding enc;
    enc.want = dst_.DesiredLayerCompression();
    enc.variants = options_.blob_info;
    // Copies preserve digests unless a conversion is asked for (DESIGN §2): a registry takes
    // uncompressed layers too, so its wish to have them compressed is honoured for layers
    // labelled uncompressed only by a copy that converts anyway — and always for uncompressed
    // bytes labelled compressed (a docker-archive's), which no registry client could read.
    // A destination that can only store layers uncompressed (a docker-archive) always gets so.
    enc.compress_labelled_uncompressed = ConversionAsked(options_);
    if (options_.layer_compression && enc.want == LayerCompression::kPreserve) {
      enc.want = *options_.layer_compression;
    }
    enc.format = options_.compress_format;
    enc.level = options_.compress_level;
    return enc;
  }

  // The manifest type an image is written as: -f's, else its own — unless its layers will be
  // compressed in a way that type can't carry, when containers/image falls back to OCI.
  std::string TargetType(const Manifest& m, const LayerEncoding& enc) const {
    if (!options_.format.empty()) return options_.format;
    if (m.media_type == media::kDockerV2S2 && enc.want == LayerCompression::kCompress &&
        enc.format && !FormatCarries(m.media_type, *enc.format)) {
      return std::string(media::kOciManifest);
    }
    return m.media_type;
  }

  // Settles, before anything is written, how layers are encoded and what each image manifest
  // becomes: signatures that a change would invalidate stop the copy (unless removed); what
  // the target format can't carry is refused; a v2s2 → OCI conversion's config is made.
  Status PlanConversion(ManifestToWrite& out, std::vector<ManifestToWrite>& instances) {
    LayerEncoding enc = Encoding();
    std::vector<ManifestToWrite*> images;
    if (out.image) images.push_back(&out);
    for (ManifestToWrite& inst : instances) images.push_back(&inst);
    bool changes =
        options_.compress_format || options_.compress_level || options_.layer_compression;
    for (ManifestToWrite* img : images) {
      const bool converts = TargetType(*img->image, enc) != img->image->media_type;
      if (converts && !out.image) {
        // containers/image converts the index's own type along; regfs does not (yet).
        return MakeError(EOPNOTSUPP,
                         "converting the format of a multi-platform image is not supported: "
                         "copy one platform, or keep its format");
      }
      changes |= converts;
    }
    if (options_.preserve_digests && (changes || ConversionAsked(options_))) {
      return MakeError(EINVAL,
                       "a conversion was asked for, but --preserve-digests forbids changing the "
                       "image");
    }
    if (!options_.remove_signatures) {
      size_t carried = 0;
      ASSIGN_OR_RETURN(std::vector<Signature> top, Carried(out.signatures));
      carried += top.size();
      for (const ManifestToWrite& inst : instances) {
        ASSIGN_OR_RETURN(std::vector<Signature> sigs, Carried(inst.signatures));
        carried += sigs.size();
      }
      if (carried > 0) {
        if (changes) {
          return MakeError(EINVAL,
                           "converting the image changes its manifest, which would "
                           "invalidate its " +
                               std::to_string(carried) + " signature(s); use --remove-signatures");
        }
        // As containers/image: a signed image's layers are kept as they are, whatever the
        // destination would like.
        enc.want = LayerCompression::kPreserve;
      }
    }
    if (options_.preserve_digests) enc.want = LayerCompression::kPreserve;
    copier_.SetEncoding(enc);
    for (ManifestToWrite* img : images) {
      const Manifest& m = *img->image;
      img->update.target_type = TargetType(m, enc);
      if (img->update.target_type == media::kDockerV2S2 &&
          enc.want == LayerCompression::kCompress && enc.format &&
          !FormatCarries(media::kDockerV2S2, *enc.format)) {
        return MakeError(EINVAL, std::string(CompressionName(*enc.format)) +
                                     " compression is not supported for type \"" +
                                     std::string(media::kDockerV2S2) + "\" (use -f oci)");
      }
      if (img->update.target_type == media::kOciManifest && m.media_type == media::kDockerV2S2) {
        ASSIGN_OR_RETURN(std::string config, ReadConfig(m.config));
        ASSIGN_OR_RETURN(std::string oci, OciConfigFromDocker(config));
        img->update.oci_config = oci;
        copier_.Drop(m.config.digest);  // the converted manifest names the OCI config only
        copier_.AddBytes(std::string(kOciConfigMediaType), std::move(oci));
      }
      // A dry run with the layers as their media types predict them, so that a format that
      // can't carry them is refused before any blob is written.
      ManifestUpdate dry = img->update;
      for (const Descriptor& l : m.layers) {
        LayerWritten w{l.digest, l.size, LayerMediaTypeCompression(l.media_type)};
        if (w.compression && MayReencode(enc, l.media_type)) {
          if (enc.want == LayerCompression::kDecompress) w.compression = Compression::kNone;
          const bool plain = *w.compression == Compression::kNone;
          if (enc.want == LayerCompression::kCompress &&
              ((plain && enc.compress_labelled_uncompressed) || (!plain && enc.format))) {
            w.compression = enc.format.value_or(Compression::kGzip);
          }
        }
        if (w.compression) w.digest = "sha256:" + std::string(64, '0');  // forces an update
        dry.layers.push_back(w);
      }
      auto checked = UpdateImageManifest(img->manifest, m, dry);
      if (!checked.ok()) return std::move(checked).error();
    }
    return Ok();
  }

  Result<std::string> ReadConfig(const Descriptor& d) {
    if (d.size > kMaxConfigSize) return MakeError(EFBIG, "config " + d.digest + " is over 4 MiB");
    std::string bytes;
    RETURN_IF_ERROR(src_.GetBlob(BlobInfo{d.digest, d.size, d.media_type},
                                 [&](const char* data, size_t n) -> Status {
                                   if (bytes.size() + n > static_cast<size_t>(kMaxConfigSize)) {
                                     return MakeError(EFBIG, "config is over 4 MiB");
                                   }
                                   bytes.append(data, n);
                                   return Ok();
                                 }));
    if (DigestOf(bytes) != d.digest) {
      return MakeError(EIO, "config " + d.digest + " does not match its digest");
    }
    return bytes;
  }

  // The manifests written, with the layers as they were written; an index whose instances
  // changed names them by their new digests.
  Status RebuildManifests(ManifestToWrite& out, std::vector<ManifestToWrite>& instances) {
    std::map<std::string, RawManifest> replaced;
    auto rebuild = [&](ManifestToWrite& img) -> Status {
      const Manifest& m = *img.image;
      ManifestUpdate update = img.update;
      for (const Descriptor& l : m.layers) update.layers.push_back(copier_.Written(l));
      ASSIGN_OR_RETURN(RawManifest updated, UpdateImageManifest(img.manifest, m, update));
      if (updated.digest != img.manifest.digest) replaced[img.manifest.digest] = updated;
      img.manifest = std::move(updated);
      return Ok();
    };
    if (out.image) RETURN_IF_ERROR(rebuild(out));
    for (ManifestToWrite& inst : instances) RETURN_IF_ERROR(rebuild(inst));
    if (!out.image && !replaced.empty()) {
      ASSIGN_OR_RETURN(out.manifest, UpdateIndexInstances(out.manifest, replaced));
    }
    return Ok();
  }

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
