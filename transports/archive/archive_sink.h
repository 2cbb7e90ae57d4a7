// ArchiveSink: the sequential byte stream an archive destination writes to — a file that
// appears under its name only when the archive is complete, or the body of a request (a
// Docker engine's POST /images/load).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "transports/util/result.h"

namespace regfs {

// Receives the archive's bytes in order, from one thread at a time. Destroyed without
// Commit(), it discards what it was given (removes the temporary file, aborts the request).
class ArchiveSink {
 public:
  virtual ~ArchiveSink() = default;
  virtual Status Write(const char* data, size_t n) = 0;
  // Every byte has been written: make the archive visible (rename into place, finish the
  // request and report the receiver's verdict).
  virtual Status Commit() = 0;

  // Capability: bytes already written can be overwritten in place (a file can, a request
  // body cannot). Then a tar entry whose size is known only at its end streams straight
  // through and gets its header afterwards; otherwise it is spooled to a temporary file first.
  virtual bool CanRewrite() const { return false; }
  // Overwrites `n` bytes at `offset` (counted from the first byte written).
  virtual Status Rewrite(int64_t offset, const char* data, size_t n) {
    (void)offset;
    (void)data;
    (void)n;
    return MakeError(EOPNOTSUPP, "this archive sink cannot rewrite what it wrote");
  }
};

// Writes to a temporary file beside `path`; Commit() flushes it and renames it to `path`.
Result<std::unique_ptr<ArchiveSink>> NewFileArchiveSink(const std::string& path);

}  // namespace regfs
