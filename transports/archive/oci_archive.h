// The oci-archive: transport: a tar of an OCI image layout, as skopeo reads and writes it.
//
// Source: the tar is indexed once and blobs are read from it in place (pread; a compressed
// tar is read in streaming passes), never extracted. Destination: the layout is built in a
// temporary directory beside PATH (oci: destination code), then tarred to a temporary file
// beside PATH that is renamed into place on Commit(); a failed copy leaves neither.
#pragma once

#include <memory>
#include <string>

#include "transports/types/image_destination.h"
#include "transports/types/image_source.h"

namespace regfs {

// With an empty `ref`, the layout must hold exactly one image.
Result<std::unique_ptr<ImageSource>> NewOciArchiveSource(const std::string& path,
                                                         const std::string& ref);

// Replaces whatever is at `path` with a layout holding this one image, named `ref`.
Result<std::unique_ptr<ImageDestination>> NewOciArchiveDestination(const std::string& path,
                                                                   const std::string& ref);

}  // namespace regfs
