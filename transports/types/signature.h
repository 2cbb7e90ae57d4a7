// Signatures of an image, as containers/image carries them between transports.
//
// Two formats: GPG simple signing (an opaque OpenPGP message whose plaintext is the "atomic
// container signature" JSON) and sigstore (cosign: a payload JSON, its MIME type, and
// annotations of which "dev.cosignproject.cosign/signature" is the base64 ECDSA signature).
// Everything here is untrusted until verified (signature/sigstore.h, signature/simple_signing.h,
// signature/policy.h).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "transports/util/result.h"

namespace regfs {

// containers/image's limit on one signature (DESIGN §3).
inline constexpr int64_t kMaxSignatureSize = 4 << 20;

struct Signature {
  enum class Format { kSimpleSigning, kSigstore };
  Format format = Format::kSigstore;
  // kSimpleSigning: the OpenPGP message.
  std::string simple_signing;
  // kSigstore: the MIME type, the payload bytes (not base64) and the annotations.
  std::string mime_type;
  std::string payload;
  std::map<std::string, std::string> annotations;

  bool operator==(const Signature&) const = default;
};

// The claims a signature makes, once verified: the image's docker reference (as signed, not
// normalized) and the manifest digest it covers.
struct SignedImage {
  std::string docker_reference;
  std::string manifest_digest;
};

// A `signature-N` file (containers/image's dir: and lookaside format): simple signing as the
// bare OpenPGP message; sigstore as "\0sigstore-json\n" followed by
// {"mimeType":…,"payload":<base64>,"annotations":{…}}, encoded as Go's encoding/json encodes
// it, so that what regfs writes is byte-identical to skopeo's.
std::string SignatureBlob(const Signature& sig);

// Parses such a file; "\0simple-signing\n" prefixed blobs are accepted too. EINVAL with the
// reason for anything else.
Result<Signature> SignatureFromBlob(std::string_view blob);

// Signs manifest digests, for the copy pipeline (`copy --sign-by…`, `regfs sign`).
class Signer {
 public:
  virtual ~Signer() = default;
  // For messages: "sigstore key /path/key.private", "GPG key 1234…".
  virtual std::string Describe() const = 0;
  // The format of the signatures it makes (where they can be stored depends on it).
  virtual Signature::Format format() const = 0;
  // A signature claiming that `docker_reference` (a "host/repo:tag" or "host/repo@digest"
  // string) is the image whose manifest has `manifest_digest`.
  virtual Result<Signature> Sign(const std::string& manifest_digest,
                                 const std::string& docker_reference) = 0;
};

}  // namespace regfs
