// The regfs commands, one file each.
#pragma once

#include <span>
#include <vector>

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

// Every command, in the order --help, the man pages and shell completion list them.
std::span<const Command* const> AllCommands();

// skopeo's global flags, given before the command name and passed to the command when it
// has them (--policy, --insecure-policy, --registries.d).
const std::vector<Flag>& GlobalFlags();

// What regfs is, and its synopsis, as --help and regfs(1) begin.
inline constexpr const char* kDescription =
    "move and inspect container images between registries, and mount registries as a "
    "directory tree";
inline constexpr const char* kGlobalUsage =
    "[--policy FILE | --insecure-policy] [--registries.d DIR] COMMAND [options] ARGS";

// The synopsis of mount(8)'s form, which an fstab line or mount -t fuse.regfs runs through
// mount.fuse3, and what it is for.
inline constexpr const char* kMountHelperUsage = "SOURCE MOUNTPOINT [-o OPTIONS]";
inline constexpr const char* kMountHelperSummary = "mount(8)'s form: fstab, mount -t fuse.regfs";

}  // namespace regfs::cli
