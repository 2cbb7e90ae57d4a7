// regfs sign IMAGE: signs an image where it is, without copying it — a sigstore signature
// added to the registry's attachment (or a dir:'s signature files), or a GPG one written to
// the lookaside storage registries.d names.
#include <cstdio>

#include "tools/commands.h"
#include "tools/passphrase.h"
#include "tools/signing.h"
#include "transports/alltransports/transports.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

// A dir: image keeps its signatures as files: the new one is added after the last, unless an
// identical one is there.
Status SignDir(const std::string& path, ImageSource& src, const std::string& digest,
               const std::vector<Signature>& sigs) {
  ASSIGN_OR_RETURN(std::vector<Signature> have, src.GetSignatures(digest, false));
  for (const Signature& sig : sigs) {
    if (std::find(have.begin(), have.end(), sig) != have.end()) continue;
    have.push_back(sig);
    RETURN_IF_ERROR(WriteFileAtomic(path + "/signature-" + std::to_string(have.size()),
                                    SignatureBlob(sig), 0644));
  }
  return Ok();
}

int Run(const Command& self, const Args& args) {
  auto ref = ParseImageReference(args.positional()[0]);
  if (!ref.ok()) return Fail(self, ref.error());
  if (ref->transport == Transport::kOci) {
    return UsageError(self, "oci: layouts can't hold signatures; sign docker:// or dir: images");
  }
  if (!args.Given("key") && !args.Given("sign-by")) {
    return UsageError(self, "nothing to sign with: give --key FILE or --sign-by FINGERPRINT");
  }
  auto identity = SignIdentityFrom(args, *ref);
  if (!identity.ok()) return Fail(self, identity.error());
  if (identity->empty()) {
    return UsageError(self, "a dir: image has no docker reference to claim: give --sign-identity");
  }
  auto opts = RegistryOptionsFrom(args, "");
  if (!opts.ok()) return Fail(self, opts.error());
  auto registries_d = RegistriesDFrom(args);
  if (!registries_d.ok()) return Fail(self, registries_d.error());
  opts->registries_d = *registries_d;
  auto signers = SignersFrom(args, "key", "passphrase-file");
  if (!signers.ok()) return Fail(self, signers.error());

  RegistryClients clients(std::make_shared<HttpClient>());
  auto src = OpenImageSource(*ref, *opts, clients);
  if (!src.ok()) return Fail(self, Annotate(src.error(), "opening " + ref->String()));
  auto digest = (*src)->ManifestDigest();
  if (!digest.ok()) return Fail(self, Annotate(digest.error(), "reading " + ref->String()));

  std::vector<Signature> sigs;
  for (const auto& signer : *signers) {
    auto sig = signer->Sign(*digest, *identity);
    if (!sig.ok()) return Fail(self, Annotate(sig.error(), "signing with " + signer->Describe()));
    sigs.push_back(std::move(*sig));
  }
  Status stored = Ok();
  if (ref->transport == Transport::kDir) {
    stored = SignDir(ref->path, **src, *digest, sigs);
  } else {
    auto dst = OpenImageDestination(*ref, *opts, clients);
    if (!dst.ok()) return Fail(self, dst.error());
    stored = (*dst)->PutSignatures(*digest, false, sigs);
  }
  if (!stored.ok()) return Fail(self, Annotate(stored.error(), "storing the signature"));
  if (!args.Bool("quiet")) {
    std::fprintf(stderr, "Signed %s (%s) as %s\n", ref->String().c_str(), digest->c_str(),
                 identity->c_str());
  }
  return 0;
}

}  // namespace

const Command& SignCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "sign";
    c.usage = "sign [options] IMAGE";
    c.summary = "Sign an image where it is (sigstore or GPG)";
    c.details =
        "IMAGE: docker://HOST/REPO[:TAG|@DIGEST] or dir:PATH. The signature claims the image's\n"
        "own reference (or --sign-identity) and its manifest digest. A sigstore signature\n"
        "(--key, a key from regfs generate-key or cosign) is added to the registry's\n"
        "sha256-<hex>.sig attachment, or as the next signature-N file of a dir: image; an\n"
        "identical signature is not added twice. A GPG signature (--sign-by) is written to the\n"
        "lookaside storage registries.d configures. The key's passphrase comes from\n"
        "--passphrase-file, else $COSIGN_PASSWORD, else a prompt on a terminal.";
    c.flags = {
        {"key", 0, FlagKind::kString, "sign with the sigstore private key in FILE", ""},
        {"sign-by", 0, FlagKind::kString, "sign with the GPG key of this FINGERPRINT", ""},
        {"sign-identity", 0, FlagKind::kString,
         "the docker reference the signature claims (default: the image's)", ""},
        {"quiet", 'q', FlagKind::kBool, "print nothing when done", ""},
    };
    AddPassphraseFlag(&c.flags);
    AddRegistriesDFlag(&c.flags);
    AddRegistryFlags(&c.flags, "", true);
    AddRequestFlags(&c.flags);
    c.min_args = c.max_args = 1;
    c.operands = Operands::kImages;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
