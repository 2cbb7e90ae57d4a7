#include "transports/archive/decompress.h"

#include <zlib.h>
#include <zstd.h>

#include <vector>

namespace regfs {
namespace {

constexpr size_t kInputBuffer = 256 << 10;

class GzipInput final : public TarInput {
 public:
  explicit GzipInput(std::unique_ptr<TarInput> in) : in_(std::move(in)), buf_(kInputBuffer) {}
  ~GzipInput() override {
    if (initialized_) inflateEnd(&z_);
  }

  Status Init() {
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) return MakeError(ENOMEM, "inflateInit2");
    initialized_ = true;
    return Ok();
  }

  Result<size_t> Read(char* out, size_t n) override {
    if (n == 0 || done_) return size_t{0};
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    while (z_.avail_out == static_cast<uInt>(std::min<size_t>(n, 1u << 30))) {
      if (z_.avail_in == 0) {
        ASSIGN_OR_RETURN(size_t got, in_->Read(buf_.data(), buf_.size()));
        if (got == 0) {
          if (member_ended_) {
            done_ = true;
            return size_t{0};
          }
          return MakeError(EIO, "gzip stream truncated");
        }
        z_.next_in = reinterpret_cast<Bytef*>(buf_.data());
        z_.avail_in = static_cast<uInt>(got);
      }
      if (member_ended_) {
        // Another member follows (concatenated gzip streams read as one, as Go reads them).
        if (inflateReset(&z_) != Z_OK) return MakeError(EIO, "inflateReset");
        member_ended_ = false;
      }
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return MakeError(EIO,
                         std::string("gzip data is corrupt: ") + (z_.msg ? z_.msg : "inflate"));
      }
    }
    return n - z_.avail_out;
  }

 private:
  std::unique_ptr<TarInput> in_;
  std::vector<char> buf_;
  z_stream z_{};
  bool initialized_ = false;
  bool member_ended_ = false;
  bool done_ = false;
};

struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

class ZstdInput final : public TarInput {
 public:
  explicit ZstdInput(std::unique_ptr<TarInput> in)
      : in_(std::move(in)), buf_(kInputBuffer), dctx_(ZSTD_createDCtx()) {}

  Result<size_t> Read(char* out, size_t n) override {
    if (n == 0) return size_t{0};
    if (!dctx_) return MakeError(ENOMEM, "ZSTD_createDCtx");
    ZSTD_outBuffer o{out, n, 0};
    while (o.pos == 0) {
      if (in_pos_ == in_size_) {
        ASSIGN_OR_RETURN(size_t got, in_->Read(buf_.data(), buf_.size()));
        if (got == 0) {
          if (frame_ended_) return size_t{0};
          return MakeError(EIO, "zstd stream truncated");
        }
        in_pos_ = 0;
        in_size_ = got;
      }
      ZSTD_inBuffer i{buf_.data(), in_size_, in_pos_};
      size_t rc = ZSTD_decompressStream(dctx_.get(), &o, &i);
      in_pos_ = i.pos;
      if (ZSTD_isError(rc)) {
        return MakeError(EIO, std::string("zstd data is corrupt: ") + ZSTD_getErrorName(rc));
      }
      frame_ended_ = rc == 0;
    }
    return o.pos;
  }

 private:
  std::unique_ptr<TarInput> in_;
  std::vector<char> buf_;
  std::unique_ptr<ZSTD_DCtx, DctxFree> dctx_;
  size_t in_pos_ = 0, in_size_ = 0;
  bool frame_ended_ = true;
};

}  // namespace

Status RefuseUnsupportedCompression(std::string_view h) {
  auto starts = [&](std::string_view magic) { return h.substr(0, magic.size()) == magic; };
  if (starts("BZh")) return MakeError(EOPNOTSUPP, "bzip2-compressed data is not supported");
  if (starts("\xfd"
             "7zXZ"))
    return MakeError(EOPNOTSUPP, "xz-compressed data is not supported");
  return Ok();
}

Result<std::unique_ptr<TarInput>> NewDecompressingInput(Compression c,
                                                        std::unique_ptr<TarInput> in) {
  switch (c) {
    case Compression::kNone:
      return in;
    case Compression::kGzip: {
      auto g = std::make_unique<GzipInput>(std::move(in));
      RETURN_IF_ERROR(g->Init());
      return std::unique_ptr<TarInput>(std::move(g));
    }
    case Compression::kZstd:
      return std::unique_ptr<TarInput>(std::make_unique<ZstdInput>(std::move(in)));
  }
  return MakeError(EINVAL, "unknown compression");
}

}  // namespace regfs
