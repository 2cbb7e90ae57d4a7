// Copying one layer while re-encoding it on its way (compressing, recompressing or
// decompressing), for copies that change layer compression. Internal to the copy pipeline.
//
// The source's bytes are verified against the source digest as they stream, exactly as
// CopyBlob() verifies them; what the destination receives is hashed on the fly and committed
// under that new digest. How a layer is compressed is read from its first bytes, not trusted
// from its media type (a docker-archive source reports uncompressed layers as gzip).
#pragma once

#include <atomic>
#include <optional>

#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/compression/compression.h"
#include "transports/copy/manifest_update.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

struct LayerEncoding {
  LayerCompression want = LayerCompression::kPreserve;
  // With kCompress: false when no conversion was asked for, and only layers whose bytes are
  // uncompressed although their media type says compressed (a docker-archive's) are
  // compressed; layers labelled uncompressed then stay as they are (digests preserved).
  bool compress_labelled_uncompressed = true;
  BlobLocationCache* variants = nullptr;  // CopyOptions::blob_info
  std::optional<Compression> format;      // the algorithm to compress with (default gzip); also
                                      // makes compressed layers of another algorithm recompressed
  std::optional<int> level;
};

struct LayerCopied {
  LayerWritten written;
  bool copied = false;  // bytes moved (else the destination had it)
  int64_t moved = 0;    // bytes read from the source
  bool reencoded = false;
};

// Streams the blob from `src` to `sink`, verifying it as it goes: no more than its size, then
// exactly its size and its digest (the bytes already passed on are the caller's to drop when
// this fails). `cancel`, when set, aborts the transfer. Returns the bytes read.
Result<int64_t> StreamVerified(ImageSource& src, const BlobInfo& blob,
                               const std::atomic<bool>* cancel, const ByteSink& sink);

// Whether `enc` could change a layer of type `media_type` at all (a known layer type and a
// destination or flags that want something done).
bool MayReencode(const LayerEncoding& enc, const std::string& media_type);

Result<LayerCopied> CopyLayer(ImageSource& src, ImageDestination& dst, const BlobInfo& blob,
                              const LayerEncoding& enc, const std::atomic<bool>* cancel);

}  // namespace regfs
