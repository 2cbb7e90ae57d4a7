// Opening image sources and destinations from parsed references, whatever their transport.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "transports/docker/registry_client.h"
#include "transports/registry/registry.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_reference.h"
#include "transports/types/image_source.h"

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

// The registries of a mount, as the commands open theirs: one client per host with `options`
// (registries.conf, certs.d and credentials found as for `copy`), verification off for the
// hosts in `insecure`, over one HTTP client with `http`'s limits. With options.log unset and
// `debug`, requests are logged to the log the caller passes.
RegistryFactory NewRegistryFactory(RegistryOptions options, std::set<std::string> insecure,
                                   HttpClient::Options http, bool debug);

}  // namespace regfs
