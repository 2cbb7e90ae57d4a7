// libFuzzer target: containers-policy.json(5) — Policy::Parse, then the questions the copy
// asks of it for a few images (which scope applies, whether signatures are needed) and, for
// policies whose keys are inline (keyData; keyPath files are not read here), the verdict on an
// unsigned image. Also signedIdentity objects alone (SignedIdentityRule::Parse) and their
// matching.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/signature/policy.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  static const char* kImages[] = {
      "docker://docker.io/library/busybox:latest",
      ("docker://127.0.0.1:5000/a/b@sha256:"
       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
      "dir:/nonexistent/regfs-fuzz/dir",
      "oci:/nonexistent/regfs-fuzz/oci:ref",
  };
  if (auto rule = SignedIdentityRule::Parse(text); rule.ok()) {
    (void)rule->Name();
    for (const char* image : kImages) {
      auto ref = ParseImageReference(image);
      REGFS_FUZZ_CHECK(ref.ok());
      (void)rule->Matches(*ref, "docker.io/library/busybox:latest");
      (void)rule->Matches(*ref, "127.0.0.1:5000/a/b:1");
    }
  }
  auto policy = Policy::Parse(text, "/nonexistent/regfs-fuzz");
  if (!policy.ok()) return 0;
  bool reads_files = text.find("keyPath") != std::string_view::npos;
  for (const char* image : kImages) {
    auto ref = ParseImageReference(image);
    REGFS_FUZZ_CHECK(ref.ok());
    (void)PolicyScopeFor(*policy, *ref);
    (void)PolicyNeedsSignatures(*policy, *ref);
    if (reads_files) continue;
    PolicyImage img;
    img.ref = *ref;
    img.manifest = "{}";
    (void)EvaluatePolicy(*policy, img);
  }
  return 0;
}
