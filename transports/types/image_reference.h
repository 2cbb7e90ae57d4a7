// Image references: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, oci:PATH[:REF],
// oci-archive:PATH[:REF], docker-archive:PATH[:REF|@N].
//
// Docker references are normalized as containers/image normalizes them: a first component
// without '.', ':' and other than "localhost" is a Docker Hub path (docker.io, and a lone name
// gets "library/"); a reference with neither tag nor digest means ":latest".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "transports/util/result.h"

namespace regfs {

struct DockerReference {
  std::string registry;        // "docker.io", "127.0.0.1:5000", "[::1]:5000"
  std::string repository;      // "library/busybox"
  std::string tag;             // may be empty when digest is set
  std::string digest;          // "sha256:…" or empty
  bool tag_defaulted = false;  // "latest" was implied, not written

  // registry/repository, as skopeo prints it.
  std::string Name() const { return registry + "/" + repository; }
  // The tag or digest used to address the manifest (digest wins).
  std::string ManifestRef() const { return digest.empty() ? tag : digest; }
  // Name plus ":tag" and/or "@digest".
  std::string String() const;
};

// Parses the part after "docker://". When no tag or digest is given, the tag is "latest".
Result<DockerReference> ParseDockerReference(std::string_view ref);

// Validation of the pieces, shared with the mount's path parser.
bool IsValidRegistryHost(std::string_view host);
bool IsValidRepositoryComponent(std::string_view component);
bool IsValidTag(std::string_view tag);

// True for hosts in 127.0.0.0/8, ::1 and localhost (with or without a port).
bool IsLoopbackHost(std::string_view registry);

enum class Transport { kDocker, kDir, kOci, kOciArchive, kDockerArchive };

struct ImageReference {
  Transport transport = Transport::kDocker;
  DockerReference docker;  // kDocker
  std::string path;        // kDir, kOci, kOciArchive, kDockerArchive
  std::string oci_ref;     // kOci, kOciArchive: the org.opencontainers.image.ref.name, may be empty
  // kDockerArchive, as containers/image parses it: a tagged reference (":latest" implied,
  // digests refused) naming a RepoTags entry, or a 0-based index into manifest.json (sources
  // only), or neither.
  std::optional<DockerReference> archive_tag;
  int archive_index = -1;

  std::string String() const;
};

// Parses "TRANSPORT:REST". Unknown transports and malformed references give EINVAL.
Result<ImageReference> ParseImageReference(std::string_view ref);

}  // namespace regfs
