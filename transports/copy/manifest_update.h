// Rewriting an image manifest for a copy that changed its layers or its format, as
// containers/image rewrites it (UpdateLayerInfos and its v2s2 ⇄ OCI converters), serialized as
// Go's encoding/json writes containers/image's manifest structs — compact, in struct field
// order, unknown fields dropped — so that the bytes, and so the digest, equal skopeo's for the
// same input and flags.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/compression/compression.h"
#include "transports/manifest/manifest.h"

namespace regfs {

inline constexpr std::string_view kOciConfigMediaType = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerConfigMediaType =
    "application/vnd.docker.container.image.v1+json";

// What became of one layer. `compression` is set when the copy knows how the written blob is
// compressed (it re-encoded it, substituted a variant, or looked at its bytes): the layer's
// media type is then the variant of its type for that compression.
struct LayerWritten {
  std::string digest;
  int64_t size = -1;
  std::optional<Compression> compression;
};

// The media type `media_type` becomes for `c` in a manifest of type `manifest_type`: EINVAL
// naming both when the format can't carry it (zstd in Docker v2s2).
Result<std::string> LayerMediaTypeVariant(std::string_view manifest_type,
                                          std::string_view media_type, Compression c);

// Whether a manifest of type `manifest_type` can carry layers compressed with `c`.
bool FormatCarries(std::string_view manifest_type, Compression c);

// The OCI image config containers/image makes of a Docker config (decoded into the OCI
// image-spec struct and encoded again: Docker-only fields dropped).
Result<std::string> OciConfigFromDocker(std::string_view docker_config);

// The manifest written for `src` (parsed as `parsed`) as `target_type` (kOciManifest or
// kDockerV2S2; the source's own type for no conversion), with `layers` (one per layer, in
// order; empty: the layers unchanged) and, for a v2s2 → OCI conversion, the converted config's
// bytes. Returns `src` itself when nothing changes.
struct ManifestUpdate {
  std::string target_type;
  std::vector<LayerWritten> layers;
  std::optional<std::string> oci_config;  // OciConfigFromDocker() of the source's config
};
Result<RawManifest> UpdateImageManifest(const RawManifest& src, const Manifest& parsed,
                                        const ManifestUpdate& update);

// The index `index` naming each instance in `replaced` (by its old digest) by the manifest
// written instead: digest, size and media type change, every other field stays as it was.
Result<RawManifest> UpdateIndexInstances(const RawManifest& index,
                                         const std::map<std::string, RawManifest>& replaced);

}  // namespace regfs
