// libFuzzer target: containers-auth.json / Docker config.json / .dockercfg contents, and a
// credential helper's `get` output — LookupCredentialsIn and CredentialHelperIn for a few
// registries and repositories, as LookupCredentials calls them on each file of the search
// path, and CredentialHelperGet with the input as what the helper printed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "transports/config/auth_file.h"
#include "transports/config/credential_helper.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  static const std::pair<const char*, const char*> kImages[] = {
      {"docker.io", "library/busybox"},
      {"127.0.0.1:5000", "a/b/c"},
      {"[::1]:5000", "repo"},
      {"quay.io", "ns/repo"},
  };
  for (const auto& [registry, repository] : kImages) {
    (void)LookupCredentialsIn(text, registry, repository);
    (void)CredentialHelperIn(text, registry);
  }
  HelperRunner helper = [&](const std::string&, const std::string&,
                            const std::string&) -> Result<std::string> {
    return std::string(text);
  };
  (void)CredentialHelperGet(helper, "fuzz", "127.0.0.1:5000");
  return 0;
}
