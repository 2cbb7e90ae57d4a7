// libFuzzer target: any bytes, as a tar stream (decompressed first when they start as gzip or
// zstd), through TarReader — every entry and all its data — under tight limits. Finds
// crashes, overreads and unbounded allocations in the parser; errors are expected.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "transports/archive/decompress.h"
#include "transports/archive/tar_reader.h"

namespace {

class BytesInput final : public regfs::TarInput {
 public:
  BytesInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  regfs::Result<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, size_ - pos_);
    std::memcpy(buf, data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), std::min<size_t>(size, 8));
  auto in = regfs::NewDecompressingInput(regfs::DetectCompression(head),
                                         std::make_unique<BytesInput>(data, size));
  if (!in.ok()) return 0;
  regfs::TarLimits limits;
  limits.max_entries = 1000;
  limits.max_extended_header = 64 << 10;
  regfs::TarReader reader(**in, limits);
  char buf[4096];
  for (int i = 0; i < 2000; ++i) {
    auto e = reader.Next();
    if (!e.ok() || !*e) break;
    int64_t left = 64 << 20;  // decompression bombs stop here
    while (left > 0) {
      auto n = reader.ReadData(buf, sizeof buf);
      if (!n.ok() || *n == 0) break;
      left -= static_cast<int64_t>(*n);
    }
  }
  return 0;
}
