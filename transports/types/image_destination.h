// ImageDestination: where a copy writes an image to.
//
// Call order, which every destination relies on:
//   1. for each blob: TryReuseBlob(), and when that returns false, NewBlobWriter(), Write()…,
//      then Commit() once the pipeline has verified the digest (blobs may be written from
//      several threads at once, unless SerialBlobs());
//   2. PutManifest() for each instance of an index, then PutSignatures() for the instances
//      and the top-level manifest, then PutManifest() for the top-level manifest (a registry
//      tags it there, so signatures are stored before the tag exists);
//   3. Commit(), which makes the image visible under its name.
// Until step 3 succeeds nothing is visible under the destination's name: a destination that is
// destroyed without Commit() leaves no tag, no image directory and no index entry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transports/manifest/manifest.h"
#include "transports/types/image_source.h"
#include "transports/util/result.h"

namespace regfs {

class BlobWriter {
 public:
  virtual ~BlobWriter() = default;  // without Commit() the bytes are discarded
  virtual Status Write(const char* data, size_t n) = 0;
  // The pipeline verified the bytes written: `blob` is their digest and size (known only now
  // when the pipeline re-encoded the layer on its way); keep the blob under that digest.
  virtual Status Commit(const BlobInfo& blob) = 0;
};

// What a destination wants done to layers on their way to it, unless the copy is told
// otherwise: keep them as they are (dir:, oci:), compress uncompressed ones (a registry), or
// store them uncompressed (docker-archive:, as `docker save` writes them).
enum class LayerCompression { kPreserve, kCompress, kDecompress };

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;

  virtual std::string Describe() const = 0;

  // Held by the pipeline from TryReuseBlob() to the blob writer's Commit(): a destination
  // that other copies in this process may write the same blob to at the same time serialises
  // them here (the second then finds the blob present). nullptr: nothing to serialise.
  virtual std::shared_ptr<void> LockBlob(const BlobInfo&) { return nullptr; }

  // True when the blob needs no transfer: the destination has it already, or mounted it from
  // `source` (a location on the same registry).
  virtual Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* source) = 0;

  // `blob.digest` is empty and `blob.size` -1 when the pipeline re-encodes the blob on its
  // way: both are known only at the writer's Commit().
  virtual Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) = 0;

  virtual LayerCompression DesiredLayerCompression() const { return LayerCompression::kPreserve; }

  // True when blobs must be written one at a time (a tar stream): the pipeline then never has
  // two blob writers open at once.
  virtual bool SerialBlobs() const { return false; }

  // Writes an instance manifest of an index (`is_instance`) or the top-level manifest.
  virtual Status PutManifest(const RawManifest& manifest, bool is_instance) = 0;

  // Whether signatures like `sigs` can be stored here; asked before anything is written, so a
  // copy that could not keep its signatures fails first. EOPNOTSUPP with the reason.
  virtual Status CanStoreSignatures(const std::vector<Signature>& sigs) {
    if (sigs.empty()) return Ok();
    return MakeError(EOPNOTSUPP, Describe() + " can't store signatures");
  }

  // Stores the signatures of the manifest with `manifest_digest` (the top-level one, or an
  // instance). A registry adds sigstore signatures to what its attachment holds already; dir:
  // writes them as the image's signature files.
  virtual Status PutSignatures(const std::string& manifest_digest, bool is_instance,
                               const std::vector<Signature>& sigs) {
    (void)manifest_digest;
    (void)is_instance;
    return CanStoreSignatures(sigs);
  }

  virtual Status Commit() = 0;
};

}  // namespace regfs
