// The signature policy as the copy pipeline asks it (CopyOptions::accept_source).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "transports/manifest/manifest.h"
#include "transports/signature/policy.h"
#include "transports/types/signature.h"
#include "transports/util/result.h"

namespace regfs {

using SourceCheck =
    std::function<Status(const RawManifest& manifest, const std::vector<Signature>& sigs)>;

// Accepts what `policy` accepts of images read from `source`; EACCES with the policy's reason
// otherwise.
SourceCheck PolicyCheck(std::shared_ptr<const Policy> policy, ImageReference source);

// The policy's name of a reference: a dir: or oci: path made absolute with symlinks resolved,
// as containers/image names them in policy scopes.
ImageReference PolicyReference(ImageReference ref);

}  // namespace regfs
