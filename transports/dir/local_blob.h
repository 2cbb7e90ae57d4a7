// Blob files in local directories (dir: and oci: layouts): streaming reads, and writes that
// become visible under their final name only when committed.
#pragma once

#include <functional>
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
  // The final name from the verified blob, for blobs whose digest is known only at Commit().
  using PathFor = std::function<Result<std::string>(const BlobInfo&)>;

  static Result<std::unique_ptr<BlobWriter>> Create(const std::string& path);
  // The temporary file is made beside `near`; Commit() renames it to path_for(blob).
  static Result<std::unique_ptr<BlobWriter>> Create(const std::string& near, PathFor path_for);
  ~FileBlobWriter() override;
  Status Write(const char* data, size_t n) override;
  Status Commit(const BlobInfo& blob) override;

 private:
  FileBlobWriter(PathFor path_for, std::string tmp, UniqueFd fd)
      : path_for_(std::move(path_for)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  const PathFor path_for_;
  const std::string tmp_;
  UniqueFd fd_;
  bool committed_ = false;
};

}  // namespace regfs
