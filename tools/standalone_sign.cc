// regfs standalone-sign MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT -o SIGNATURE: a GPG simple
// signing signature of a manifest file, as skopeo standalone-sign makes it, with a secret key
// of the user's GnuPG keyring.
#include <cerrno>

#include "tools/commands.h"
#include "tools/passphrase.h"
#include "transports/manifest/manifest.h"
#include "transports/signature/simple_signing.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  const std::string output = args.String("output");
  if (output.empty()) return UsageError(self, "--output is required");
  const std::string& manifest_path = args.positional()[0];
  const std::string& reference = args.positional()[1];
  const std::string& fingerprint = args.positional()[2];

  auto manifest = ReadFileBounded(manifest_path, kMaxManifestSize);
  if (!manifest.ok()) return Fail(self, Annotate(manifest.error(), "reading the manifest"));
  if (GuessManifestMediaType(*manifest) == media::kDockerV1Signed) {
    return Fail(
        self,
        MakeError(EINVAL, manifest_path + ": signed Docker schema 1 manifests are not supported"));
  }
  // Only --passphrase-file: without it gpg-agent asks, as for skopeo.
  std::string passphrase;
  if (args.Given("passphrase-file")) {
    auto read = ReadPassphrase(args, /*confirm=*/false);
    if (!read.ok()) return Fail(self, read.error());
    passphrase = std::move(*read);
  }
  auto sig = SignSimpleSigning(DigestOf(*manifest), reference, fingerprint, passphrase);
  if (!sig.ok()) return Fail(self, Annotate(sig.error(), "creating the signature"));
  Status written = WriteFileAtomic(output, *sig, 0644);
  if (!written.ok()) return Fail(self, Annotate(written.error(), "writing the signature"));
  return 0;
}

}  // namespace

const Command& StandaloneSignCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "standalone-sign";
    c.usage = "standalone-sign [options] MANIFEST DOCKER-REFERENCE KEY-FINGERPRINT -o SIGNATURE";
    c.summary = "Create a GPG signature of a manifest file";
    c.details =
        "Signs MANIFEST as the image DOCKER-REFERENCE with the secret key KEY-FINGERPRINT of\n"
        "the GnuPG keyring ($GNUPGHOME, else ~/.gnupg), writing the signature (\"atomic\n"
        "container signature\", an OpenPGP message) to SIGNATURE, as skopeo standalone-sign\n"
        "does. A protected key's passphrase is the first line of --passphrase-file, else\n"
        "gpg-agent asks for it.";
    c.flags.push_back(
        {"output", 'o', FlagKind::kString, "output the signature to SIGNATURE (required)", ""});
    c.flags.push_back({"passphrase-file", 0, FlagKind::kString,
                       "read the key's passphrase from the first line of FILE", ""});
    c.min_args = c.max_args = 3;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
