// The regfs commands, one file each.
#pragma once

#include "tools/cli.h"

namespace regfs::cli {

const Command& CopyCommand();
const Command& InspectCommand();
const Command& DeleteCommand();
const Command& ListTagsCommand();
const Command& ManifestDigestCommand();
const Command& LoginCommand();
const Command& LogoutCommand();
const Command& MountCommand();
const Command& UnmountCommand();
const Command& SyncCommand();
const Command& GenerateKeyCommand();
const Command& SignCommand();
const Command& VerifyCommand();
const Command& StandaloneSignCommand();
const Command& StandaloneVerifyCommand();

}  // namespace regfs::cli
