// Small POSIX file helpers with RAII file descriptors and errno-carrying errors.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "transports/util/result.h"

namespace regfs {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// An error for a failed system call on a path, with errno's text.
Error SysError(const std::string& what, const std::string& path);

// Reads a whole file; EFBIG if it is larger than `max_size`.
Result<std::string> ReadFileBounded(const std::string& path, int64_t max_size);

// Writes all of `data` to fd at `offset` (pwrite), retrying short writes.
Status WriteAllAt(int fd, const void* data, size_t n, int64_t offset, const std::string& path);

// Writes all of `data` to fd, retrying short writes.
Status WriteAll(int fd, const void* data, size_t n, const std::string& path);

// Writes a file through a temporary in the same directory and a rename, so readers see the old
// contents or the new, never a part.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode);

// An error for a failed std::filesystem call on a path, with the error code's text.
Error FsError(const std::string& what, const std::string& path, const std::error_code& ec);

// mkdir -p: the directories it makes have `mode` less the umask; an existing directory is
// fine, anything else in the way is ENOTDIR.
Status MakeDirs(const std::string& path, int mode);

// rm -rf: a symlink is removed, not followed; a missing path is fine.
Status RemoveAll(const std::string& path);

// The names in a directory, sorted, without "." and "..".
Result<std::vector<std::string>> ListDir(const std::string& dir);

// A temporary file for big contents (a spooled layer, a `docker save` tar) that no name refers
// to, so it goes when its descriptor closes however the process ends: in $TMPDIR, else
// /var/tmp (as containers/image picks the directory for big files). Where the filesystem has
// no O_TMPFILE, a file named `prefix`-XXXXXX is made and unlinked at once.
Result<UniqueFd> NewUnlinkedTempFile(const std::string& prefix);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// Parent directory of a path ("." for a bare name).
std::string DirName(const std::string& path);

// The start of the name of a temporary beside `path`: PATH.regfs-tmp-PID- (mkstemp's XXXXXX or
// some other unique part follows). A process killed while writing leaves it behind;
// RemoveStaleStaging() removes it once the process is gone.
std::string TempPrefix(const std::string& path);

// Removes what killed processes left in `dir`: BASE.regfs-tmp-PID-* (an image, archive, blob or
// file being written) and BASE.regfs-old-PID-* (an image being replaced) whose process PID is
// gone; any BASE when `base` is empty. Each destination does this for its own path.
void RemoveStaleStaging(const std::string& dir, const std::string& base = "");
// The same for the temporaries of one path: RemoveStaleStaging(DirName(path), its last name).
void RemoveStaleTemps(const std::string& path);

}  // namespace regfs
