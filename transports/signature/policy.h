// containers-policy.json(5): which images a copy, a verify or the mount accepts.
//
// Parsed as strictly as containers/image parses it (an unknown field, a missing required one
// or a wrong type is an error naming it). Requirements are looked up for an image most specific
// scope first within its transport ("docker", "dir", "oci"), then the transport's "" scope, then
// `default`; every requirement of the list must accept the image. signedBy (GPG) and
// sigstoreSigned (keys) requirements accept an image when at least one of its signatures
// verifies, covers its manifest digest and passes the signedIdentity rule. Fulcio, Rekor and PKI
// requirements are refused at parse time as not supported (ENOTSUP); signedBy keyTypes other
// than GPGKeys and signedBaseLayer parse, as in containers/image, and refuse every image.
// Key files are read at evaluation, relative keyPaths against the policy file's directory.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/types/image_reference.h"
#include "transports/types/signature.h"
#include "transports/util/result.h"

namespace regfs {

class Policy {
 public:
  ~Policy();
  Policy(Policy&&) noexcept;
  Policy& operator=(Policy&&) noexcept;

  // `base_dir`, when not empty, resolves relative keyPaths; Load() passes none, so that they
  // are relative to the working directory, as in containers/image.
  static Result<Policy> Parse(std::string_view json, const std::string& base_dir);
  // --policy FILE (`path`; empty for the default), else $HOME/.config/containers/policy.json when
  // it exists, else /etc/containers/policy.json; a missing default file is an error, as in skopeo.
  static Result<Policy> Load(const std::string& path);
  // --insecure-policy: accepts anything.
  static Policy InsecureAcceptAnything();

  struct Impl;
  explicit Policy(std::unique_ptr<Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// An image as the policy sees it.
struct PolicyImage {
  // The transport and the image's policy identity in it: for docker the reference with its tag
  // or digest ("host/repo:tag"); dir: the absolute path with symlinks resolved; oci: the
  // resolved directory (the reference inside it is not part of the identity).
  ImageReference ref;
  std::string manifest;  // the manifest bytes the signatures are checked against
  std::vector<Signature> signatures;
};

struct SignatureVerdict {
  bool accepted = false;
  std::string reason;  // why not, or what accepted it ("sigstore key /etc/keys/a.pub")
};

struct PolicyVerdict {
  bool accepted = false;
  // The first requirement that refused, with its reason ("no signature verified: …").
  std::string reason;
  // What accepted the image: "insecureAcceptAnything", or each key that verified a signature.
  std::string accepted_by;
  // One per signature, in order, for `regfs verify` (filled when a requirement looked at them).
  std::vector<SignatureVerdict> signatures;
};

PolicyVerdict EvaluatePolicy(const Policy& policy, const PolicyImage& image);

// A signedIdentity rule: which docker references a signature may claim for an image.
struct SignedIdentityRule {
  enum class Kind {
    kMatchExact,
    kMatchRepoDigestOrExact,
    kMatchRepository,
    kExactReference,
    kExactRepository,
    kRemapIdentity,
  };
  Kind kind = Kind::kMatchRepoDigestOrExact;
  std::string docker_reference;   // kExactReference
  std::string docker_repository;  // kExactRepository
  std::string prefix;             // kRemapIdentity
  std::string signed_prefix;      // kRemapIdentity

  // A signedIdentity JSON object, validated as containers/image validates it.
  static Result<SignedIdentityRule> Parse(std::string_view json);
  // The JSON "type" of the rule ("matchRepository").
  std::string Name() const;
  // Whether a signature claiming `signed_reference` is acceptable for `image`. The match*
  // and remapIdentity rules need the image's docker reference, which dir: and oci: images
  // don't have: they never match there.
  bool Matches(const ImageReference& image, std::string_view signed_reference) const;
};

// The scopes of `ref` in its transport's section, most specific first, without the "" scope:
// docker "host/repo:tag" (or "@digest"), "host/repo", its parent namespaces, "host", then
// "*.domain" wildcards; dir: the resolved path and its parents; oci: the path and its parents
// (not ":ref"). A relative path is made absolute and symlinks are resolved.
std::vector<std::string> PolicyScopes(const ImageReference& ref);

// The transport name of `ref` in policy.json ("docker", "dir", "oci").
std::string PolicyTransportName(const ImageReference& ref);

// Which section of `policy` applies to `ref`: `transports.NAME["SCOPE"]` or `default`.
std::string PolicyScopeFor(const Policy& policy, const ImageReference& ref);

// The file Load("") reads: $HOME/.config/containers/policy.json when it exists, else
// /etc/containers/policy.json when that exists; ENOENT naming both otherwise.
Result<std::string> DefaultPolicyPath();

// True when the requirements for `ref` look at signatures (so a caller can skip fetching them).
bool PolicyNeedsSignatures(const Policy& policy, const ImageReference& ref);

}  // namespace regfs
