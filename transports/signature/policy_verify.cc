#include "transports/signature/policy_verify.h"

#include <cerrno>

#include "transports/signature/sigstore.h"
#include "transports/signature/simple_signing.h"

namespace regfs {

namespace {

std::vector<PolicyKeyVerdict> AllFailed(size_t n, const std::string& error) {
  std::vector<PolicyKeyVerdict> out(n);
  for (PolicyKeyVerdict& v : out) v.error = error;
  return out;
}

}  // namespace

std::vector<PolicyKeyVerdict> VerifySigstoreWithKeys(const PolicyImage& image,
                                                     const std::vector<size_t>& which,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<std::string>& names) {
  std::vector<EvpPkeyPtr> owned;
  std::vector<EVP_PKEY*> raw;
  for (size_t k = 0; k < keys.size(); ++k) {
    auto key = LoadPublicKeyPem(keys[k]);
    if (!key.ok()) {
      return AllFailed(which.size(), "public key " + names[k] + ": " + key.error().message);
    }
    raw.push_back(key->get());
    owned.push_back(std::move(key).value());
  }
  std::vector<PolicyKeyVerdict> out;
  for (size_t i : which) {
    PolicyKeyVerdict v;
    auto r = VerifySigstore(image.signatures[i], raw);
    if (r.ok()) {
      v.verified = true;
      v.claims = r->claims;
      v.key_index = r->key_index;
    } else {
      v.error = "not verified by the policy's keys: " + r.error().message;
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<PolicyKeyVerdict> VerifySimpleSigningWithKeys(const PolicyImage& image,
                                                          const std::vector<size_t>& which,
                                                          const std::vector<std::string>& keys,
                                                          const std::vector<std::string>& names) {
  (void)names;
  std::vector<PolicyKeyVerdict> out;
  for (size_t i : which) {
    PolicyKeyVerdict v;
    auto r = VerifySimpleSigning(image.signatures[i].simple_signing, keys);
    if (r.ok()) {
      v.verified = true;
      v.claims = r->claims;
      v.key_fingerprint = r->key_fingerprint;
    } else {
      v.error = "not verified by the policy's keys: " + r.error().message;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace regfs
