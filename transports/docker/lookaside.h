// Lookaside signature storage (containers-registries.d(5)): signature-1, signature-2, … of a
// manifest below a base URL, in containers/image's layout (LookasideSignatureUrl).
#pragma once

#include <string>
#include <vector>

#include "transports/config/registries_d.h"
#include "transports/http/http_client.h"
#include "transports/types/image_reference.h"
#include "transports/types/signature.h"
#include "transports/util/result.h"

namespace regfs {

// More signatures than this for one manifest is taken as a broken server, not read on forever.
inline constexpr size_t kMaxLookasideSignatures = 1024;

// Reads the signatures of `manifest_digest` below `base` (file://, http:// or https://, TLS
// verified), in order, stopping at the first one missing (ENOENT, or HTTP 404). Each is at
// most kMaxSignatureSize bytes (EFBIG) and must parse as a signature-N blob (EINVAL). Other
// HTTP statuses and transport failures are EIO; other schemes EOPNOTSUPP.
Result<std::vector<Signature>> ReadLookasideSignatures(HttpClient& http, const std::string& base,
                                                       const DockerReference& ref,
                                                       const std::string& manifest_digest);

// Writes `sigs` as signature-1…N of `manifest_digest` below the file:// `base` (directories
// made as needed, each file replaced atomically) and removes signature-N+1… left from an
// earlier, longer list, up to the first one missing, as containers/image does (which also
// leaves everything alone when `sigs` is empty). Other schemes: EOPNOTSUPP, since a lookaside
// is written through a local lookaside-staging directory.
Status WriteLookasideSignatures(const std::string& base, const DockerReference& ref,
                                const std::string& manifest_digest,
                                const std::vector<Signature>& sigs);

}  // namespace regfs
