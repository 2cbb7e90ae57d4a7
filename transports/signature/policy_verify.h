// The policy's one door to signature verification (sigstore.h, simple_signing.h): each
// signature checked against the keys of a requirement. The caller compares the claims with the
// manifest and the identity rule.
#pragma once

#include <string>
#include <vector>

#include "transports/signature/policy.h"
#include "transports/types/signature.h"

namespace regfs {

struct PolicyKeyVerdict {
  bool verified = false;
  std::string error;            // when not verified: why, naming the cause
  SignedImage claims;           // when verified
  size_t key_index = 0;         // sigstore: which key verified it
  std::string key_fingerprint;  // simple signing: the signing key
};

// One verdict per index in `which` (indices into image.signatures, each a sigstore signature
// of the signature MIME type); `keys` are PEM public keys, `names` name them in errors.
std::vector<PolicyKeyVerdict> VerifySigstoreWithKeys(const PolicyImage& image,
                                                     const std::vector<size_t>& which,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<std::string>& names);

// The same for simple signing signatures; `keys` are OpenPGP keyrings.
std::vector<PolicyKeyVerdict> VerifySimpleSigningWithKeys(const PolicyImage& image,
                                                          const std::vector<size_t>& which,
                                                          const std::vector<std::string>& keys,
                                                          const std::vector<std::string>& names);

}  // namespace regfs
