// ArchiveSink: the sequential byte stream an archive destination writes to — a file that
// appears under its name only when the archive is complete, or the body of a request (a
// Docker engine's POST /images/load).
#pragma once

#include <cstddef>
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
};

// Writes to a temporary file beside `path`; Commit() flushes it and renames it to `path`.
Result<std::unique_ptr<ArchiveSink>> NewFileArchiveSink(const std::string& path);

}  // namespace regfs
