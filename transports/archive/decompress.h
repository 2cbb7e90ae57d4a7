// Decompressing inputs for archive members and compressed archives: gzip (multi-member, as
// Go's reader reads it) and zstd, recognised by compression/'s DetectCompression. Pulled by
// a TarReader, where compression/'s codecs push: the archive is read as the tar parser asks.
// Each input is used from one thread.
#pragma once

#include <memory>
#include <string_view>

#include "transports/archive/tar_reader.h"
#include "transports/compression/compression.h"

namespace regfs {

// EOPNOTSUPP for streams starting as bzip2 or xz do (containers/image reads them; regfs does
// not), so that they are not mistaken for a plain tar.
Status RefuseUnsupportedCompression(std::string_view head);

// Reads `in` decompressed; kNone returns `in` as it is. A stream that ends inside a frame is
// an EIO error.
Result<std::unique_ptr<TarInput>> NewDecompressingInput(Compression c,
                                                        std::unique_ptr<TarInput> in);

}  // namespace regfs
