// Decompressing inputs for archive members and compressed archives: gzip (multi-member, as
// Go's reader reads it) and zstd, recognised by their magic bytes as containers/image's
// AutoDecompress recognises them. Each input is used from one thread.
#pragma once

#include <memory>
#include <string_view>

#include "transports/archive/tar_reader.h"

namespace regfs {

enum class Compression { kNone, kGzip, kZstd, kBzip2, kXz };

// From the first bytes of a stream (6 are enough).
Compression DetectCompression(std::string_view head);

// Reads `in` decompressed. kNone returns `in` as it is; bzip2 and xz are EOPNOTSUPP.
// A stream that ends inside a frame is an EIO error.
Result<std::unique_ptr<TarInput>> NewDecompressingInput(Compression c,
                                                        std::unique_ptr<TarInput> in);

}  // namespace regfs
