#include "transports/transports.h"

#include "transports/dir_transport.h"
#include "transports/docker_transport.h"
#include "transports/oci_transport.h"

namespace regfs {

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageReference& ref,
                                                     const RegistryOptions& options,
                                                     std::shared_ptr<HttpClient> http) {
  switch (ref.transport) {
    case Transport::kDocker:
      return NewDockerSource(ref.docker, std::make_shared<RegistryClient>(
                                             ref.docker.registry, options, std::move(http)));
    case Transport::kDir:
      return NewDirSource(ref.path);
    case Transport::kOci:
      return NewOciSource(ref.path, ref.oci_ref);
  }
  return MakeError(EINVAL, "unknown transport");
}

Result<std::unique_ptr<ImageDestination>> OpenImageDestination(const ImageReference& ref,
                                                               const RegistryOptions& options,
                                                               std::shared_ptr<HttpClient> http) {
  switch (ref.transport) {
    case Transport::kDocker:
      return NewDockerDestination(ref.docker, std::make_shared<RegistryClient>(
                                                  ref.docker.registry, options, std::move(http)));
    case Transport::kDir:
      return NewDirDestination(ref.path);
    case Transport::kOci:
      return NewOciDestination(ref.path, ref.oci_ref);
  }
  return MakeError(EINVAL, "unknown transport");
}

}  // namespace regfs
