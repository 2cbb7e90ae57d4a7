// Opening image sources and destinations from parsed references, whatever their transport.
#pragma once

#include <memory>

#include "transports/image_destination.h"
#include "transports/image_reference.h"
#include "transports/image_source.h"
#include "transports/registry_client.h"

namespace regfs {

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageReference& ref,
                                                     const RegistryOptions& options,
                                                     std::shared_ptr<HttpClient> http);

Result<std::unique_ptr<ImageDestination>> OpenImageDestination(const ImageReference& ref,
                                                               const RegistryOptions& options,
                                                               std::shared_ptr<HttpClient> http);

}  // namespace regfs
