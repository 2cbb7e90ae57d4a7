// TarReader: a streaming reader of tar archives — ustar, PAX extended headers (path,
// linkpath, size and the rest kept as records), GNU long names ('L', 'K') and base-256
// numbers — that reports each entry's header and where its data starts in the stream.
//
// Hand-written rather than libarchive: archive transports read members by offset (pread on a
// seekable tar, a skip on a stream), and the rootfs view indexes layers by entry offset; both
// need the data offsets libarchive does not give.
//
// Everything read is bounded (TarLimits); names that are absolute or climb out with ".."
// are refused, naming the entry. Not thread-safe: one reader per stream.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transports/util/result.h"

namespace regfs {

// Where a TarReader's bytes come from.
class TarInput {
 public:
  virtual ~TarInput() = default;
  // Up to `n` bytes; 0 only at the end of the stream.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Moves `n` bytes ahead; the default reads and discards them. Fails at the end of the stream.
  virtual Status Skip(int64_t n);
};

struct TarLimits {
  int64_t max_entries = 1 << 20;
  size_t max_name = 4096;                     // path and link names, also from PAX or GNU
  size_t max_extended_header = 1 << 20;       // a PAX header or a GNU long-name entry
  int64_t max_entry_size = int64_t{1} << 42;  // 4 TiB
};

struct TarEntry {
  enum Type : char {
    kFile = '0',
    kHardLink = '1',
    kSymlink = '2',
    kCharDevice = '3',
    kBlockDevice = '4',
    kDirectory = '5',
    kFifo = '6',
  };
  std::string name;      // as stored, with PAX/GNU long names applied
  std::string linkname;  // symlink target or hard-link name, as stored
  char type = kFile;     // '\0' and '7' are reported as kFile
  int64_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;  // bytes of data following the header (0 for links and directories)
  int64_t mtime = 0;
  std::string uname;
  std::string gname;
  int64_t devmajor = 0;
  int64_t devminor = 0;
  std::map<std::string, std::string> pax;  // every PAX record of the entry (xattrs …)
  int64_t header_offset = 0;  // where its first header block (PAX or GNU included) starts
  int64_t data_offset = 0;    // where its data starts in the stream
};

// path.Clean of a tar name: "./a//b/" → "a/b"; "" → ".". Names are compared cleaned.
std::string CleanTarPath(std::string_view name);

// OK for a relative name none of whose components is ".."; else EINVAL naming it.
Status CheckTarName(std::string_view name);

class TarReader {
 public:
  explicit TarReader(TarInput& in, TarLimits limits = {}) : in_(in), limits_(limits) {}

  // The next entry, nullopt at the end of the archive. The entry's data is next in the
  // stream: read it with ReadData(), or leave it — Next() skips what is left.
  Result<std::optional<TarEntry>> Next();

  // Up to `n` bytes of the current entry's data; 0 at its end. EIO when the stream ends first.
  Result<size_t> ReadData(char* buf, size_t n);

  // Bytes of the stream consumed so far.
  int64_t offset() const { return offset_; }

 private:
  Status ReadFull(char* buf, size_t n);
  Status SkipBytes(int64_t n);
  Result<std::string> ReadExtended(int64_t size, const char* what);

  TarInput& in_;
  const TarLimits limits_;
  int64_t offset_ = 0;
  int64_t remaining_ = 0;  // data bytes of the current entry not yet read
  int64_t padding_ = 0;    // then padding to the block boundary
  int64_t entries_ = 0;
  bool done_ = false;
};

// A TarInput over bytes [begin, end) of a file descriptor, by pread: Skip() costs nothing.
// The descriptor is borrowed; several inputs may read one descriptor from several threads.
class FdTarInput final : public TarInput {
 public:
  FdTarInput(int fd, int64_t begin, int64_t end) : fd_(fd), pos_(begin), end_(end) {}
  Result<size_t> Read(char* buf, size_t n) override;
  Status Skip(int64_t n) override;

 private:
  const int fd_;
  int64_t pos_;
  const int64_t end_;
};

// The next `n` bytes of another input.
class LimitedTarInput final : public TarInput {
 public:
  LimitedTarInput(std::unique_ptr<TarInput> in, int64_t n) : in_(std::move(in)), left_(n) {}
  Result<size_t> Read(char* buf, size_t n) override;
  Status Skip(int64_t n) override;

 private:
  std::unique_ptr<TarInput> in_;
  int64_t left_;
};

}  // namespace regfs
