// regfs generate-key --output-prefix P: a new sigstore (cosign-compatible) key pair, as skopeo
// generate-sigstore-key writes it: P.private (encrypted, 0600) and P.pub.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "tools/commands.h"
#include "tools/passphrase.h"
#include "transports/signature/sigstore_key.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

// Creates `path` with `data`; EEXIST if there is anything there already.
Status CreateNewFile(const std::string& path, const std::string& data, int mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) {
    if (errno == EEXIST) return MakeError(EEXIST, "refusing to overwrite existing " + path);
    return SysError("creating", path);
  }
  RETURN_IF_ERROR(WriteAll(fd.get(), data.data(), data.size(), path));
  if (fsync(fd.get()) != 0) return SysError("fsync", path);
  if (close(fd.release()) != 0) return SysError("closing", path);
  return Ok();
}

int Run(const Command& self, const Args& args) {
  const std::string prefix = args.String("output-prefix");
  if (prefix.empty()) return UsageError(self, "--output-prefix is required");
  const std::string private_path = prefix + ".private";
  const std::string public_path = prefix + ".pub";
  for (const std::string& path : {private_path, public_path}) {
    if (access(path.c_str(), F_OK) == 0 || errno != ENOENT) {
      return Fail(self, MakeError(EEXIST, "refusing to overwrite existing " + path));
    }
  }
  auto passphrase = ReadPassphrase(args, /*confirm=*/true);
  if (!passphrase.ok()) return Fail(self, passphrase.error());
  auto key = GenerateSigstoreKey();
  if (!key.ok()) return Fail(self, key.error());
  auto private_pem = EncryptSigstorePrivateKey(key->get(), *passphrase);
  if (!private_pem.ok()) return Fail(self, private_pem.error());
  auto public_pem = PublicKeyPem(key->get());
  if (!public_pem.ok()) return Fail(self, public_pem.error());

  Status written = CreateNewFile(private_path, *private_pem, 0600);
  if (!written.ok()) return Fail(self, written.error());
  written = CreateNewFile(public_path, *public_pem, 0644);
  if (!written.ok()) {
    unlink(private_path.c_str());  // no half a pair
    return Fail(self, written.error());
  }
  std::printf("Key written to %s and %s\n", private_path.c_str(), public_path.c_str());
  return 0;
}

}  // namespace

const Command& GenerateKeyCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "generate-key";
    c.usage = "generate-key [options] --output-prefix PREFIX";
    c.summary = "Generate a sigstore key pair for signing images";
    c.details =
        "Writes a new ECDSA P-256 key pair as skopeo generate-sigstore-key and cosign do:\n"
        "PREFIX.private, the private key encrypted with a passphrase (mode 0600), and\n"
        "PREFIX.pub, its public key. Existing files are never overwritten. The passphrase is\n"
        "the first line of --passphrase-file, else $COSIGN_PASSWORD, else asked twice on the\n"
        "terminal.";
    c.flags.push_back({"output-prefix", 0, FlagKind::kString,
                       "write the keys to PREFIX.private and PREFIX.pub (required)", ""});
    AddPassphraseFlag(&c.flags);
    c.min_args = c.max_args = 0;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
