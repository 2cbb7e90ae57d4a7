#include "transports/copy/copy.h"

#include <atomic>
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
  RETURN_IF_ERROR(writer->Commit());
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

Result<CopyResult> CopyImage(ImageSource& src, ImageDestination& dst, const CopyOptions& options) {
  CopyResult result;
  if (options.progress) options.progress("Getting image source signatures");
  ASSIGN_OR_RETURN(RawManifest top, src.GetManifest(""));
  ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(top.bytes, top.media_type));
  if (top.media_type.empty()) top.media_type = parsed.media_type;
  BlobCopier copier(src, dst, options);
  std::vector<RawManifest> instances;

  if (parsed.is_index && !options.platforms.empty()) {
    ASSIGN_OR_RETURN(top, ReduceIndex(top, parsed, options.platforms));
    ASSIGN_OR_RETURN(parsed, ParseManifest(top.bytes, top.media_type));
  }
  if (parsed.is_index && (options.all || !options.platforms.empty())) {
    for (const Descriptor& d : parsed.manifests) {
      ASSIGN_OR_RETURN(RawManifest inst, GetInstance(src, d));
      ASSIGN_OR_RETURN(Manifest m, ParseManifest(inst.bytes, inst.media_type));
      if (m.is_index)
        return MakeError(EOPNOTSUPP, "nested indexes are not supported (" + d.digest + ")");
      AddImageBlobs(m, &copier);
      instances.push_back(std::move(inst));
    }
  } else if (parsed.is_index) {
    ASSIGN_OR_RETURN(Descriptor chosen, ChooseInstance(parsed, options.platform));
    ASSIGN_OR_RETURN(top, GetInstance(src, chosen));
    ASSIGN_OR_RETURN(parsed, ParseManifest(top.bytes, top.media_type));
    if (parsed.is_index) return MakeError(EOPNOTSUPP, "nested indexes are not supported");
    AddImageBlobs(parsed, &copier);
    result.one_of_index = true;
  } else {
    AddImageBlobs(parsed, &copier);
  }

  RETURN_IF_ERROR(copier.Run(&result));
  for (const RawManifest& inst : instances) {
    RETURN_IF_ERROR(PutManifest(dst, inst, /*is_instance=*/true, copier));
  }
  if (options.progress) options.progress("Writing manifest to image destination");
  RETURN_IF_ERROR(PutManifest(dst, top, /*is_instance=*/false, copier));
  RETURN_IF_ERROR(dst.Commit());
  result.manifest_digest = top.digest;
  return result;
}

}  // namespace regfs
