// TarWriter: writes a tar stream as Go's archive/tar writes the archives containers/image
// makes — ustar headers (a long name split into prefix and name, else a PAX header), octal
// fields zero-padded and NUL-terminated, mtime 0 and uid/gid 0 unless told otherwise, and two
// zero blocks at the end — so that an archive regfs writes matches skopeo's byte for byte.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "transports/util/byte_sink.h"
#include "transports/util/result.h"

namespace regfs {

struct TarHeader {
  std::string name;
  std::string linkname;
  char type = '0';  // '0' file, '2' symlink, '5' directory
  int64_t mode = 0444;
  int64_t size = 0;  // for files: exactly this many bytes must follow through WriteData()
  int64_t mtime = 0;
  int64_t uid = 0;
  int64_t gid = 0;
};

class TarWriter {
 public:
  explicit TarWriter(ByteSink out) : out_(std::move(out)) {}

  // Starts an entry. The previous entry's data must be complete.
  Status WriteHeader(const TarHeader& h);

  // An entry whose name and size are known only at its end (a layer re-encoded on its way,
  // named by its digest), for a stream that can be rewritten in place: BeginDeferred() writes
  // a placeholder header block and returns its offset; after the data, EndDeferred(h) pads it
  // and returns the real header — one block, h.size being what was written — for the caller
  // to write over the placeholder.
  Result<int64_t> BeginDeferred();
  Result<std::string> EndDeferred(const TarHeader& h);
  // The current entry's data; more than its size is refused.
  Status WriteData(const char* data, size_t n);
  // A whole regular file (mode 0444, as containers/image writes them).
  Status WriteFile(const std::string& name, std::string_view data);
  Status WriteSymlink(const std::string& name, const std::string& target);
  // Pads the last entry and writes the end-of-archive blocks.
  Status Finish();

  int64_t offset() const { return offset_; }

 private:
  Status Emit(const char* data, size_t n);
  Status EndEntry();
  // The header blocks of `h`: a PAX header first when its name needs one.
  static Result<std::string> HeaderBlocks(const TarHeader& h);

  ByteSink out_;
  int64_t offset_ = 0;
  int64_t remaining_ = 0;  // data bytes the current entry still needs
  int64_t entry_size_ = 0;
  bool deferred_ = false;  // the current entry's size is open
  bool finished_ = false;
};

}  // namespace regfs
