// libFuzzer target: `regfs sync --src yaml` files — ParseSyncYaml, then the tag selectors
// built from each repository (regexes, semver constraints) applied to a few tags, as sync
// does with a registry's tag list.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/sync/sync_config.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = ParseSyncYaml(fuzz::AsText(data, size));
  if (!config.ok()) return 0;
  static const std::string kTags[] = {"latest", "1.2.3", "v3.12.0-rc1", "sha256-abc.sig"};
  for (const SyncRegistry& r : config->registries) {
    for (const SyncRepository& repo : r.repositories) {
      auto selector = TagSelector::For(repo);
      if (!selector.ok()) continue;
      for (const std::string& tag : kTags) (void)selector->Selects(tag);
    }
  }
  return 0;
}
