// GPG simple signing ("atomic container signature"), through gpgme as containers/image does.
//
// The signed plaintext is
//   {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":DIGEST},
//    "type":"atomic container signature"},"optional":{"creator":…,"timestamp":…}}
// and the signature the whole OpenPGP message (not armored, not detached).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transports/types/signature.h"
#include "transports/util/result.h"

namespace regfs {

inline constexpr char kSimpleSigningType[] = "atomic container signature";

// Signs with the secret key `fingerprint` from the user's GnuPG home ($GNUPGHOME or ~/.gnupg).
// `passphrase`: for a protected key (--sign-passphrase-file); empty: gpg-agent asks.
Result<std::string> SignSimpleSigning(const std::string& manifest_digest,
                                      const std::string& docker_reference,
                                      const std::string& fingerprint,
                                      const std::string& passphrase);

std::unique_ptr<Signer> NewGpgSigner(std::string fingerprint, std::string passphrase);

struct SimpleSigningVerified {
  SignedImage claims;
  std::string key_fingerprint;  // of the key that made it
};

// The claims of a signed plaintext, parsed as strictly as containers/image's
// untrustedSignature.strictUnmarshalJSON (no duplicate keys, exactly the critical fields, an
// integer timestamp). EINVAL naming what is wrong. The verifiers below call it.
Result<SignedImage> ParseSimpleSigningPayload(std::string_view plaintext);

// Verifies `blob` with the public keys in `keyrings` (each armored or binary OpenPGP data),
// imported into a temporary GnuPG home that is removed afterwards, so the user's keyring is
// neither used nor changed. The plaintext is parsed as strictly as containers/image parses it.
// EACCES/EINVAL with a message naming the reason (unknown key, bad signature, bad payload).
Result<SimpleSigningVerified> VerifySimpleSigning(std::string_view blob,
                                                  const std::vector<std::string>& keyrings);

// Verifies with the user's own keyring, accepting only the keys in `fingerprints`, as
// `skopeo standalone-verify` does.
Result<SimpleSigningVerified> VerifySimpleSigningWithUserKeyring(
    std::string_view blob, const std::vector<std::string>& fingerprints);

// Whether verified `claims` are about `manifest` (its sha256 digest) under
// `expected_reference` (both references normalized, as containers/image's
// VerifyDockerManifestSignature compares them). EINVAL for an `expected_reference` that does not
// parse; EACCES with containers/image's message for a mismatch.
Status CheckSignedImage(const SignedImage& claims, std::string_view manifest,
                        const std::string& expected_reference);

}  // namespace regfs
