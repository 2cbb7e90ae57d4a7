// Blob files in local directories (dir: and oci: layouts): streaming reads, and writes that
// become visible under their final name only when committed.
#pragma once

#include <memory>
#include <string>

#include "transports/types/image_destination.h"
#include "transports/util/byte_sink.h"
#include "transports/util/file_util.h"

namespace regfs {

// Streams a file to `sink` in 1 MiB reads.
Status StreamFile(const std::string& path, const ByteSink& sink);

// Writes to a temporary file beside `path`; Commit() renames it into place, destruction
// without Commit() removes it.
class FileBlobWriter final : public BlobWriter {
 public:
  static Result<std::unique_ptr<BlobWriter>> Create(const std::string& path);
  ~FileBlobWriter() override;
  Status Write(const char* data, size_t n) override;
  Status Commit() override;

 private:
  FileBlobWriter(std::string path, std::string tmp, UniqueFd fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  const std::string path_;
  const std::string tmp_;
  UniqueFd fd_;
  bool committed_ = false;
};

}  // namespace regfs
