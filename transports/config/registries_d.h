// containers-registries.d(5): where signatures of docker images are stored.
//
// Every *.yaml file of the directory is read (two files naming the same scope is an error, as
// in containers/image); `default-docker` applies where no `docker` scope matches, and the most
// specific scope wins: "host/ns/repo", then "host/ns", then "host", then "*.domain" wildcards.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/types/image_reference.h"
#include "transports/util/result.h"

namespace regfs {

struct SignatureStorage {
  std::string lookaside;          // URL (file://, http://, https://) signatures are read from
  std::string lookaside_staging;  // URL signatures are written to; empty: `lookaside`
  // Where signatures are written: lookaside_staging, else lookaside.
  const std::string& WriteUrl() const {
    return lookaside_staging.empty() ? lookaside : lookaside_staging;
  }
  // Whether sigstore attachments are read and written; unset: regfs reads and writes them.
  std::optional<bool> use_sigstore_attachments;
};

class RegistriesD {
 public:
  // `dir` empty: $HOME/.config/containers/registries.d when it exists, else
  // /etc/containers/registries.d. A missing directory is an empty configuration.
  static Result<RegistriesD> Load(const std::string& dir);

  // Adds the configuration of one file (`origin` names it in messages). EINVAL for YAML that
  // does not parse or has the wrong shape, and for a `default-docker` or `docker` scope that
  // an earlier file defined already.
  Status Merge(std::string_view yaml, const std::string& origin);

  // The configuration for `ref`: the most specific scope's, each key falling back as
  // containers/image does. `lookaside` is the first read location configured along the
  // scopes (lookaside, then the legacy sigstore key), `lookaside_staging` the first write
  // location (lookaside-staging, sigstore-staging, lookaside, sigstore), left empty when it is
  // `lookaside`. With nothing configured, both default to containers/image's built-in
  // directory: file://$HOME/.local/share/containers/sigstore, or for root
  // file:///var/lib/containers/sigstore.
  SignatureStorage For(const DockerReference& ref) const;

 private:
  // One scope as written (the legacy keys kept apart, to resolve as containers/image does).
  struct Namespace {
    std::string lookaside, lookaside_staging, sigstore, sigstore_staging;
    std::optional<bool> use_sigstore_attachments;
    std::string TopLevel(bool write) const;
  };
  // The scopes that apply to `ref`, most specific first, default-docker last.
  std::vector<const Namespace*> Scopes(const DockerReference& ref) const;

  std::optional<Namespace> default_docker_;
  std::string default_docker_from_;
  std::map<std::string, Namespace> docker_;
  std::map<std::string, std::string> docker_from_;
};

// The scope names containers/image tries for `ref`, most specific first: its identity
// ("host/repo:tag" or "host/repo@digest"), then "host/repo", its parent namespaces, "host",
// and "*.domain" wildcards of the host without its port.
std::vector<std::string> RegistriesDScopes(const DockerReference& ref);

// The URL of signature `index` (from 0) of `manifest_digest` below the lookaside `base`, in
// containers/image's layout: BASE/<repository path>@sha256=<hex>/signature-<index+1>.
std::string LookasideSignatureUrl(const std::string& base, const DockerReference& ref,
                                  const std::string& manifest_digest, size_t index);

}  // namespace regfs
