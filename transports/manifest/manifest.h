// Manifests: the OCI image manifest and index, Docker v2 schema 2 manifest and manifest list.
//
// Parsing never alters the bytes: callers keep the raw bytes they were given, and a Manifest is
// only a view of what they reference. Schema 1 is refused with a clear error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/util/result.h"

namespace regfs {

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerV2S2 =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerV1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerV1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
// The Accept header for manifest requests: every type regfs can handle.
inline constexpr std::string_view kAcceptManifests =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";
}  // namespace media

// containers/image limits.
inline constexpr int64_t kMaxManifestSize = 4 << 20;
inline constexpr int64_t kMaxConfigSize = 4 << 20;

// Manifest bytes exactly as stored or served, with their media type and digest.
struct RawManifest {
  std::string bytes;
  std::string media_type;
  std::string digest;
};

struct Platform {
  std::string architecture;
  std::string os;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
};

struct Manifest {
  std::string media_type;
  bool is_index = false;
  // Image manifests:
  Descriptor config;
  std::vector<Descriptor> layers;
  // Indexes:
  std::vector<Descriptor> manifests;
};

bool IsIndexMediaType(std::string_view media_type);

// The media type of manifest bytes, from their "mediaType" field or, failing that, their shape.
// `hint` (a Content-Type or a descriptor's mediaType) is used when the bytes don't say.
std::string GuessManifestMediaType(std::string_view bytes, std::string_view hint = {});

// Parses and validates manifest bytes (size limit, JSON, digests, schema 1 refused).
Result<Manifest> ParseManifest(std::string_view bytes, std::string_view hint = {});

// The platform regfs runs on, as an OCI platform (linux/amd64, linux/arm64, …).
Platform HostPlatform();

// Picks the instance of an index for `want`; ENOENT listing the platforms offered if none fits.
Result<Descriptor> ChooseInstance(const Manifest& index, const Platform& want);

// "os/architecture[/variant]" ("linux/arm64/v8"); EINVAL naming the text otherwise.
Result<Platform> ParsePlatform(std::string_view text);
std::string PlatformString(const Platform& p);

// The index `raw` keeping only the instances ChooseInstance() picks for `platforms` (in the
// index's order, every other field as it was): new bytes and a new digest, or `raw` itself
// when nothing is dropped. ENOENT when a platform has no instance.
Result<RawManifest> ReduceIndex(const RawManifest& raw, const Manifest& index,
                                const std::vector<Platform>& platforms);

}  // namespace regfs
