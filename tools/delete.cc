// regfs delete docker://HOST/REPO:TAG: deletes the image at the registry — by tag where the
// registry supports it, else by digest. Deleting by digest also removes every other tag on that
// digest, so that is refused, naming them, unless --force.
#include "tools/commands.h"
#include "transports/registry/image_delete.h"
#include "transports/types/image_reference.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  auto target = RegistryTargetFrom(args, "delete");
  if (!target.ok()) return Fail(self, target.error());
  const DockerReference& d = target->ref;
  Status s = DeleteImage(*target->client, d.repository, d.ManifestRef(), args.Bool("force"));
  if (!s.ok()) {
    Error e = s.error();
    if (e.errnum == EBUSY) e.message += " (use --force to delete them all)";
    return Fail(self, e);
  }
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
