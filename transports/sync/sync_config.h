// The YAML source file of `regfs sync --src yaml`, skopeo sync's format: a map from registry
// name to what to copy from it.
//
//   registry.example.com:
//     images:                      # repository -> tags and "sha256:…" digests; [] is every tag
//       busybox: []
//       redis: ["1.0", "2.0", "sha256:0123…"]
//     images-by-tag-regex:         # repository -> regex, searched unanchored in each tag
//       nginx: ^1\.13\.[12]-alpine-perl$
//     images-by-semver:            # repository -> Masterminds semver constraint (semver.h)
//       alpine: ">= 3.12.0"
//     credentials: {username: john, password: secret}
//     tls-verify: true             # absent: the command line's setting stands
//     cert-dir: /home/john/certs
//
// As skopeo (yaml.v3, not strict) does, unknown keys are ignored; each one gives a warning.
// A registry name is a host[:port], optionally followed by /namespace components that prefix
// its repositories (skopeo joins the two with a "/").
//
// regfs extensions, at registry level (defaults for each of its repositories that does not
// set the same key itself, even to []) and per repository:
//   include: [REGEX, …]     a tag must match one of them, if any is given (anchored: the whole
//                           tag must match)
//   exclude: [REGEX, …]     a tag must match none of them (anchored)
//   platforms: [os/arch[/variant], …]   the instances of multi-platform images to copy
// and per repository only:
//   target: NEW/REPO/NAME   the destination repository instead of the default naming
// A repository takes them by being a mapping instead of a list or a string:
//   images:              busybox: {tags: ["1.0"], include: […], exclude: […], platforms: […],
//                                  target: mirror/busybox}    # tags absent or []: every tag
//   images-by-tag-regex: nginx: {regex: "^1\\.13", …}
//   images-by-semver:    alpine: {semver: ">= 3.12", …}
//
// All patterns are RE2 regular expressions, the syntax of Go's regexp that skopeo uses; RE2
// matches in time linear in the tag, whatever the pattern.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/manifest/manifest.h"
#include "transports/sync/semver.h"
#include "transports/util/result.h"

namespace re2 {
class RE2;
}

namespace regfs {

struct SyncCredentials {
  std::string username, password;
  bool operator==(const SyncCredentials&) const = default;
};

struct SyncRepository {
  enum class Kind { kRefs, kAllTags, kTagRegex, kSemver };
  Kind kind = Kind::kAllTags;
  std::string name;               // "coreos/etcd", as written
  std::vector<std::string> refs;  // kRefs: tags and "sha256:…" digests, in file order, no repeats
  std::string tag_regex;          // kTagRegex
  std::string semver;             // kSemver
  // After applying the registry's defaults.
  std::vector<std::string> include, exclude;
  std::vector<std::string> platforms;  // "linux/arm64/v8"
  std::string target;                  // empty: the default naming
  bool operator==(const SyncRepository&) const = default;
};

struct SyncRegistry {
  std::string name;  // "registry.example.com", "127.0.0.1:5000"
  // `images` sorted by name, then `images-by-tag-regex` sorted, then `images-by-semver` sorted.
  std::vector<SyncRepository> repositories;
  std::optional<SyncCredentials> credentials;  // only when username or password is set
  std::optional<bool> tls_verify;
  std::string cert_dir;
  bool operator==(const SyncRegistry&) const = default;
};

struct SyncConfig {
  std::vector<SyncRegistry> registries;  // sorted by name
  std::vector<std::string> warnings;     // one per unknown key, naming where it is
};

// EINVAL naming the registry, repository and key on bad input: not YAML, wrong types, a bad
// registry or repository name, tag or digest, regex, semver constraint or platform.
Result<SyncConfig> ParseSyncYaml(std::string_view text);

// Reads and parses a file of at most 16 MiB; errors name the path.
Result<SyncConfig> LoadSyncYaml(const std::string& path);

// Which tags of a repository are to be copied: kAllTags every one, kTagRegex those in which
// the regex is found, kSemver those that are versions satisfying the constraint (other tags
// never), kRefs the tags listed (digests are no tags); then only those that pass include and
// exclude (anchored). For command-line filters alone, use a kAllTags SyncRepository with
// include and exclude set.
class TagSelector {
 public:
  static Result<TagSelector> For(const SyncRepository& repo);

  bool Selects(const std::string& tag) const;

 private:
  SyncRepository::Kind kind_ = SyncRepository::Kind::kAllTags;
  std::vector<std::string> refs_;
  std::shared_ptr<const re2::RE2> tag_regex_;
  std::optional<SemverConstraint> semver_;
  std::vector<std::shared_ptr<const re2::RE2>> include_, exclude_;
};

}  // namespace regfs
