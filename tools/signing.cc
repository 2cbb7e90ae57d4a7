#include "tools/signing.h"

#include "tools/passphrase.h"
#include "transports/signature/sigstore.h"
#include "transports/signature/sigstore_key.h"
#include "transports/signature/simple_signing.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

constexpr int64_t kMaxKeyFileSize = 1 << 20;

}  // namespace

void AddSigningFlags(std::vector<Flag>* flags) {
  flags->push_back(
      {"sign-by", 0, FlagKind::kString, "sign the image with the GPG key of this FINGERPRINT", ""});
  flags->push_back({"sign-by-sigstore-private-key", 0, FlagKind::kString,
                    "sign the image with the sigstore private key in FILE", ""});
  flags->push_back({"sign-passphrase-file", 0, FlagKind::kString,
                    "read the signing key's passphrase from the first line of FILE", ""});
  flags->push_back({"sign-identity", 0, FlagKind::kString,
                    "the docker reference the signature claims (default: the destination's)", ""});
  flags->push_back(
      {"remove-signatures", 0, FlagKind::kBool, "do not copy the source's signatures", ""});
}

void AddPolicyFlags(std::vector<Flag>* flags) {
  flags->push_back({"policy", 0, FlagKind::kString,
                    "the signature policy FILE (default: containers-policy.json(5) locations)",
                    ""});
  flags->push_back({"insecure-policy", 0, FlagKind::kBool,
                    "accept any image, signed or not, ignoring the policy", ""});
  AddRegistriesDFlag(flags);
}

void AddRegistriesDFlag(std::vector<Flag>* flags) {
  flags->push_back({"registries.d", 0, FlagKind::kString,
                    "read signature storage configuration from the *.yaml files in DIR", ""});
}

Result<std::vector<std::unique_ptr<Signer>>> SignersFrom(const Args& args,
                                                         const std::string& key_flag,
                                                         const std::string& passphrase_flag) {
  std::vector<std::unique_ptr<Signer>> signers;
  if (args.Given(key_flag)) {
    const std::string path = args.String(key_flag);
    ASSIGN_OR_RETURN(std::string pem, ReadFileBounded(path, kMaxKeyFileSize));
    ASSIGN_OR_RETURN(std::string passphrase,
                     ReadPassphrase(args, /*confirm=*/false, passphrase_flag));
    auto key = LoadSigstorePrivateKey(pem, passphrase);
    if (!key.ok()) return Annotate(std::move(key).error(), "loading " + path);
    signers.push_back(NewSigstoreSigner(std::move(*key), "sigstore key " + path));
  }
  if (args.Given("sign-by")) {
    std::string passphrase;
    if (args.Given(passphrase_flag)) {
      ASSIGN_OR_RETURN(passphrase, ReadPassphrase(args, /*confirm=*/false, passphrase_flag));
    }
    signers.push_back(NewGpgSigner(args.String("sign-by"), std::move(passphrase)));
  }
  return signers;
}

Result<std::string> SignIdentityFrom(const Args& args, const ImageReference& dest) {
  if (args.Given("sign-identity")) {
    const std::string text = args.String("sign-identity");
    ASSIGN_OR_RETURN(DockerReference ref, ParseDockerReference(text));
    if (ref.tag_defaulted) ref.tag.clear();
    // Canonical, as containers/image requires: the registry and the whole path written out.
    if (ref.String() != text) {
      return MakeError(EINVAL, "--sign-identity " + text +
                                   " is not a canonical reference (did you mean " + ref.String() +
                                   "?)");
    }
    return text;
  }
  if (dest.transport == Transport::kDocker) return dest.docker.String();
  return std::string();
}

Result<std::shared_ptr<const RegistriesD>> RegistriesDFrom(const Args& args) {
  auto config =
      RegistriesD::Load(args.Given("registries.d") ? args.String("registries.d") : std::string());
  if (!config.ok()) return std::move(config).error();
  return std::make_shared<const RegistriesD>(std::move(*config));
}

Result<std::shared_ptr<const Policy>> PolicyFrom(const Args& args) {
  if (args.Bool("insecure-policy")) {
    return std::make_shared<const Policy>(Policy::InsecureAcceptAnything());
  }
  auto policy = Policy::Load(args.Given("policy") ? args.String("policy") : std::string());
  if (!policy.ok()) return std::move(policy).error();
  return std::make_shared<const Policy>(std::move(*policy));
}

}  // namespace regfs::cli
