// Opening image sources and destinations from parsed references, whatever their transport.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "transports/image_destination.h"
#include "transports/image_reference.h"
#include "transports/image_source.h"
#include "transports/registry_client.h"

namespace regfs {

// The registry clients of one command. A source and a destination on one registry, used with
// the same settings, share a client: one ping, one token cache, one set of connections.
class RegistryClients {
 public:
  explicit RegistryClients(std::shared_ptr<HttpClient> http) : http_(std::move(http)) {}
  std::shared_ptr<RegistryClient> Get(const std::string& registry, const RegistryOptions& options);

 private:
  const std::shared_ptr<HttpClient> http_;
  std::map<std::string, std::shared_ptr<RegistryClient>> clients_;
};

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageReference& ref,
                                                     const RegistryOptions& options,
                                                     RegistryClients& clients);

Result<std::unique_ptr<ImageDestination>> OpenImageDestination(const ImageReference& ref,
                                                               const RegistryOptions& options,
                                                               RegistryClients& clients);

}  // namespace regfs
