// containers-registries.conf(5): the [[registry]] entries regfs honours — `prefix`, `location`,
// `insecure`, `blocked`, `mirror-by-digest-only` and `[[registry.mirror]]` (`location`,
// `insecure`, `pull-from-mirror`), written as tables or inline tables alike. Files are TOML
// 1.0, read with toml11. Other keys of the format (unqualified-search-registries, aliases,
// credential-helpers, the v1 [registries.*] tables, …) are read past; a file that is not valid
// TOML, or whose [[registry]] keys have the wrong types, is an error naming it and the line.
//
// Files, as the containers tools read them: $CONTAINERS_REGISTRIES_CONF if set, else
// ~/.config/containers/registries.conf if it exists, else /etc/containers/registries.conf;
// then the drop-ins *.conf of /etc/containers/registries.conf.d and
// ~/.config/containers/registries.conf.d, each directory in name order. An entry with the
// prefix of an earlier one replaces it.
//
// A loaded RegistriesConf is immutable and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transports/types/image_reference.h"
#include "transports/util/result.h"

namespace regfs {

struct RegistryMirror {
  std::string location;  // "host[:port][/namespace]"
  bool insecure = false;
  std::string pull_from_mirror;  // "", "all", "digest-only" or "tag-only"
};

struct RegistryEntry {
  std::string prefix;    // "host[:port][/namespace]" or "*.domain"; defaults to location
  std::string location;  // may be empty for a wildcard prefix
  bool insecure = false;
  bool blocked = false;
  bool mirror_by_digest_only = false;
  std::vector<RegistryMirror> mirrors;
};

// One place to try when pulling: a rewritten reference and how to reach its registry.
struct PullSource {
  DockerReference ref;
  bool insecure = false;
  bool mirror = false;
};

class RegistriesConf {
 public:
  // Adds the [[registry]] entries of one file's text; `origin` names it in errors.
  Status Merge(std::string_view text, const std::string& origin);

  const std::vector<RegistryEntry>& entries() const { return entries_; }

  // The entry with the longest prefix matching `name` ("host", "host/ns" or "host/ns/repo"),
  // or nullptr.
  const RegistryEntry* Find(std::string_view name) const;

  // True when `registry` (a host[:port]) is an insecure registry or mirror location.
  bool IsInsecure(std::string_view registry) const;

  // Where to pull `ref` from, in order: the mirrors (as pull-from-mirror and
  // mirror-by-digest-only allow), then the primary location. Without a matching entry, just
  // `ref`. EACCES when the matching entry is blocked.
  Result<std::vector<PullSource>> PullSources(const DockerReference& ref) const;

  // EACCES when the entry for `name` — a host[:port], as containers/image checks every client
  // it makes, or host/repository, as it checks every image it opens — is blocked.
  Status CheckNotBlocked(std::string_view name) const;

 private:
  std::vector<RegistryEntry> entries_;
};

// The files read, in order (those that exist are read; a missing one is skipped).
std::vector<std::string> RegistriesConfPaths();

// Loads every file of RegistriesConfPaths().
Result<std::shared_ptr<const RegistriesConf>> LoadRegistriesConf();

}  // namespace regfs
