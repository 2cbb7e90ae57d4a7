// libFuzzer target: WWW-Authenticate header values from a registry's 401 —
// ParseWwwAuthenticate, as RegistryClient calls it. Schemes and parameter names come out
// lowercase.
#include <cctype>
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/docker/www_authenticate.h"

using namespace regfs;

namespace {

bool Lowercase(const std::string& s) {
  for (unsigned char c : s) {
    if (std::isupper(c)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const Challenge& c : ParseWwwAuthenticate(fuzz::AsText(data, size))) {
    REGFS_FUZZ_CHECK(!c.scheme.empty() && Lowercase(c.scheme));
    for (const auto& [name, value] : c.params) REGFS_FUZZ_CHECK(Lowercase(name));
  }
  return 0;
}
