// The FUSE adapter: the one place that includes fuse_lowlevel.h. It translates kernel requests
// into Filesystem calls and Results into replies, and nothing else.
#pragma once

#include <functional>
#include <string>

#include "fs/filesystem.h"

namespace regfs {

// Mounts `fs` at `mountpoint`, calls `ready` once the mount exists, and serves requests with
// several threads until it is unmounted (umount, fusermount3 -u, SIGTERM, SIGINT, SIGHUP).
Status ServeFuse(Filesystem& fs, const std::string& mountpoint, const MountOptions& options,
                 const std::function<void()>& ready);

}  // namespace regfs
