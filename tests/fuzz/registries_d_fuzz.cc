// libFuzzer target: containers-registries.d(5) files (YAML) — RegistriesD::Merge of one or
// two files (the second may clash with the first), then the storage chosen for a few images
// and the lookaside URLs built from it.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/config/registries_d.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RegistriesD d;
  for (const fuzz::File& f : fuzz::SplitFiles(fuzz::AsText(data, size))) {
    (void)d.Merge(f.name + "\n" + f.content, "registries.d/fuzz.yaml");
  }
  static const char* kRefs[] = {
      "docker.io/library/busybox:latest",
      "example.com/ns/repo:1",
      "127.0.0.1:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  };
  for (const char* text : kRefs) {
    auto ref = ParseDockerReference(text);
    REGFS_FUZZ_CHECK(ref.ok());
    SignatureStorage s = d.For(*ref);
    (void)LookasideSignatureUrl(
        s.lookaside, *ref,
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0);
  }
  return 0;
}
