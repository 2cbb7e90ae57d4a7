// UploadPipe: a bounded byte pipe between a writer (the copy pipeline's blob writer, an archive
// being written) and an HTTP upload's read callback on another thread.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "transports/util/result.h"

namespace regfs {

// A bounded byte pipe from Write() calls to the upload's read callback. The
// reader never receives the blob's last byte (or, when the size is unknown, its end) before
// Commit(): the upload can't complete until the writer has verified the digest.
class UploadPipe {
 public:
  // What Read() returns once Abort() was called: the abort value of the upload readers that
  // HttpRequest::body_reader and Registry::PutBlob take.
  static constexpr size_t kAborted = static_cast<size_t>(-1);

  // A blob smaller than the capacity gets a buffer of its size: many small uploads at once
  // (a sync's configs and layers) don't each hold the whole capacity.
  explicit UploadPipe(int64_t size)
      : size_(size),
        buf_(size >= 0 ? static_cast<size_t>(std::clamp<int64_t>(size, 1, kCapacity)) : kCapacity) {
  }

  // Blocks while the pipe is full. Fails once the reader has stopped.
  Status Write(const char* data, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    while (n > 0) {
      cv_.wait(lock, [&] { return count_ < buf_.size() || reader_gone_; });
      if (reader_gone_) return MakeError(EIO, "upload ended early");
      size_t tail = (head_ + count_) % buf_.size();
      size_t take = std::min({n, buf_.size() - count_, buf_.size() - tail});
      std::memcpy(buf_.data() + tail, data, take);
      count_ += take;
      data += take;
      n -= take;
      cv_.notify_all();
    }
    return Ok();
  }

  // The upload's read callback.
  size_t Read(char* out, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (aborted_) return kAborted;
      size_t avail = count_;
      // Hold back the final byte until the blob is verified.
      if (size_ >= 0 && !committed_ && delivered_ + static_cast<int64_t>(avail) >= size_ &&
          avail > 0) {
        avail = static_cast<size_t>(std::max<int64_t>(0, size_ - 1 - delivered_));
      }
      if (avail > 0) {
        size_t take = std::min({n, avail, buf_.size() - head_});
        std::memcpy(out, buf_.data() + head_, take);
        head_ = (head_ + take) % buf_.size();
        count_ -= take;
        delivered_ += static_cast<int64_t>(take);
        cv_.notify_all();
        return take;
      }
      if (size_ >= 0 ? delivered_ >= size_ : committed_) return 0;  // the end
      cv_.wait(lock);
    }
  }

  void Commit() {
    std::lock_guard<std::mutex> lock(mu_);
    committed_ = true;
    cv_.notify_all();
  }
  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  void ReaderGone() {
    std::lock_guard<std::mutex> lock(mu_);
    reader_gone_ = true;
    cv_.notify_all();
  }

 private:
  static constexpr size_t kCapacity = 512 << 10;
  const int64_t size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> buf_;
  size_t head_ = 0, count_ = 0;  // guarded by mu_
  int64_t delivered_ = 0;        // guarded by mu_
  bool committed_ = false, aborted_ = false, reader_gone_ = false;
};

}  // namespace regfs
