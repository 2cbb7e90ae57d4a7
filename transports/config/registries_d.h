// containers-registries.d(5): where signatures of docker images are stored.
//
// Every *.yaml file of the directory is read (two files naming the same scope is an error, as
// in containers/image); `default-docker` applies where no `docker` scope matches, and the most
// specific scope wins: "host/ns/repo", then "host/ns", then "host", then "*.domain" wildcards.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "transports/types/image_reference.h"
#include "transports/util/result.h"

namespace regfs {

struct SignatureStorage {
  std::string lookaside;          // URL (file://, http://, https://) signatures are read from
  std::string lookaside_staging;  // URL signatures are written to; empty: `lookaside`
  // Whether sigstore attachments are read and written; unset: regfs reads and writes them.
  std::optional<bool> use_sigstore_attachments;
};

class RegistriesD {
 public:
  // `dir` empty: $HOME/.config/containers/registries.d when it exists, else
  // /etc/containers/registries.d. A missing directory is an empty configuration.
  static Result<RegistriesD> Load(const std::string& dir);

  // The configuration for `ref`: the most specific scope's, each key falling back as
  // containers/image does.
  SignatureStorage For(const DockerReference& ref) const;

 private:
  std::optional<SignatureStorage> default_docker_;
  std::map<std::string, SignatureStorage> docker_;
};

// The URL of signature `index` (from 0) of `manifest_digest` below the lookaside `base`, in
// containers/image's layout: BASE/<repository path>@sha256=<hex>/signature-<index+1>.
std::string LookasideSignatureUrl(const std::string& base, const DockerReference& ref,
                                  const std::string& manifest_digest, size_t index);

}  // namespace regfs
