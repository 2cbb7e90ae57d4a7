// What `regfs inspect` prints, byte-compatible with `skopeo inspect`.
#pragma once

#include <string>
#include <vector>

#include "transports/manifest/manifest.h"
#include "transports/types/image_source.h"

namespace regfs {

// The image an inspect looks at: for an index, the instance for `platform`.
struct ResolvedImage {
  RawManifest top;       // as stored; its digest is the "Digest" skopeo prints
  RawManifest manifest;  // the single-image manifest (top itself when not an index)
  Manifest parsed;
  std::string config;  // config blob bytes, verified
};

Result<ResolvedImage> ResolveImage(ImageSource& src, const Platform& platform);

// skopeo's inspect JSON (4-space indent, trailing newline). `name` is registry/repository for
// docker references, "" otherwise; `repo_tags` the repository's tags.
std::string InspectJson(const ResolvedImage& image, const std::string& name,
                        const std::vector<std::string>& repo_tags);

// `inspect --config`: the config as an OCI image configuration, as skopeo prints it.
Result<std::string> OciConfigJson(const std::string& config);

// JSON text as Go's encoding/json writes it: "<", ">" and "&" escaped as \u003c, \u003e, \u0026.
std::string GoJsonEscapes(std::string json);

// A timestamp in Go's RFC 3339 with nanoseconds form (trailing zeros trimmed, "Z" for UTC);
// "" when it does not parse.
std::string NormalizeRfc3339(const std::string& t);

}  // namespace regfs
