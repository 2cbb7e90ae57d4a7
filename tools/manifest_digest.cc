// regfs manifest-digest FILE: the digest of a manifest file, as skopeo computes it.
#include <cstdio>

#include "tools/commands.h"
#include "transports/manifest/manifest.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  const std::string& path = args.positional()[0];
  auto bytes = ReadFileBounded(path, kMaxManifestSize);
  if (!bytes.ok()) return Fail(self, bytes.error());
  std::string type = GuessManifestMediaType(*bytes);
  if (type == media::kDockerV1Signed || type == media::kDockerV1) {
    return Fail(self, MakeError(EINVAL, path + ": Docker schema 1 manifests are not supported"));
  }
  std::printf("%s\n", DigestOf(*bytes).c_str());
  return 0;
}

}  // namespace

const Command& ManifestDigestCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "manifest-digest";
    c.usage = "manifest-digest MANIFEST-FILE";
    c.summary = "Compute the digest of a manifest file";
    c.min_args = c.max_args = 1;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
