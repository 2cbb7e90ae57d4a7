#include "tools/commands.h"

#include "tools/signing.h"

namespace regfs::cli {

std::span<const Command* const> AllCommands() {
  static const Command* const kCommands[] = {
      &MountCommand(),    &UnmountCommand(),        &CopyCommand(),
      &SyncCommand(),     &InspectCommand(),        &DeleteCommand(),
      &ListTagsCommand(), &ManifestDigestCommand(), &LoginCommand(),
      &LogoutCommand(),   &GenerateKeyCommand(),    &SignCommand(),
      &VerifyCommand(),   &StandaloneSignCommand(), &StandaloneVerifyCommand(),
  };
  return kCommands;
}

const std::vector<Flag>& GlobalFlags() {
  static const std::vector<Flag> kFlags = [] {
    std::vector<Flag> flags;
    AddPolicyFlags(&flags);
    return flags;
  }();
  return kFlags;
}

}  // namespace regfs::cli
