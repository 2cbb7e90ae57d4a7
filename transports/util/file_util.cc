#include "transports/util/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

namespace regfs {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

Error SysError(const std::string& what, const std::string& path) {
  int e = errno;
  return MakeError(e, what + " " + path + ": " + std::strerror(e));
}

Result<std::string> ReadFileBounded(const std::string& path, int64_t max_size) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("opening", path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return SysError("stat", path);
  if (st.st_size > max_size) {
    return MakeError(EFBIG, path + " is " + std::to_string(st.st_size) + " bytes, over the " +
                                std::to_string(max_size) + " byte limit");
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("reading", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max_size) {
      return MakeError(EFBIG, path + " is over the " + std::to_string(max_size) + " byte limit");
    }
  }
  return out;
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return SysError("writing", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Ok();
}

Status WriteAllAt(int fd, const void* data, size_t n, int64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return SysError("writing", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = TempPrefix(path) + std::to_string(std::random_device{}());
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return SysError("creating", tmp);
  if (fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return SysError("chmod", tmp);
  Status s = WriteAll(fd.get(), data.data(), data.size(), tmp);
  if (s.ok() && fsync(fd.get()) != 0) s = SysError("fsync", tmp);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) s = SysError("renaming to", path);
  if (!s.ok()) unlink(tmp.c_str());
  return s;
}

Error FsError(const std::string& what, const std::string& path, const std::error_code& ec) {
  return MakeError(ec.value(), what + " " + path + ": " + ec.message());
}

Status MakeDirs(const std::string& path, int mode) {
  std::error_code ec;
  if (path.empty() || std::filesystem::is_directory(path, ec)) return Ok();
  // Each missing level is made by mkdir(2) with `mode` (less the umask, as for any mkdir):
  // std::filesystem::create_directories takes no mode.
  std::filesystem::path made;
  for (const std::filesystem::path& part : std::filesystem::path(path)) {
    made /= part;
    if (mkdir(made.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return SysError("creating directory", made.string());
    }
  }
  if (std::filesystem::is_directory(path, ec)) return Ok();
  return FsError("creating directory", path,
                 ec ? ec : std::make_error_code(std::errc::not_a_directory));
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // removes symlinks, never what they point to
  if (ec) return FsError("removing", path, ec);
  return Ok();
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return FsError("reading directory", dir, ec);
  std::sort(names.begin(), names.end());
  return names;
}

Result<UniqueFd> NewUnlinkedTempFile(const std::string& prefix) {
  const char* env = std::getenv("TMPDIR");
  const std::string dir = env && *env ? env : "/var/tmp";
  UniqueFd fd(open(dir.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600));
  if (fd.valid()) return fd;
  std::string name = dir + "/" + prefix + "-XXXXXX";
  fd = UniqueFd(mkostemp(name.data(), O_CLOEXEC));
  if (!fd.valid()) return SysError("creating a temporary file in", dir);
  unlink(name.c_str());
  return fd;
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string DirName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string TempPrefix(const std::string& path) {
  return path + ".regfs-tmp-" + std::to_string(getpid()) + "-";
}

void RemoveStaleStaging(const std::string& dir, const std::string& base) {
  auto names = ListDir(dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    for (std::string_view kind : {".regfs-tmp-", ".regfs-old-"}) {
      size_t at = base.empty() ? name.find(kind) : base.size();
      if (at == std::string::npos || at == 0 || name.size() <= at ||
          name.compare(at, kind.size(), kind) != 0) {
        continue;
      }
      if (!base.empty() && name.compare(0, at, base) != 0) continue;
      std::string rest = name.substr(at + kind.size());
      size_t dash = rest.find('-');
      if (dash == 0 || dash == std::string::npos || dash > 10 ||
          rest.find_first_not_of("0123456789") != dash) {
        continue;
      }
      pid_t pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
      if (kill(pid, 0) != 0 && errno == ESRCH) (void)RemoveAll(dir + "/" + name);
    }
  }
}

void RemoveStaleTemps(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  RemoveStaleStaging(DirName(p), p.substr(p.rfind('/') + 1));
}

}  // namespace regfs
