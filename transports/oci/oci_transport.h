// The oci: transport: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`), the
// image named by its `org.opencontainers.image.ref.name` annotation.
#pragma once

#include <memory>
#include <string>

#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

// With an empty `ref`, the layout must hold exactly one image.
Result<std::unique_ptr<ImageSource>> NewOciSource(const std::string& path, const std::string& ref);

// Manifests are stored as they are (digests preserved). Commit() writes index.json, replacing
// any entry with the same ref name; a layout directory created by a failed copy is removed.
Result<std::unique_ptr<ImageDestination>> NewOciDestination(const std::string& path,
                                                            const std::string& ref);

}  // namespace regfs
