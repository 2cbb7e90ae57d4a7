// The codecs behind NewEncoder()/NewDecoder(), one file each; internal to this folder.
#pragma once

#include <memory>

#include "transports/compression/compression.h"

namespace regfs {

// What each codec hands its sink at most at once, and reads into before it does.
inline constexpr size_t kCodecOutputChunk = 1 << 20;

Result<std::unique_ptr<StreamCodec>> NewGzipDecoder(ByteSink out, int64_t max_output);
Result<std::unique_ptr<StreamCodec>> NewZstdDecoder(ByteSink out, int64_t max_output);
std::unique_ptr<StreamCodec> NewIdentityCodec(ByteSink out, int64_t max_output);

// Counts decoded output against a bound (negative: none) and passes it on.
class BoundedOutput {
 public:
  BoundedOutput(ByteSink out, int64_t max_output) : out_(std::move(out)), max_(max_output) {}
  Status Put(const char* data, size_t n) {
    if (n == 0) return Ok();
    total_ += static_cast<int64_t>(n);
    if (max_ >= 0 && total_ > max_) {
      return MakeError(EFBIG,
                       "decompressed data is larger than " + std::to_string(max_) + " bytes");
    }
    return out_(data, n);
  }

 private:
  ByteSink out_;
  const int64_t max_;
  int64_t total_ = 0;
};

}  // namespace regfs
