// regfs delete docker://HOST/REPO:TAG: deletes the image at the registry — by tag where the
// registry supports it, else by digest. Deleting by digest also removes every other tag on that
// digest, so that is refused, naming them, unless --force.
#include <algorithm>

#include "tools/commands.h"
#include "transports/image_reference.h"

namespace regfs::cli {
namespace {

// The tags of `repo` other than `tag` that point at `digest`.
Result<std::vector<std::string>> TagsSharing(RegistryClient& client, const std::string& repo,
                                             const std::string& tag, const std::string& digest) {
  ASSIGN_OR_RETURN(std::vector<std::string> tags, client.ListTags(repo));
  std::vector<std::string> sharing;
  for (const std::string& t : tags) {
    if (t == tag) continue;
    auto d = client.ResolveDigest(repo, t);
    if (!d.ok()) {
      if (d.error().errnum == ENOENT) continue;  // deleted meanwhile
      return d.error();
    }
    if (*d == digest) sharing.push_back(t);
  }
  return sharing;
}

int Run(const Command& self, const Args& args) {
  auto ref = ParseImageReference(args.positional()[0]);
  if (!ref.ok()) return Fail(self, ref.error());
  if (ref->transport != Transport::kDocker) {
    return Fail(self, MakeError(EINVAL, "delete works on docker:// references"));
  }
  auto opts = RegistryOptionsFrom(args, "");
  if (!opts.ok()) return Fail(self, opts.error());
  const DockerReference& d = ref->docker;
  RegistryClient client(d.registry, *opts, std::make_shared<HttpClient>());
  auto digest = client.ResolveDigest(d.repository, d.ManifestRef());
  if (!digest.ok()) return Fail(self, digest.error());
  if (d.digest.empty()) {
    Status by_tag = client.DeleteManifest(d.repository, d.tag);
    if (by_tag.ok()) return 0;
    int e = by_tag.error().errnum;
    if (e != EOPNOTSUPP && e != EINVAL) return Fail(self, by_tag.error());
    // The registry deletes only by digest.
    if (!args.Bool("force")) {
      auto sharing = TagsSharing(client, d.repository, d.tag, *digest);
      if (!sharing.ok()) return Fail(self, sharing.error());
      if (!sharing->empty()) {
        std::string names;
        for (const auto& t : *sharing) names += (names.empty() ? "" : ", ") + t;
        return Fail(self, MakeError(EBUSY, d.registry + " deletes only by digest, and " + *digest +
                                               " is also tagged " + names + " in " + d.repository +
                                               ": deleting it would delete those tags too "
                                               "(use --force to delete them all)"));
      }
    }
  }
  Status s = client.DeleteManifest(d.repository, *digest);
  if (!s.ok()) return Fail(self, s.error());
  return 0;
}

}  // namespace

const Command& DeleteCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "delete";
    c.usage = "delete [options] docker://HOST/REPO[:TAG|@DIGEST]";
    c.summary = "Delete an image from a registry";
    c.details =
        "Where the registry can delete only by digest, every tag on that digest goes with it:\n"
        "regfs refuses that, naming the other tags, unless --force is given.";
    c.flags = {{"force", 0, FlagKind::kBool, "delete by digest even when other tags share it", ""}};
    for (auto& f : RegistryFlags("", true)) c.flags.push_back(f);
    c.flags.push_back({"retry-times", 0, FlagKind::kInt, "times to retry a failed request", "3"});
    c.flags.push_back({"debug", 0, FlagKind::kBool, "log requests to stderr", ""});
    c.min_args = c.max_args = 1;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
