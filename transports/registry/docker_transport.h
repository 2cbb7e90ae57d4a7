// The docker:// transport: images in a registry, through any Registry (docker/'s client, or a
// test's registry that fails on purpose).
#pragma once

#include <memory>

#include "transports/registry/registry.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

std::unique_ptr<ImageSource> NewDockerSource(DockerReference ref, std::shared_ptr<Registry> client);

// The top-level manifest is written under the reference's tag (or digest) last: until then the
// registry has blobs but no tag.
std::unique_ptr<ImageDestination> NewDockerDestination(DockerReference ref,
                                                       std::shared_ptr<Registry> client);

}  // namespace regfs
