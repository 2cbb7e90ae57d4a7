#include "transports/alltransports/transports.h"

#include "transports/archive/docker_archive.h"
#include "transports/archive/oci_archive.h"
#include "transports/daemon/daemon_transport.h"
#include "transports/dir/dir_transport.h"
#include "transports/docker/lookaside.h"
#include "transports/docker/mirrored_registry.h"
#include "transports/docker/mirrored_source.h"
#include "transports/oci/oci_transport.h"
#include "transports/registry/docker_transport.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

// The client of one place a pull of an image on `origin` (a host) may come from. --creds name
// the origin's account: a mirror on another host must not see them. (Its `insecure` comes from
// registries.conf in RegistryClient, unless --tls-verify was given.)
std::shared_ptr<RegistryClient> PullClient(const PullSource& place, const std::string& origin,
                                           RegistryOptions options, RegistryClients& clients) {
  if (place.ref.registry != origin) options.creds.reset();
  return clients.Get(place.ref.registry, options);
}

// Where registries.d says the signatures of `ref` are. Lookaside reads go through `http`, with
// the system's trust roots (the lookaside is a plain web server, not the registry).
DockerSignatureStorage SignatureStorageFor(const DockerReference& ref,
                                           const RegistryOptions& options,
                                           const std::shared_ptr<HttpClient>& http) {
  DockerSignatureStorage storage;
  if (!options.registries_d) return storage;
  const SignatureStorage config = options.registries_d->For(ref);
  storage.attachments = config.use_sigstore_attachments.value_or(true);
  if (!config.lookaside.empty()) {
    storage.read_lookaside = [http, base = config.lookaside, ref](const std::string& digest) {
      return ReadLookasideSignatures(*http, base, ref, digest);
    };
  }
  const std::string& write_base =
      config.lookaside_staging.empty() ? config.lookaside : config.lookaside_staging;
  if (!write_base.empty()) {
    storage.write_lookaside = [base = write_base, ref](const std::string& digest,
                                                       const std::vector<Signature>& sigs) {
      return WriteLookasideSignatures(base, ref, digest, sigs);
    };
  }
  return storage;
}

// A registry image, read through the registries.conf mirrors of its entry (if any) before its
// origin.
Result<std::unique_ptr<ImageSource>> OpenDockerSource(const DockerReference& ref,
                                                      const RegistryOptions& options,
                                                      RegistryClients& clients) {
  std::vector<PullSource> places = {PullSource{ref, false, false}};
  if (options.registries_conf) {
    ASSIGN_OR_RETURN(places, options.registries_conf->PullSources(ref));
  }
  // Attachments are read where the image is read from; the lookaside is the origin's.
  const DockerSignatureStorage storage = SignatureStorageFor(ref, options, clients.http());
  std::vector<std::unique_ptr<ImageSource>> candidates;
  for (const PullSource& place : places) {
    candidates.push_back(
        NewDockerSource(place.ref, PullClient(place, ref.registry, options, clients), storage));
  }
  if (candidates.size() == 1) return std::move(candidates.front());
  return NewMirroredSource(std::move(candidates), options.log);
}

// The Docker engine of a docker-daemon: reference: --daemon-host, else $DOCKER_HOST, else the
// default socket; spoken to through the command's HTTP client.
Result<std::shared_ptr<DaemonClient>> DaemonClientFor(const RegistryOptions& options,
                                                      RegistryClients& clients) {
  ASSIGN_OR_RETURN(DaemonHost host, ParseDaemonHost(DaemonHostFrom(options.daemon_host)));
  return std::make_shared<DaemonClient>(std::move(host), clients.http(), options.tls_verify);
}

}  // namespace

std::shared_ptr<RegistryClient> RegistryClients::Get(const std::string& registry,
                                                     const RegistryOptions& o) {
  // Everything that changes how the client talks to the registry is in the key.
  std::string key = registry + '\0' + (o.tls_verify ? "v" : "-") + (o.tls_verify_set ? "s" : "-") +
                    '\0' + o.cert_dir + '\0' + o.authfile + '\0' + std::to_string(o.retry_times) +
                    '\0' + std::to_string(o.blob_retry_seconds) + '\0' +
                    std::to_string(o.max_requests) + (o.no_creds ? "n" : "-") + '\0' +
                    o.registry_token;
  if (o.creds) key += '\0' + o.creds->username + '\0' + o.creds->password;
  std::lock_guard<std::mutex> lock(mu_);
  auto& client = clients_[key];
  if (!client) client = std::make_shared<RegistryClient>(registry, o, http_);
  return client;
}

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageReference& ref,
                                                     const RegistryOptions& options,
                                                     RegistryClients& clients) {
  switch (ref.transport) {
    case Transport::kDocker:
      return OpenDockerSource(ref.docker, options, clients);
    case Transport::kDir:
      return NewDirSource(ref.path);
    case Transport::kOci:
      return NewOciSource(ref.path, ref.oci_ref);
    case Transport::kOciArchive:
      return NewOciArchiveSource(ref.path, ref.oci_ref);
    case Transport::kDockerArchive:
      return NewDockerArchiveSource(ref.path, ref.archive_tag ? ref.archive_tag->String() : "",
                                    ref.archive_index);
    case Transport::kDockerDaemon: {
      ASSIGN_OR_RETURN(std::shared_ptr<DaemonClient> engine, DaemonClientFor(options, clients));
      return NewDaemonSource(ref, std::move(engine));
    }
  }
  return MakeError(EINVAL, "unknown transport");
}

Result<std::unique_ptr<ImageDestination>> OpenImageDestination(const ImageReference& ref,
                                                               const RegistryOptions& options,
                                                               RegistryClients& clients) {
  switch (ref.transport) {
    case Transport::kDocker:
      // Pushes go to the origin, never to a mirror.
      if (options.registries_conf)
        RETURN_IF_ERROR(options.registries_conf->CheckNotBlocked(ref.docker.Name()));
      return NewDockerDestination(ref.docker, clients.Get(ref.docker.registry, options),
                                  SignatureStorageFor(ref.docker, options, clients.http()));
    case Transport::kDir:
      return NewDirDestination(ref.path);
    case Transport::kOci:
      return NewOciDestination(ref.path, ref.oci_ref);
    case Transport::kOciArchive:
      return NewOciArchiveDestination(ref.path, ref.oci_ref);
    case Transport::kDockerArchive:
      if (ref.archive_index >= 0) {
        return MakeError(EINVAL, "destination reference " + ref.String() +
                                     " must not contain a manifest index @" +
                                     std::to_string(ref.archive_index));
      }
      return NewDockerArchiveFileDestination(ref.path, ref.archive_tag);
    case Transport::kDockerDaemon: {
      ASSIGN_OR_RETURN(std::shared_ptr<DaemonClient> engine, DaemonClientFor(options, clients));
      return NewDaemonDestination(ref, std::move(engine));
    }
  }
  return MakeError(EINVAL, "unknown transport");
}

Result<std::optional<std::string>> DigestAt(const ImageReference& ref,
                                            const RegistryOptions& options,
                                            RegistryClients& clients) {
  switch (ref.transport) {
    case Transport::kDocker: {
      if (options.registries_conf)
        RETURN_IF_ERROR(options.registries_conf->CheckNotBlocked(ref.docker.Name()));
      auto digest = clients.Get(ref.docker.registry, options)
                        ->ResolveDigest(ref.docker.repository, ref.docker.ManifestRef());
      if (!digest.ok() && digest.error().errnum == ENOENT) return std::optional<std::string>();
      if (!digest.ok()) return digest.error();
      return std::optional<std::string>(*digest);
    }
    case Transport::kDir: {
      std::string file = ref.path + "/manifest.json";
      if (!PathExists(file)) return std::optional<std::string>();
      ASSIGN_OR_RETURN(std::string bytes, ReadFileBounded(file, kMaxManifestSize));
      return std::optional<std::string>(DigestOf(bytes));
    }
    case Transport::kOci:
    case Transport::kDockerDaemon:
      break;
    case Transport::kOciArchive:
    case Transport::kDockerArchive: {
      // An archive is only read, so what is there is what opening it as a source finds.
      if (!PathExists(ref.path)) return std::optional<std::string>();
      ASSIGN_OR_RETURN(std::unique_ptr<ImageSource> src, OpenImageSource(ref, options, clients));
      ASSIGN_OR_RETURN(std::string digest, src->ManifestDigest());
      return std::optional<std::string>(digest);
    }
  }
  return std::optional<std::string>();
}

RegistryFactory NewRegistryFactory(RegistryOptions options, std::set<std::string> insecure,
                                   HttpClient::Options http, bool debug) {
  // One set of clients for the mount: a mirror's client serves its host's own directory too.
  auto clients = std::make_shared<RegistryClients>(std::make_shared<HttpClient>(http));
  return [options = std::move(options), insecure = std::move(insecure), clients, debug](
             const std::string& host, const LogFn& log) -> Result<std::shared_ptr<Registry>> {
    RegistryOptions o = options;
    if (debug && !o.log) o.log = log;
    if (!o.registries_conf) {
      auto conf = LoadRegistriesConf();
      if (!conf.ok()) return conf.error();
      o.registries_conf = *conf;
    }
    // As containers/image makes no client for a blocked host, nothing under it is reachable.
    RETURN_IF_ERROR(o.registries_conf->CheckNotBlocked(host));
    // The mount's insecure=HOST is --tls-verify=false for that host, wherever it is used.
    auto options_for = [o, insecure](const std::string& h) {
      RegistryOptions for_host = o;
      if (insecure.count(h)) {
        for_host.tls_verify = false;
        for_host.tls_verify_set = true;
      }
      return for_host;
    };
    return NewMirroredRegistry(
        clients->Get(host, options_for(host)), o.registries_conf,
        [host, options_for, clients](const PullSource& place) -> std::shared_ptr<Registry> {
          return PullClient(place, host, options_for(place.ref.registry), *clients);
        },
        o.log);
  };
}

}  // namespace regfs
