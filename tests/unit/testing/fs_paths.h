// Walking, reading and writing the mount core (fs/filesystem.h) by path, as the kernel would.
#pragma once

#include <fcntl.h>

#include <string>

#include "fs/filesystem.h"

namespace regfs::testing {

// The inode of `path` ("repo/tag/file"), looked up from the directory of registry `host`.
inline Result<NodeAttr> WalkPath(Filesystem& fs, const std::string& host, const std::string& path) {
  ASSIGN_OR_RETURN(NodeAttr at, fs.Lookup(kRootIno, host));
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    ASSIGN_OR_RETURN(at, fs.Lookup(at.ino, path.substr(start, end - start)));
    start = end + 1;
  }
  return at;
}

// The whole content of a file, read from the start in 4 KiB reads.
inline Result<std::string> ReadWhole(Filesystem& fs, uint64_t ino) {
  ASSIGN_OR_RETURN(OpenedFile f, fs.Open(ino, O_RDONLY));
  std::string out;
  char buf[4096];
  while (true) {
    auto n = fs.Read(f.handle, buf, sizeof buf, static_cast<int64_t>(out.size()));
    if (!n.ok()) {
      fs.Release(f.handle);
      return n.error();
    }
    if (*n == 0) break;
    out.append(buf, *n);
  }
  fs.Release(f.handle);
  return out;
}

// open(O_CREAT)/write()/close() of a file `name` in directory `dir`: the close's result.
inline Status WriteWhole(Filesystem& fs, uint64_t dir, const std::string& name,
                         const std::string& bytes) {
  ASSIGN_OR_RETURN(auto created, fs.Create(dir, name));
  auto written = fs.Write(created.second.handle, bytes.data(), bytes.size(), 0);
  Status flushed = written.ok() ? fs.Flush(created.second.handle) : Status(written.error());
  fs.Release(created.second.handle);
  return flushed;
}

}  // namespace regfs::testing
