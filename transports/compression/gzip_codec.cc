// gzip. The encoder cuts its input into kGzipBlock-byte blocks and compresses each into a gzip
// member of its own on kGzipWorkers threads — with libdeflate, which compresses a whole buffer
// at zlib's ratio for the same level (a little better) in well under half zlib's time, where
// zlib would be one thread streaming one member. Members are written in input order, so a
// layer is a concatenation of gzip members (RFC 1952 §2.2; Go's gzip.Reader, zlib's gunzip and
// every registry client read them as one stream), and the output depends only on the input and the
// level: the same bytes on every run, with any number of threads. Each member's header is the
// one Go's compress/gzip writes (no name, no time, OS "unknown"). The decoder (zlib) reads
// concatenated members as one stream, as Go's gzip.Reader does.
#include <libdeflate.h>
#include <zlib.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transports/compression/codecs.h"

namespace regfs {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip wrapper

// Input per member: large enough that a member loses next to nothing in ratio for starting
// without a window (<0.5% on layer-like data), small enough that a few in flight stay cheap.
// Fixed, so the output stays the same on every run.
constexpr size_t kGzipBlock = 1 << 20;
// Blocks submitted and not yet written out: one for every worker and one ready to go.
constexpr size_t kMaxJobs = kGzipWorkers + 1;

Error ZlibError(const z_stream& z, int rc, const char* what) {
  std::string why = z.msg ? z.msg : ("zlib error " + std::to_string(rc));
  return MakeError(rc == Z_MEM_ERROR ? ENOMEM : EINVAL, std::string(what) + ": " + why);
}

// The incompressibility probe: kProbes samples of kProbeBytes spread over a block, compressed
// at level 1; when together they shrink by less than 1%, the block is stored instead of being
// searched for matches that are not there (already-compressed files, random data), as fast
// deflate encoders do — the output is as large either way, at a fraction of the time.
constexpr size_t kProbes = 8;
constexpr size_t kProbeBytes = 8 << 10;

struct FreeCompressor {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
using Compressor = std::unique_ptr<libdeflate_compressor, FreeCompressor>;

// The libdeflate level of the default (-1, Go's DefaultCompression). What the default promises
// is skopeo's output size at no more CPU, not zlib's level 6: skopeo's DefaultCompression is
// klauspost/compress's level 6 (through pgzip), a fast matcher whose output on layer data
// (files of /usr: binaries, libraries, text) is 4-7% larger than level 6's of libdeflate or
// zlib (on one sample between zlib's 3 and 4). libdeflate's level 2 is 0.5-1.3% smaller than
// skopeo's on those files in 55-63% of the CPU of its level 6; its level 1 is 1.6-3% larger.
// A level asked for keeps zlib's meaning.
constexpr int kDefaultDeflateLevel = 2;

// XFL as Go sets it for the level asked for (also on a stored block): 2 for the best
// compression, 4 for the fastest, else 0.
char GoXfl(int level) { return static_cast<char>(level == 9 ? 2 : level == 1 ? 4 : 0); }

// One block's member. A compressed one is held in `bytes`, a buffer kept from block to block
// (no allocation, no zero-filling per block); a stored one is written from its input as it is
// by WriteStored(), so incompressible data is never copied into another buffer.
struct Member {
  bool stored = false;
  uint32_t crc = 0;  // of a stored member's input
  std::unique_ptr<char[]> bytes;
  size_t capacity = 0, size = 0;

  char* Reserve(size_t n) {
    if (capacity < n) {
      bytes = std::make_unique_for_overwrite<char[]>(n);
      capacity = n;
    }
    return bytes.get();
  }
};

// A stored member, byte for byte what libdeflate's level 0 writes for non-empty input: the
// header, the input in stored blocks of at most 65535 bytes (a 5-byte header each: BFINAL on
// the last, BTYPE 00, LEN, NLEN), the trailer (CRC-32 and size, little-endian).
Status WriteStored(std::string_view in, uint32_t crc, char xfl, const ByteSink& out) {
  const char header[10] = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, xfl, '\xff'};
  RETURN_IF_ERROR(out(header, sizeof header));
  size_t at = 0;
  do {
    size_t len = std::min<size_t>(in.size() - at, 0xffff);
    bool last = at + len == in.size();
    const char block[5] = {static_cast<char>(last ? 1 : 0), static_cast<char>(len & 0xff),
                           static_cast<char>(len >> 8), static_cast<char>(~len & 0xff),
                           static_cast<char>((~len >> 8) & 0xff)};
    RETURN_IF_ERROR(out(block, sizeof block));
    RETURN_IF_ERROR(out(in.data() + at, len));
    at += len;
  } while (at < in.size());
  const uint32_t isize = static_cast<uint32_t>(in.size());
  const char trailer[8] = {static_cast<char>(crc),         static_cast<char>(crc >> 8),
                           static_cast<char>(crc >> 16),   static_cast<char>(crc >> 24),
                           static_cast<char>(isize),       static_cast<char>(isize >> 8),
                           static_cast<char>(isize >> 16), static_cast<char>(isize >> 24)};
  return out(trailer, sizeof trailer);
}

// Compresses one block into one gzip member at a Go compress/gzip level (-2…9). One per
// thread: libdeflate's compressors hold their match-finder tables between calls.
class MemberCompressor {
 public:
  explicit MemberCompressor(int level)
      : level_(level), deflate_level_(level == -1 ? kDefaultDeflateLevel : level) {}

  Status Compress(std::string_view in, Member* out) {
    out->stored = false;
    if (level_ == -2) {
      ASSIGN_OR_RETURN(std::string huffman, HuffmanOnly(in));
      std::memcpy(out->Reserve(huffman.size()), huffman.data(), huffman.size());
      out->size = huffman.size();
      return Ok();
    }
    bool store = deflate_level_ == 0;
    if (!store) {
      ASSIGN_OR_RETURN(store, Incompressible(in));
    }
    if (store && !in.empty()) {
      out->stored = true;
      out->crc = libdeflate_crc32(0, in.data(), in.size());
      return Ok();
    }
    ASSIGN_OR_RETURN(libdeflate_compressor * deflater, Get(store ? 0 : deflate_level_));
    size_t bound = libdeflate_gzip_compress_bound(deflater, in.size());
    size_t n = libdeflate_gzip_compress(deflater, in.data(), in.size(), out->Reserve(bound), bound);
    if (n == 0) return MakeError(EINVAL, "gzip compression: output larger than its bound");
    out->size = n;
    out->bytes[8] = GoXfl(level_);
    return Ok();
  }

  char xfl() const { return GoXfl(level_); }

 private:
  // Go's HuffmanOnly has no libdeflate equivalent; zlib spells it as a strategy.
  static Result<std::string> HuffmanOnly(std::string_view in) {
    z_stream z{};
    int rc = deflateInit2(&z, 1, Z_DEFLATED, kGzipWindowBits, 8, Z_HUFFMAN_ONLY);
    if (rc != Z_OK) return ZlibError(z, rc, "starting gzip compression");
    gz_header header{};
    header.os = 255;  // "unknown", as Go writes it
    deflateSetHeader(&z, &header);
    std::string out(deflateBound(&z, in.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    rc = deflate(&z, Z_FINISH);
    out.resize(out.size() - z.avail_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return MakeError(EINVAL, "gzip compression failed");
    return out;
  }

  Result<libdeflate_compressor*> Get(int level) {
    Compressor& c = compressors_[level];
    if (!c) c.reset(libdeflate_alloc_compressor(level));
    if (!c) return MakeError(ENOMEM, "starting gzip compression: out of memory");
    return c.get();
  }

  Result<bool> Incompressible(std::string_view in) {
    if (in.size() < 2 * kProbes * kProbeBytes) return false;
    ASSIGN_OR_RETURN(libdeflate_compressor * fast, Get(1));
    probe_.resize(libdeflate_deflate_compress_bound(fast, kProbeBytes));
    size_t compressed = 0;
    for (size_t i = 0; i < kProbes; ++i) {
      size_t at = i * ((in.size() - kProbeBytes) / (kProbes - 1));
      size_t n = libdeflate_deflate_compress(fast, in.data() + at, kProbeBytes, probe_.data(),
                                             probe_.size());
      compressed += n == 0 ? kProbeBytes : n;
    }
    return compressed * 100 >= kProbes * kProbeBytes * 99;
  }

  const int level_;             // as asked for, -2…9
  const int deflate_level_;     // libdeflate's, 0…9 (-2: zlib's Huffman-only)
  Compressor compressors_[10];  // by level, made when first used
  std::vector<char> probe_;
};

class GzipEncoder final : public StreamCodec {
 public:
  GzipEncoder(int level, ByteSink out) : level_(level), out_(std::move(out)), inline_(level) {}

  ~GzipEncoder() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  Status Write(const char* data, size_t n) override {
    while (n > 0) {
      size_t take = std::min(n, kGzipBlock - block_.size());
      block_.append(data, take);
      data += take;
      n -= take;
      if (block_.size() == kGzipBlock) RETURN_IF_ERROR(Submit());
    }
    return Ok();
  }

  Status Finish() override {
    // A stream that fits one block is compressed here, without threads; an empty one is still
    // one (empty) member.
    if (workers_.empty()) {
      Member member;
      RETURN_IF_ERROR(inline_.Compress(block_, &member));
      return Put(block_, member);
    }
    if (!block_.empty()) RETURN_IF_ERROR(Submit());
    while (!pending_.empty()) RETURN_IF_ERROR(EmitOldest());
    return Ok();
  }

 private:
  // A block on its way through a worker. Jobs written out go back to spare_ with their
  // buffers, for the next blocks.
  struct Job {
    std::string input;
    Member output;
    Status status = Ok();
    bool done = false;
  };

  // Hands the full block to the workers, then writes out what is done, waiting for the oldest
  // job only when enough are in flight to keep every worker busy.
  Status Submit() {
    if (workers_.empty()) {
      for (int i = 0; i < kGzipWorkers; ++i) workers_.emplace_back([this] { Work(); });
    }
    std::shared_ptr<Job> job;
    if (spare_.empty()) {
      job = std::make_shared<Job>();
    } else {
      job = std::move(spare_.back());
      spare_.pop_back();
    }
    job->done = false;
    job->input.swap(block_);
    block_.clear();
    block_.reserve(kGzipBlock);
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(job);
      queue_.push_back(job);
    }
    work_cv_.notify_one();
    while (!pending_.empty()) {
      bool ready;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready = pending_.front()->done;
      }
      if (!ready && pending_.size() <= kMaxJobs) break;
      RETURN_IF_ERROR(EmitOldest());
    }
    return Ok();
  }

  Status EmitOldest() {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return pending_.front()->done; });
      job = pending_.front();
      pending_.pop_front();
    }
    RETURN_IF_ERROR(job->status);
    RETURN_IF_ERROR(Put(job->input, job->output));
    spare_.push_back(std::move(job));
    return Ok();
  }

  Status Put(std::string_view input, const Member& member) {
    if (member.stored) return WriteStored(input, member.crc, inline_.xfl(), out_);
    return out_(member.bytes.get(), member.size);
  }

  void Work() {
    MemberCompressor compressor(level_);
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      std::shared_ptr<Job> job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      Status status = compressor.Compress(job->input, &job->output);
      lock.lock();
      job->status = std::move(status);
      job->done = true;
      done_cv_.notify_all();
    }
  }

  const int level_;
  ByteSink out_;
  MemberCompressor inline_;  // for a stream of one block
  std::string block_;        // input not yet handed to a worker

  std::mutex mu_;
  std::condition_variable work_cv_;           // a job is queued, or stop_
  std::condition_variable done_cv_;           // a job is done
  std::deque<std::shared_ptr<Job>> pending_;  // submitted, in stream order, until written out
  std::deque<std::shared_ptr<Job>> queue_;    // submitted, not yet taken by a worker
  std::vector<std::shared_ptr<Job>> spare_;   // written out, buffers kept (the caller's only)
  bool stop_ = false;
  std::vector<std::thread> workers_;
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
  return std::unique_ptr<StreamCodec>(std::make_unique<GzipEncoder>(level, std::move(out)));
}

Result<std::unique_ptr<StreamCodec>> NewGzipDecoder(ByteSink out, int64_t max_output) {
  auto dec = std::make_unique<GzipDecoder>(std::move(out), max_output);
  RETURN_IF_ERROR(dec->Init());
  return std::unique_ptr<StreamCodec>(std::move(dec));
}

}  // namespace regfs
