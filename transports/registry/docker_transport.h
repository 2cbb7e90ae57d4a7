// The docker:// transport: images in a registry, through any Registry (docker/'s client, or a
// test's registry that fails on purpose).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transports/registry/registry.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

// Where the signatures of a repository's images are, as registries.d says for it.
struct DockerSignatureStorage {
  // Sigstore signatures as the OCI attachment `sha256-<hex>.sig` beside each manifest, read
  // and written (registries.d `use-sigstore-attachments`, on unless turned off).
  bool attachments = true;
  // The lookaside storage (GPG simple signing), read and written by digest; unset: none.
  std::function<Result<std::vector<Signature>>(const std::string& manifest_digest)> read_lookaside;
  std::function<Status(const std::string& manifest_digest, const std::vector<Signature>&)>
      write_lookaside;
};

// Signatures: the lookaside's, then the attachment's (containers/image's order).
std::unique_ptr<ImageSource> NewDockerSource(DockerReference ref, std::shared_ptr<Registry> client,
                                             DockerSignatureStorage signatures = {});

// The top-level manifest is written under the reference's tag (or digest) last: until then the
// registry has blobs but no tag. Sigstore signatures are added to the attachment, simple
// signatures written to the lookaside.
std::unique_ptr<ImageDestination> NewDockerDestination(DockerReference ref,
                                                       std::shared_ptr<Registry> client,
                                                       DockerSignatureStorage signatures = {});

// The sigstore signatures in the attachment of `manifest_digest` in `repo`; none when there is
// no attachment.
Result<std::vector<Signature>> ReadSigstoreAttachment(Registry& client, const std::string& repo,
                                                      const std::string& manifest_digest);

// Adds `sigs` (sigstore) to the attachment of `manifest_digest` in `repo`, uploading the new
// payloads and config and then the attachment manifest; nothing when each is there already.
Status WriteSigstoreAttachment(Registry& client, const std::string& repo,
                               const std::string& manifest_digest,
                               const std::vector<Signature>& sigs);

}  // namespace regfs
