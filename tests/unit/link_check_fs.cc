// Linked with regfs_fs alone (CMakeLists.txt): the mount core, and everything it uses, must
// link without the HTTP stack and the registry client. The mount's entry points reference
// every Filesystem operation (ServeFuse calls them all; Create's result destroys one), so
// every object of fs/ is pulled into this link, and a reach from fs/ into transports/http or
// transports/docker fails the build here.
#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"

int main(int argc, char**) {
  if (argc > 1) return 1;  // never run: this program only has to link
  auto fs = regfs::Filesystem::Create(regfs::MountOptions(), nullptr);
  return fs.ok() && regfs::ServeFuse(**fs, "", regfs::MountOptions(), nullptr).ok() ? 0 : 1;
}
