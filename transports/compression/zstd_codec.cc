// zstd through libzstd: the encoder compresses on kZstdWorkers threads of libzstd's own
// (whose output does not depend on how many there are, so it is deterministic) with frame
// checksums, as containers/image's encoder writes them; the decoder reads successive frames
// as one stream and bounds the window it will allocate.
#include <zstd.h>

#include <string>
#include <vector>

#include "transports/compression/codecs.h"

namespace regfs {
namespace {

// 128 MiB: the largest window zstd's own CLI decodes without being told to (a bound on what a
// hostile frame can make us allocate).
constexpr int kMaxWindowLog = 27;

// What each worker compresses at once. libzstd's default (4 windows: 8 MiB at level 3) makes a
// context hold ~50 MiB of job buffers, for every layer being converted at once; 1 MiB jobs
// cost a fraction of that and next to nothing in ratio (jobs overlap by part of a window).
// Fixed, so the output stays the same on every run.
constexpr int kZstdJobSize = 1 << 20;

Error ZstdError(size_t rc, const std::string& what) {
  return MakeError(EINVAL, what + ": " + ZSTD_getErrorName(rc));
}

struct FreeCCtx {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct FreeDCtx {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

class ZstdEncoder final : public StreamCodec {
 public:
  explicit ZstdEncoder(ByteSink out) : out_(std::move(out)), buf_(kCodecOutputChunk) {}

  Status Init(int level) {
    ctx_.reset(ZSTD_createCCtx());
    if (!ctx_) return MakeError(ENOMEM, "starting zstd compression: out of memory");
    for (auto [param, value] :
         {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_checksumFlag, 1},
          std::pair{ZSTD_c_nbWorkers, kZstdWorkers}, std::pair{ZSTD_c_jobSize, kZstdJobSize}}) {
      size_t rc = ZSTD_CCtx_setParameter(ctx_.get(), param, value);
      if (ZSTD_isError(rc)) return ZstdError(rc, "starting zstd compression");
    }
    return Ok();
  }

  Status Write(const char* data, size_t n) override { return Run(data, n, ZSTD_e_continue); }
  Status Finish() override { return Run(nullptr, 0, ZSTD_e_end); }

 private:
  Status Run(const char* data, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, n, 0};
    while (true) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t left = ZSTD_compressStream2(ctx_.get(), &out, &in, mode);
      if (ZSTD_isError(left)) return ZstdError(left, "zstd compression");
      if (out.pos > 0) RETURN_IF_ERROR(out_(buf_.data(), out.pos));
      // Continuing: done once the input is taken (the workers hold the rest). Ending: once
      // nothing is left to flush.
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return Ok();
    }
  }

  ByteSink out_;
  std::vector<char> buf_;
  std::unique_ptr<ZSTD_CCtx, FreeCCtx> ctx_;
};

class ZstdDecoder final : public StreamCodec {
 public:
  ZstdDecoder(ByteSink out, int64_t max_output)
      : out_(std::move(out), max_output), buf_(kCodecOutputChunk) {}

  Status Init() {
    ctx_.reset(ZSTD_createDCtx());
    if (!ctx_) return MakeError(ENOMEM, "starting zstd decompression: out of memory");
    size_t rc = ZSTD_DCtx_setParameter(ctx_.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
    if (ZSTD_isError(rc)) return ZstdError(rc, "starting zstd decompression");
    return Ok();
  }

  Status Write(const char* data, size_t n) override {
    ZSTD_inBuffer in{data, n, 0};
    while (true) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t consumed = in.pos;
      size_t rc = ZSTD_decompressStream(ctx_.get(), &out, &in);
      if (ZSTD_isError(rc)) return ZstdError(rc, "invalid zstd data");
      if (in.size > 0) started_ = true;
      RETURN_IF_ERROR(out_.Put(buf_.data(), out.pos));
      // 0: a frame ended and is flushed. A call that moved nothing (after a full buffer) only
      // says what the next frame would need.
      if (in.pos != consumed || out.pos > 0) frame_done_ = rc == 0;
      // A full output buffer may leave output pending even when all input is consumed.
      if (in.pos == in.size && out.pos < out.size) return Ok();
    }
  }

  Status Finish() override {
    if (!started_) return MakeError(EINVAL, "zstd stream is empty");
    if (!frame_done_) return MakeError(EINVAL, "zstd stream is truncated (unexpected end of data)");
    return Ok();
  }

 private:
  BoundedOutput out_;
  std::vector<char> buf_;
  std::unique_ptr<ZSTD_DCtx, FreeDCtx> ctx_;
  bool started_ = false;
  bool frame_done_ = false;
};

}  // namespace

Result<std::unique_ptr<StreamCodec>> NewZstdEncoder(int level, ByteSink out) {
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() || level == 0) {
    return MakeError(EINVAL, "zstd: invalid compression level: " + std::to_string(level) +
                                 " (1 to " + std::to_string(ZSTD_maxCLevel()) + ")");
  }
  auto enc = std::make_unique<ZstdEncoder>(std::move(out));
  RETURN_IF_ERROR(enc->Init(level));
  return std::unique_ptr<StreamCodec>(std::move(enc));
}

Result<std::unique_ptr<StreamCodec>> NewZstdDecoder(ByteSink out, int64_t max_output) {
  auto dec = std::make_unique<ZstdDecoder>(std::move(out), max_output);
  RETURN_IF_ERROR(dec->Init());
  return std::unique_ptr<StreamCodec>(std::move(dec));
}

}  // namespace regfs
