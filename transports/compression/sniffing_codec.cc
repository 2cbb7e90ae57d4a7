// The codec that decides what to do with a stream from its first bytes, and the identity.
#include <string>
#include <utility>

#include "transports/compression/codecs.h"

namespace regfs {
namespace {

class SniffingCodec final : public StreamCodec {
 public:
  explicit SniffingCodec(CodecChooser choose) : choose_(std::move(choose)) {}

  Status Write(const char* data, size_t n) override {
    if (inner_) return inner_->Write(data, n);
    size_t take = std::min(n, kCompressionSniffBytes - head_.size());
    head_.append(data, take);
    if (head_.size() < kCompressionSniffBytes) return Ok();
    RETURN_IF_ERROR(Start());
    return inner_->Write(data + take, n - take);
  }

  Status Finish() override {
    if (!inner_) RETURN_IF_ERROR(Start());  // a stream shorter than the magic numbers
    return inner_->Finish();
  }

 private:
  Status Start() {
    ASSIGN_OR_RETURN(inner_, choose_(DetectCompression(head_)));
    Status s = inner_->Write(head_.data(), head_.size());
    head_.clear();
    return s;
  }

  CodecChooser choose_;
  std::string head_;
  std::unique_ptr<StreamCodec> inner_;
};

// Copies input to output, counting it against a bound.
class Identity final : public StreamCodec {
 public:
  Identity(ByteSink out, int64_t max_output) : out_(std::move(out)), max_output_(max_output) {}

  Status Write(const char* data, size_t n) override {
    total_ += static_cast<int64_t>(n);
    if (max_output_ >= 0 && total_ > max_output_) {
      return MakeError(EFBIG, "more than " + std::to_string(max_output_) + " bytes");
    }
    return n == 0 ? Ok() : out_(data, n);
  }
  Status Finish() override { return Ok(); }

 private:
  ByteSink out_;
  const int64_t max_output_;
  int64_t total_ = 0;
};

}  // namespace

std::unique_ptr<StreamCodec> NewSniffingCodec(CodecChooser choose) {
  return std::make_unique<SniffingCodec>(std::move(choose));
}

std::unique_ptr<StreamCodec> NewAutoDecoder(ByteSink out, int64_t max_output) {
  return NewSniffingCodec(
      [out = std::move(out), max_output](Compression c) { return NewDecoder(c, out, max_output); });
}

std::unique_ptr<StreamCodec> NewIdentityCodec(ByteSink out, int64_t max_output) {
  return std::make_unique<Identity>(std::move(out), max_output);
}

}  // namespace regfs
