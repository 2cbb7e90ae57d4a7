// The docker:// transport: images in a registry, through a RegistryClient.
#pragma once

#include <memory>

#include "transports/image_destination.h"
#include "transports/image_source.h"
#include "transports/registry_client.h"

namespace regfs {

std::unique_ptr<ImageSource> NewDockerSource(DockerReference ref,
                                             std::shared_ptr<RegistryClient> client);

// The top-level manifest is written under the reference's tag (or digest) last: until then the
// registry has blobs but no tag.
std::unique_ptr<ImageDestination> NewDockerDestination(DockerReference ref,
                                                       std::shared_ptr<RegistryClient> client);

}  // namespace regfs
