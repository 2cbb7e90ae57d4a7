// regfs list-tags docker://HOST/REPO: the repository's tags, as skopeo prints them.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tools/commands.h"
#include "transports/image/inspect.h"
#include "transports/types/image_reference.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  auto target = RegistryTargetFrom(args, "list-tags");
  if (!target.ok()) return Fail(self, target.error());
  const DockerReference& d = target->ref;
  if (!d.tag_defaulted || !d.digest.empty()) {
    return Fail(self, MakeError(EINVAL, "no tag or digest allowed in reference \"" +
                                            args.positional()[0] + "\""));
  }
  auto tags = target->client->ListTags(d.repository);
  if (!tags.ok()) return Fail(self, tags.error());
  nlohmann::ordered_json out = {{"Repository", d.Name()}, {"Tags", *tags}};
  std::string text = GoJsonEscapes(out.dump(4)) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace

const Command& ListTagsCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "list-tags";
    c.usage = "list-tags [options] docker://HOST/REPOSITORY";
    c.summary = "List the tags of a repository";
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
