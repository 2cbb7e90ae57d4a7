// Layer compression: which algorithm a stream or a media type uses, and streaming codecs
// (StreamCodec) that encode or decode it on its way from one ByteSink-style producer to a sink.
//
// A codec is used by one thread at a time; each encoder runs worker threads of its own (gzip:
// kGzipWorkers compressing a member each; zstd: libzstd's ZSTD_c_nbWorkers), which is what
// makes recompression use both cores.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transports/util/byte_sink.h"
#include "transports/util/result.h"

namespace regfs {

enum class Compression { kNone, kGzip, kZstd };

// "gzip", "zstd", or "uncompressed" (for messages; the first two are also the flag values).
std::string_view CompressionName(Compression c);

// "gzip" or "zstd" → the algorithm; EINVAL naming the text otherwise (the --dest-compress-format
// values containers/image knows; zstd:chunked is not written).
Result<Compression> ParseCompressionName(std::string_view name);

// How many leading bytes DetectCompression() needs to decide.
inline constexpr size_t kCompressionSniffBytes = 4;

// The algorithm of a stream from its first bytes (gzip: 1f 8b, zstd: 28 b5 2f fd), as
// containers/image's DetectCompression does; anything else — fewer bytes too — is kNone.
Compression DetectCompression(std::string_view first_bytes);

// The compression a layer media type names: kNone for the uncompressed tar types, nullopt for
// a type that is not a known layer type (a config, an artifact, a foreign layer type).
std::optional<Compression> LayerMediaTypeCompression(std::string_view media_type);

// A streaming transformation: Write() feeds input and passes the output produced so far to the
// sink given at creation; Finish() ends the stream (an encoder writes what it holds and its
// trailer, a decoder checks that the input ended at the end of a complete stream). An error
// from the sink is returned as is; after any error the codec is not used again.
class StreamCodec {
 public:
  virtual ~StreamCodec() = default;
  virtual Status Write(const char* data, size_t n) = 0;
  virtual Status Finish() = 0;
};

// The default levels: Go's compress/gzip DefaultCompression, -1, which skopeo uses when no
// --dest-compress-level is given (the encoder compresses it to skopeo's output size or less,
// at less than the CPU of level 6: libdeflate's level 2), and zstd's default, 3.
inline constexpr int kDefaultGzipLevel = -1;
inline constexpr int kDefaultZstdLevel = 3;
// Threads each encoder compresses with, besides the caller's.
inline constexpr int kZstdWorkers = 2;
inline constexpr int kGzipWorkers = 2;

// Encoders. `level` is in the algorithm's own range (gzip -2…9 as Go's compress/gzip: -2
// Huffman only, -1 the default, 0 stored; zstd 1…22 and the negative fast levels); a level
// outside it is EINVAL. Output is deterministic: the same input and level give the same bytes
// (gzip: a member per 1 MiB of input, headers without time or name; zstd frames are the same
// with any number of workers).
Result<std::unique_ptr<StreamCodec>> NewGzipEncoder(int level, ByteSink out);
Result<std::unique_ptr<StreamCodec>> NewZstdEncoder(int level, ByteSink out);
// kNone is the identity; std::nullopt level means the algorithm's default.
Result<std::unique_ptr<StreamCodec>> NewEncoder(Compression c, std::optional<int> level,
                                                ByteSink out);

// Decoders. Concatenated gzip members and zstd frames are one stream, as Go's readers take
// them; bytes after the end that do not start another member, a truncated stream and corrupt
// data are EINVAL naming what is wrong. More than `max_output` bytes of output (when ≥ 0) is
// EFBIG. kNone copies the input, under the same bound.
Result<std::unique_ptr<StreamCodec>> NewDecoder(Compression c, ByteSink out,
                                                int64_t max_output = -1);

// Holds the first kCompressionSniffBytes of a stream, then asks `choose` for the codec to run
// it through given the compression detected, and feeds that codec everything from the start.
using CodecChooser = std::function<Result<std::unique_ptr<StreamCodec>>(Compression detected)>;
std::unique_ptr<StreamCodec> NewSniffingCodec(CodecChooser choose);

// A decoder of whatever the stream turns out to be (uncompressed passes through).
std::unique_ptr<StreamCodec> NewAutoDecoder(ByteSink out, int64_t max_output = -1);

// Decodes or encodes a whole buffer (tests, small blobs).
Result<std::string> DecodeAll(Compression c, std::string_view data, int64_t max_output = -1);
Result<std::string> EncodeAll(Compression c, std::optional<int> level, std::string_view data);

}  // namespace regfs
