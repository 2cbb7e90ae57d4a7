// Image references: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, oci:PATH[:REF],
// oci-archive:PATH[:REF], docker-archive:PATH[:REF|@N],
// docker-daemon:NAME:TAG|NAME@DIGEST|sha256:IMAGE-ID.
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

enum class Transport { kDocker, kDir, kOci, kOciArchive, kDockerArchive, kDockerDaemon };

struct ImageReference {
  Transport transport = Transport::kDocker;
  DockerReference docker;  // kDocker; kDockerDaemon unless daemon_image_id is set
  std::string path;        // kDir, kOci, kOciArchive, kDockerArchive
  std::string oci_ref;     // kOci, kOciArchive: the org.opencontainers.image.ref.name, may be empty
  // kDockerArchive, as containers/image parses it: a tagged reference (":latest" implied,
  // digests refused) naming a RepoTags entry, or a 0-based index into manifest.json (sources
  // only), or neither.
  std::optional<DockerReference> archive_tag;
  int archive_index = -1;
  // kDockerDaemon: "sha256:<hex>", an image ID (the config's digest), instead of a name.
  std::string daemon_image_id;

  std::string String() const;
};

// docker.io/library/busybox:latest → busybox:latest, as the docker CLI (and skopeo's
// docker-daemon:) write names.
std::string FamiliarString(const DockerReference& ref);

// Parses the part after "docker-daemon:" as containers/image does: an image ID
// ("sha256:<64 hex>"; other algorithms are refused), or a name with a tag or a digest, never
// both and never neither (the engine would take a bare name for all its tags).
Result<ImageReference> ParseDaemonReference(std::string_view ref);

// Parses "TRANSPORT:REST". Unknown transports and malformed references give EINVAL.
Result<ImageReference> ParseImageReference(std::string_view ref);

}  // namespace regfs
