// libFuzzer target: image references as written on command lines, in sync and policy files,
// and in signatures and archives' RepoTags — ParseImageReference, ParseDockerReference,
// ParseDaemonReference. A reference that parses prints (String()) as one that parses again to
// the same thing.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/types/image_reference.h"

using namespace regfs;

namespace {

bool SameDocker(const DockerReference& a, const DockerReference& b) {
  return a.registry == b.registry && a.repository == b.repository && a.tag == b.tag &&
         a.digest == b.digest;
}

bool FirstComponentLooksLikeHost(const std::string& repository) {
  std::string first = repository.substr(0, repository.find('/'));
  return first.find_first_of(".:[") != std::string::npos || first == "localhost";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  if (auto d = ParseDockerReference(text); d.ok()) {
    REGFS_FUZZ_CHECK(IsValidRegistryHost(d->registry));
    REGFS_FUZZ_CHECK(d->digest.empty() || IsSha256Digest(d->digest));
    REGFS_FUZZ_CHECK(d->tag.empty() || IsValidTag(d->tag));
    auto again = ParseDockerReference(d->String());
    REGFS_FUZZ_CHECK(again.ok() && SameDocker(*d, *again));
    // The familiar form (docker.io names shortened) is the same reference too — unless the
    // repository's first component looks like a host ("docker.io/a.b/c" is "a.b/c", another
    // registry's), where the docker CLI's familiar names are ambiguous as well.
    if (!FirstComponentLooksLikeHost(d->repository)) {
      auto familiar = ParseDockerReference(FamiliarString(*d));
      REGFS_FUZZ_CHECK(familiar.ok() && SameDocker(*d, *familiar));
    }
    (void)IsLoopbackHost(d->registry);
  }
  if (auto r = ParseImageReference(text); r.ok()) {
    std::string printed = r->String();
    auto again = ParseImageReference(printed);
    REGFS_FUZZ_CHECK(again.ok() && again->String() == printed);
  }
  if (auto r = ParseDaemonReference(text);
      r.ok() && !FirstComponentLooksLikeHost(r->docker.repository)) {
    std::string printed = r->String();
    auto again = ParseImageReference(printed);
    REGFS_FUZZ_CHECK(again.ok() && again->String() == printed);
  }
  (void)IsValidRegistryHost(text);
  (void)IsValidRepositoryComponent(text);
  (void)IsValidTag(text);
  return 0;
}
