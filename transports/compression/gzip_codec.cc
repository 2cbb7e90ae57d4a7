// gzip through zlib: the encoder writes the header Go's compress/gzip writes (no name, no
// time, OS "unknown"), so the same input gives the same bytes on every run; the decoder reads
// concatenated members as one stream, as Go's gzip.Reader does.
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "transports/compression/codecs.h"

namespace regfs {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip wrapper

Error ZlibError(const z_stream& z, int rc, const char* what) {
  std::string why = z.msg ? z.msg : ("zlib error " + std::to_string(rc));
  return MakeError(rc == Z_MEM_ERROR ? ENOMEM : EINVAL, std::string(what) + ": " + why);
}

class GzipEncoder final : public StreamCodec {
 public:
  explicit GzipEncoder(ByteSink out) : out_(std::move(out)), buf_(kCodecOutputChunk) {}
  ~GzipEncoder() override {
    if (ready_) deflateEnd(&z_);
  }

  Status Init(int level) {
    // Go's levels: -2 HuffmanOnly, -1 default, 0…9; zlib takes the same numbers but spells
    // Huffman-only as a strategy.
    int strategy = level == -2 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY;
    int zlevel = level == -2 ? 1 : level;
    int rc = deflateInit2(&z_, zlevel, Z_DEFLATED, kGzipWindowBits, 8, strategy);
    if (rc != Z_OK) return ZlibError(z_, rc, "starting gzip compression");
    ready_ = true;
    std::memset(&header_, 0, sizeof header_);
    header_.os = 255;  // "unknown", as Go writes it
    rc = deflateSetHeader(&z_, &header_);
    if (rc != Z_OK) return ZlibError(z_, rc, "starting gzip compression");
    return Ok();
  }

  Status Write(const char* data, size_t n) override { return Run(data, n, Z_NO_FLUSH); }
  Status Finish() override { return Run(nullptr, 0, Z_FINISH); }

 private:
  Status Run(const char* data, size_t n, int flush) {
    // zlib counts in uInt: feed very large writes in pieces.
    do {
      size_t piece = std::min<size_t>(n, 1u << 30);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
      z_.avail_in = static_cast<uInt>(piece);
      int piece_flush = piece == n ? flush : Z_NO_FLUSH;
      while (true) {
        z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
        z_.avail_out = static_cast<uInt>(buf_.size());
        int rc = deflate(&z_, piece_flush);
        if (rc == Z_STREAM_ERROR) return ZlibError(z_, rc, "gzip compression");
        size_t have = buf_.size() - z_.avail_out;
        if (have > 0) RETURN_IF_ERROR(out_(buf_.data(), have));
        if (piece_flush == Z_FINISH ? rc == Z_STREAM_END : z_.avail_out != 0) break;
      }
      data += piece;
      n -= piece;
    } while (n > 0);
    return Ok();
  }

  ByteSink out_;
  std::vector<char> buf_;
  z_stream z_{};
  gz_header header_{};
  bool ready_ = false;
};

class GzipDecoder final : public StreamCodec {
 public:
  GzipDecoder(ByteSink out, int64_t max_output)
      : out_(std::move(out), max_output), buf_(kCodecOutputChunk) {}
  ~GzipDecoder() override {
    if (ready_) inflateEnd(&z_);
  }

  Status Init() {
    int rc = inflateInit2(&z_, kGzipWindowBits);
    if (rc != Z_OK) return ZlibError(z_, rc, "starting gzip decompression");
    ready_ = true;
    return Ok();
  }

  Status Write(const char* data, size_t n) override {
    while (n > 0) {
      size_t piece = std::min<size_t>(n, 1u << 30);
      RETURN_IF_ERROR(Inflate(data, piece));
      data += piece;
      n -= piece;
    }
    return Ok();
  }

  Status Finish() override {
    if (!started_) return MakeError(EINVAL, "gzip stream is empty");
    if (in_member_) return MakeError(EINVAL, "gzip stream is truncated (unexpected end of data)");
    return Ok();
  }

 private:
  Status Inflate(const char* data, size_t n) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z_.avail_in = static_cast<uInt>(n);
    while (true) {
      if (!in_member_) {
        if (z_.avail_in == 0) break;
        // Another member follows the one that ended: it must be gzip too.
        if (started_) inflateReset(&z_);
        started_ = true;
        in_member_ = true;
      }
      z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
      z_.avail_out = static_cast<uInt>(buf_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_NEED_DICT) return MakeError(EINVAL, "gzip data needs a preset dictionary");
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return ZlibError(z_, rc, "invalid gzip data");
      }
      RETURN_IF_ERROR(out_.Put(buf_.data(), buf_.size() - z_.avail_out));
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        continue;
      }
      // A full output buffer may leave output pending even when all input is consumed.
      if (z_.avail_out != 0 || rc == Z_BUF_ERROR) break;
    }
    return Ok();
  }

  BoundedOutput out_;
  std::vector<char> buf_;
  z_stream z_{};
  bool ready_ = false;
  bool started_ = false;
  bool in_member_ = false;
};

}  // namespace

Result<std::unique_ptr<StreamCodec>> NewGzipEncoder(int level, ByteSink out) {
  if (level < -2 || level > 9) {
    return MakeError(EINVAL, "gzip: invalid compression level: " + std::to_string(level));
  }
  auto enc = std::make_unique<GzipEncoder>(std::move(out));
  RETURN_IF_ERROR(enc->Init(level));
  return std::unique_ptr<StreamCodec>(std::move(enc));
}

Result<std::unique_ptr<StreamCodec>> NewGzipDecoder(ByteSink out, int64_t max_output) {
  auto dec = std::make_unique<GzipDecoder>(std::move(out), max_output);
  RETURN_IF_ERROR(dec->Init());
  return std::unique_ptr<StreamCodec>(std::move(dec));
}

}  // namespace regfs
