// The copy pipeline: the one path by which every image moves, whatever the transports
// (`regfs copy`, and the mount's pushes and server-side copies).
//
// Each blob is verified once, while it streams (size and sha256, checked before the
// destination keeps it); blobs the destination has are skipped and blobs on the same registry
// are mounted across repositories; up to `parallel` blobs move at once; no blob is ever held in
// memory whole; manifests are copied byte for byte, so digests are preserved, unless a
// conversion is asked for (or the destination can only store layers uncompressed); the top-level
// manifest is written last, so a failed copy leaves no tag.
//
// Conversions (format, layer compression) re-encode layers while they stream, keep the config
// (its diff_ids are of the uncompressed layers), and rebuild the manifest as containers/image
// does, byte for byte; they are deterministic.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/compression/compression.h"
#include "transports/manifest/manifest.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

struct CopyOptions {
  bool all = false;  // copy every instance of an index; else the one for `platform`
  Platform platform = HostPlatform();
  // Not empty: of an index, copy the instances for these platforms and write the index
  // reduced to them (ReduceIndex: a new digest unless nothing is dropped). Wins over `all`.
  std::vector<Platform> platforms;
  int parallel = 6;
  // Signatures. The source's are copied along with each manifest copied unchanged (the index
  // and its instances with `all`, else the chosen instance's own), unless `remove_signatures`.
  // A copy that changes a signed manifest (reducing an index to `platforms`) fails unless they
  // are removed.
  bool remove_signatures = false;
  // Each signs the top-level manifest written, claiming `sign_identity` (a docker reference
  // string: the destination's, or --sign-identity).
  std::vector<Signer*> signers;
  std::string sign_identity;
  // The signature policy, asked before anything is written: first with the source's top-level
  // manifest and its signatures; when it refuses an index, then with each instance to be
  // copied, all of which must be accepted. Unset: everything is accepted.
  std::function<Status(const RawManifest& manifest, const std::vector<Signature>& sigs)>
      accept_source;
  // Whether accept_source looks at signatures (they are fetched for it even when removed).
  bool accept_needs_signatures = true;
  // Conversion, as skopeo's flags. `format` (-f): the manifest type to write (media::kOciManifest
  // or kDockerV2S2), empty for the source's own — or OCI when layers end up compressed in a way
  // Docker v2s2 can't carry. `compress_format`/`compress_level` (--dest-compress-format,
  // --dest-compress-level): the algorithm uncompressed layers are compressed with where the
  // destination wants them compressed (default gzip), and compressed layers of another
  // algorithm are recompressed into. `layer_compression` (--dest-compress, --dest-decompress):
  // what a destination that keeps layers as they come (dir:, oci:) does instead.
  std::string format;
  std::optional<Compression> compress_format;
  std::optional<int> compress_level;
  std::optional<LayerCompression> layer_compression;
  // Where the (compressed, uncompressed) pairs of layers the copy (de)compresses are recorded,
  // and looked up before compressing a layer: a compressed variant the destination has or can
  // mount is reused instead (null: none).
  BlobLocationCache* blob_info = nullptr;
  // --preserve-digests: nothing is re-encoded, whatever the destination would like; a
  // conversion asked for is refused.
  bool preserve_digests = false;
  // One line per event ("Copying blob sha256:… done"), for progress on a terminal.
  std::function<void(const std::string&)> progress;
};

struct CopyResult {
  std::string manifest_digest;  // of the top-level manifest written
  // The source was an index and one instance of it was copied (neither `all` nor platforms).
  bool one_of_index = false;
  int blobs_copied = 0;
  int blobs_reused = 0;
  int64_t bytes_copied = 0;
  int signatures_written = 0;  // of the top-level manifest: carried and new
};

Result<CopyResult> CopyImage(ImageSource& src, ImageDestination& dst, const CopyOptions& options);

// True when `options` ask for a conversion (format or layer compression).
bool ConversionAsked(const CopyOptions& options);

// The digest CopyImage() would write for the top-level manifest `top` with `options`, from
// that manifest alone: its own, the reduced index's, or the chosen instance's. EOPNOTSUPP when
// a conversion is asked for: its digest is known only once the layers are re-encoded.
Result<std::string> TargetDigest(const RawManifest& top, const CopyOptions& options);

// Copies one blob: nothing when the destination has it or can mount it (false), else streamed
// and verified (true, `moved` bytes). `cancel`, when set, aborts the transfer.
Result<bool> CopyBlob(ImageSource& src, ImageDestination& dst, const BlobInfo& blob,
                      const std::atomic<bool>* cancel = nullptr, int64_t* moved = nullptr);

}  // namespace regfs
