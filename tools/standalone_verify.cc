// regfs standalone-verify MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT SIGNATURE: checks a GPG
// simple signing signature of a manifest file with the user's GnuPG keyring, as skopeo
// standalone-verify does, and prints the digest it covers.
#include <cstdio>

#include "tools/commands.h"
#include "transports/manifest/manifest.h"
#include "transports/signature/simple_signing.h"
#include "transports/types/image_reference.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  const std::string& manifest_path = args.positional()[0];
  const std::string& reference = args.positional()[1];
  const std::string& fingerprint = args.positional()[2];
  const std::string& signature_path = args.positional()[3];

  auto manifest = ReadFileBounded(manifest_path, kMaxManifestSize);
  if (!manifest.ok()) return Fail(self, Annotate(manifest.error(), "reading the manifest"));
  auto blob = ReadFileBounded(signature_path, kMaxSignatureSize);
  if (!blob.ok()) return Fail(self, Annotate(blob.error(), "reading the signature"));
  // The expected reference first, as containers/image checks it before the signature.
  if (auto ref = ParseDockerReference(reference); !ref.ok()) {
    return Fail(self, Annotate(ref.error(), "verifying the signature: " + reference));
  }
  auto verified = VerifySimpleSigningWithUserKeyring(*blob, {fingerprint});
  if (!verified.ok()) return Fail(self, Annotate(verified.error(), "verifying the signature"));
  Status matches = CheckSignedImage(verified->claims, *manifest, reference);
  if (!matches.ok()) return Fail(self, Annotate(matches.error(), "verifying the signature"));
  std::printf("Signature verified, digest %s\n", verified->claims.manifest_digest.c_str());
  return 0;
}

}  // namespace

const Command& StandaloneVerifyCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "standalone-verify";
    c.usage = "standalone-verify MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT SIGNATURE";
    c.summary = "Verify a GPG signature of a manifest file";
    c.details =
        "Checks that SIGNATURE is a good signature by the key KEY-FINGERPRINT of the GnuPG\n"
        "keyring ($GNUPGHOME, else ~/.gnupg) claiming that MANIFEST is the image\n"
        "DOCKER-REFERENCE, as skopeo standalone-verify does, and prints the manifest digest.";
    c.min_args = c.max_args = 4;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
