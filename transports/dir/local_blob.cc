#include "transports/dir/local_blob.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace regfs {

Status StreamFile(const std::string& path, const ByteSink& sink) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("opening", path);
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("reading", path);
    }
    if (n == 0) return Ok();
    RETURN_IF_ERROR(sink(buf.data(), static_cast<size_t>(n)));
  }
}

Result<std::unique_ptr<BlobWriter>> FileBlobWriter::Create(const std::string& path) {
  return Create(path, [path](const BlobInfo&) -> Result<std::string> { return path; });
}

Result<std::unique_ptr<BlobWriter>> FileBlobWriter::Create(const std::string& near,
                                                           PathFor path_for) {
  std::string tmp = TempPrefix(near) + "XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return SysError("creating", tmp);
  UniqueFd owned(fd);
  if (fchmod(fd, 0644) != 0) return SysError("chmod", tmp);
  return std::unique_ptr<BlobWriter>(
      new FileBlobWriter(std::move(path_for), tmp, std::move(owned)));
}

FileBlobWriter::~FileBlobWriter() {
  if (!committed_) unlink(tmp_.c_str());
}

Status FileBlobWriter::Write(const char* data, size_t n) {
  return WriteAll(fd_.get(), data, n, tmp_);
}

Status FileBlobWriter::Commit(const BlobInfo& blob) {
  ASSIGN_OR_RETURN(std::string path, path_for_(blob));
  if (close(fd_.release()) != 0) return SysError("closing", tmp_);
  if (rename(tmp_.c_str(), path.c_str()) != 0) return SysError("renaming to", path);
  committed_ = true;
  return Ok();
}

}  // namespace regfs
