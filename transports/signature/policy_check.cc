#include "transports/signature/policy_check.h"

#include <stdlib.h>

namespace regfs {

ImageReference PolicyReference(ImageReference ref) {
  if (ref.transport != Transport::kDocker) {
    if (char* real = realpath(ref.path.c_str(), nullptr)) {
      ref.path = real;
      free(real);
    }
  }
  return ref;
}

SourceCheck PolicyCheck(std::shared_ptr<const Policy> policy, ImageReference source) {
  source = PolicyReference(std::move(source));
  return [policy = std::move(policy), source = std::move(source)](
             const RawManifest& manifest, const std::vector<Signature>& sigs) -> Status {
    PolicyVerdict verdict = EvaluatePolicy(*policy, PolicyImage{source, manifest.bytes, sigs});
    if (verdict.accepted) return Ok();
    return MakeError(EACCES, verdict.reason);
  };
}

}  // namespace regfs
