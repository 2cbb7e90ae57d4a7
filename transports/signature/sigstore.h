// Sigstore (cosign-compatible) signatures made with keys: the payload, signing and verifying,
// and the OCI attachment (`sha256-<hex>.sig`) that stores them beside an image in a registry.
//
// The payload is containers/image's "cosign container image signature":
//   {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":DIGEST},
//    "type":"cosign container image signature"},"optional":{"creator":…,"timestamp":…}}
// ("optional" is null in what cosign writes; containers/image always writes an object, {} when
// it has neither field) signed with ECDSA P-256 over SHA-256; the DER signature, base64, is the
// layer annotation "dev.cosignproject.cosign/signature".
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/types/signature.h"
#include "transports/util/openssl_ptr.h"
#include "transports/util/result.h"

namespace regfs {

inline constexpr char kSigstoreSignatureMimeType[] =
    "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr char kSigstoreSignatureAnnotation[] = "dev.cosignproject.cosign/signature";
inline constexpr char kSigstorePayloadType[] = "cosign container image signature";

// optional.creator of the payloads regfs signs (containers/image writes "containers/image <v>").
inline constexpr char kSigstoreCreator[] = "regfs";

// The attachment tag for a manifest digest: "sha256-<hex>.sig".
std::string SigstoreAttachmentTag(const std::string& manifest_digest);

// The contents of a payload. `creator` and `timestamp` (Unix seconds) are the optional fields
// containers/image writes and reads; others in "optional" are ignored when parsing.
struct SigstorePayload {
  std::string docker_reference;
  std::string manifest_digest;
  std::optional<std::string> creator;
  std::optional<int64_t> timestamp;

  bool operator==(const SigstorePayload&) const = default;
};

// The payload bytes, as containers/image's UntrustedSigstorePayload.MarshalJSON writes them
// (Go map key order: critical{identity,image,type}, optional{creator,timestamp}). EINVAL for an
// empty reference or digest.
Result<std::string> SigstorePayloadJson(const SigstorePayload& payload);

// Parses payload bytes as strictly as containers/image: exactly the fields "critical" and
// "optional" (null or an object); critical exactly {identity, image, type} with the type
// kSigstorePayloadType; image exactly {docker-manifest-digest} (a valid digest); identity
// exactly {docker-reference}; duplicate keys rejected; optional.timestamp an integer. EINVAL.
Result<SigstorePayload> ParseSigstorePayload(std::string_view payload);

// A signature by `key` (P-256) claiming `docker_reference` for `manifest_digest`, its payload
// written as containers/image writes it: creator kSigstoreCreator, timestamp now.
Result<Signature> SignSigstore(EVP_PKEY* key, const std::string& manifest_digest,
                               const std::string& docker_reference);
// The same with the payload given in full (tests, reproducible signatures).
Result<Signature> SignSigstore(EVP_PKEY* key, const SigstorePayload& payload);

// A Signer over a loaded private key; `describe` names it in messages.
std::unique_ptr<Signer> NewSigstoreSigner(EvpPkeyPtr key, std::string describe);

// A public key from PEM ("PUBLIC KEY"): ECDSA, RSA or Ed25519 as cosign accepts; EINVAL else.
Result<EvpPkeyPtr> LoadPublicKeyPem(std::string_view pem);

struct SigstoreVerified {
  SignedImage claims;
  SigstorePayload payload;  // the claims and the optional fields
  size_t key_index = 0;     // which of the keys verified it
};

// Checks `sig` against any of `keys`: sigstore format, the payload MIME type, the annotation a
// valid signature of the payload bytes by one of the keys, and the payload parsed as strictly
// as containers/image parses it (unknown critical fields, a wrong type → error). The caller
// compares the claims with the manifest and the policy's identity rule. EINVAL/EACCES with a
// message naming the reason.
Result<SigstoreVerified> VerifySigstore(const Signature& sig, const std::vector<EVP_PKEY*>& keys);

// Fetches one blob of an attachment, at most `max` bytes; the caller of the fetcher checks
// the digest (SignaturesFromAttachment does).
using AttachmentBlobFetcher =
    std::function<Result<std::string>(const std::string& digest, int64_t size)>;

// The sigstore signatures of an attachment manifest: each layer, with its MIME type and
// annotations, its payload fetched and checked against its digest. Layers of other MIME types
// are kept too, as containers/image keeps them (the verifier refuses them; a copy carries them
// as skopeo does). EINVAL for a manifest that is not an OCI image manifest, a layer with a
// non-sha256 digest or a digest mismatch; EFBIG for a layer over kMaxSignatureSize (before
// fetching it).
Result<std::vector<Signature>> SignaturesFromAttachment(std::string_view manifest,
                                                        const AttachmentBlobFetcher& fetch);

// What decides whether an attachment holds a signature already: its MIME type, payload
// digest and annotations (containers/image's layerMatchesSigstoreSignature).
struct AttachedSignatureKey {
  std::string media_type;
  std::string digest;
  std::map<std::string, std::string> annotations;
  auto operator<=>(const AttachedSignatureKey&) const = default;
};

// The keys of an attachment's layers, from its manifest alone (no payload is fetched).
Result<std::vector<AttachedSignatureKey>> AttachedSignatureKeys(std::string_view manifest);

// The key `sig` would have as an attachment layer.
AttachedSignatureKey AttachedSignatureKeyOf(const Signature& sig);

// The config of every attachment regfs writes: OCI's empty descriptor, as OCI 1.1 artifacts
// without a config have it.
inline constexpr char kEmptyConfig[] = "{}";
inline constexpr char kEmptyConfigMediaType[] = "application/vnd.oci.empty.v1+json";
inline constexpr char kEmptyConfigDigest[] =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

// An attachment after appending signatures: an OCI image manifest with a layer per signature,
// as containers/image writes it, except for its config, which is always the empty one
// (containers/image's lists the layers as rootfs.diff_ids, so each signature would cost a
// second upload). Readers — containers/image, cosign — look at the layers alone.
struct Attachment {
  std::string manifest;
  // Payloads to upload before the manifest (the empty config too, where it is missing).
  std::vector<std::pair<std::string, std::string>> blobs;
  bool changed = false;  // false: every signature was there already; nothing to write
};

// `existing_manifest`: the current attachment, or empty for none. A signature already present
// (same MIME type, payload and annotations) is not added again. An existing attachment keeps
// its fields and their order (containers/image would drop the fields its Go types lack); its
// config descriptor becomes the empty one.
Result<Attachment> AppendToAttachment(std::string_view existing_manifest,
                                      const std::vector<Signature>& sigs);

}  // namespace regfs
