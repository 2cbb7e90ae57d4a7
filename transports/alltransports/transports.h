// Opening image sources and destinations from parsed references, whatever their transport.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "transports/docker/registry_client.h"
#include "transports/registry/registry.h"
#include "transports/types/image_destination.h"
#include "transports/types/image_reference.h"
#include "transports/types/image_source.h"

namespace regfs {

// The registry clients of one command, or of a mount. A source and a destination on one
// registry, used with the same settings, share a client: one ping, one token cache, one set of
// connections. Thread-safe.
class RegistryClients {
 public:
  explicit RegistryClients(std::shared_ptr<HttpClient> http) : http_(std::move(http)) {}
  // The client of `registry` itself, never of a mirror: the one OpenImageSource uses for a
  // pull that is not redirected, and the one to list tags with, as skopeo lists them.
  std::shared_ptr<RegistryClient> Get(const std::string& registry, const RegistryOptions& options);
  const std::shared_ptr<HttpClient>& http() const { return http_; }

 private:
  const std::shared_ptr<HttpClient> http_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RegistryClient>> clients_;  // guarded by mu_
};

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageReference& ref,
                                                     const RegistryOptions& options,
                                                     RegistryClients& clients);

Result<std::unique_ptr<ImageDestination>> OpenImageDestination(const ImageReference& ref,
                                                               const RegistryOptions& options,
                                                               RegistryClients& clients);

// The digest of the top-level manifest at `ref` now, found cheaply and changing nothing (a
// HEAD; a dir:'s manifest.json, which regfs and skopeo write last); nullopt when nothing is
// there. oci: layouts are not looked into (nullopt); an archive is (the manifest its source
// gives, synthesized for a docker-archive: as containers/image synthesizes it).
Result<std::optional<std::string>> DigestAt(const ImageReference& ref,
                                            const RegistryOptions& options,
                                            RegistryClients& clients);

// The registries of a mount, as the commands open theirs: one client per host with `options`
// (registries.conf, certs.d and credentials found as for `copy`), verification off for the
// hosts in `insecure`, over one HTTP client with `http`'s limits; reads through registries.conf
// mirrors (docker/mirrored_registry.h), writes to the host. A host blocked in registries.conf
// is an EACCES error. With options.log unset and `debug`, requests are logged to the log the
// caller passes.
RegistryFactory NewRegistryFactory(RegistryOptions options, std::set<std::string> insecure,
                                   HttpClient::Options http, bool debug);

}  // namespace regfs
