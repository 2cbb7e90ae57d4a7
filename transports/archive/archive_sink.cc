#include "transports/archive/archive_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "transports/util/file_util.h"

namespace regfs {
namespace {

// Tar headers come in 512-byte pieces: gathered into larger writes.
constexpr size_t kBuffer = 1 << 20;

class FileArchiveSink final : public ArchiveSink {
 public:
  // `tmp` empty: `fd` is `path` itself (a pipe or a device), written in place.
  FileArchiveSink(std::string path, std::string tmp, UniqueFd fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)) {
    buf_.reserve(kBuffer);
  }

  ~FileArchiveSink() override {
    if (!committed_ && !tmp_.empty()) unlink(tmp_.c_str());
  }

  Status Write(const char* data, size_t n) override {
    if (buf_.size() + n > kBuffer) {
      RETURN_IF_ERROR(Flush());
      if (n >= kBuffer) return WriteAll(fd_.get(), data, n, Name());
    }
    buf_.insert(buf_.end(), data, data + n);
    return Ok();
  }

  bool CanRewrite() const override { return !tmp_.empty(); }

  Status Rewrite(int64_t offset, const char* data, size_t n) override {
    if (tmp_.empty()) return ArchiveSink::Rewrite(offset, data, n);
    RETURN_IF_ERROR(Flush());
    return WriteAllAt(fd_.get(), data, n, offset, tmp_);
  }

  Status Commit() override {
    RETURN_IF_ERROR(Flush());
    if (close(fd_.release()) != 0) return SysError("closing", Name());
    if (!tmp_.empty() && rename(tmp_.c_str(), path_.c_str()) != 0) {
      return SysError("renaming into place", path_);
    }
    committed_ = true;
    return Ok();
  }

 private:
  const std::string& Name() const { return tmp_.empty() ? path_ : tmp_; }

  Status Flush() {
    if (buf_.empty()) return Ok();
    Status s = WriteAll(fd_.get(), buf_.data(), buf_.size(), Name());
    buf_.clear();
    return s;
  }

  const std::string path_;
  const std::string tmp_;
  UniqueFd fd_;
  std::vector<char> buf_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<ArchiveSink>> NewFileArchiveSink(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) return MakeError(EISDIR, path + " is a directory");
    // A pipe or a device cannot be replaced by a rename: written as it is, as skopeo does.
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return SysError("opening", path);
    return std::unique_ptr<ArchiveSink>(new FileArchiveSink(path, "", std::move(fd)));
  }
  RemoveStaleTemps(path);
  std::string tmp = TempPrefix(path) + "XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return SysError("creating", tmp);
  UniqueFd owned(fd);
  if (fchmod(fd, 0644) != 0) {
    unlink(tmp.c_str());
    return SysError("chmod", tmp);
  }
  return std::unique_ptr<ArchiveSink>(new FileArchiveSink(path, tmp, std::move(owned)));
}

}  // namespace regfs
