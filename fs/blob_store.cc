#include "fs/blob_store.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace regfs {
namespace {

constexpr int64_t kRandomChunk = 4 << 20;
constexpr int64_t kFirstWindow = 2 << 20;
constexpr int64_t kMaxWindow = 64 << 20;
constexpr int64_t kMaxPiece = 16 << 20;  // one request; larger windows fetch in parallel
constexpr size_t kLandBatch = 1 << 20;
constexpr int64_t kReorder = 8 << 20;  // the kernel readahead (fuse_adapter.cc)
constexpr int64_t kAlign = 1 << 20;

}  // namespace

BlobStore::BlobStore(BlobCache* cache, FetchPool* pool, VerifyMode verify,
                     std::function<void(const std::string&)> log)
    : cache_(cache), pool_(pool), verify_(verify), log_(std::move(log)) {}

Result<std::shared_ptr<Blob>> BlobStore::Open(const std::string& digest, int64_t size,
                                              const BlobLocation& location) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = open_.find(digest); it != open_.end()) {
    if (auto b = it->second.lock(); b && !b->bad()) return b;
  }
  std::shared_ptr<Blob> blob(new Blob(this, digest, size));
  blob->location_ = location;
  auto cached = cache_->OpenEntry(digest);
  if (cached.ok()) {
    ++cache_hits_;
    blob->fd_ = std::move(cached).value();
    blob->state_ = Blob::State::kVerified;
    blob->present_.Insert(0, size);
  } else {
    ASSIGN_OR_RETURN(blob->fd_, cache_->CreatePartial(digest, size, &blob->partial_path_));
    blob->reserved_ = true;
    if (size == 0) blob->AdvanceHash();
  }
  open_[digest] = blob;
  return blob;
}

Blob::~Blob() {
  if (!partial_path_.empty() && state_ != State::kVerified) unlink(partial_path_.c_str());
  if (reserved_) store_->cache_->DropPartial(size_);
  store_->cache_->Unpin(digest_);
}

bool Blob::bad() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kBad;
}

void Blob::RequestLocked(int64_t start, int64_t end) {
  // Whole MiBs: overlapping windows then leave no slivers to fetch one request each.
  start = start / kAlign * kAlign;
  end = std::min(size_, (end + kAlign - 1) / kAlign * kAlign);
  for (auto [s, e] : present_.Missing(start, end)) {
    for (auto [ms, me] : inflight_.Missing(s, e)) {
      for (int64_t p = ms; p < me; p += kMaxPiece) {
        int64_t q = std::min(me, p + kMaxPiece);
        inflight_.Insert(p, q);
        std::shared_ptr<Blob> self = shared_from_this();
        store_->pool_->Submit([self, p, q] { self->Fetch(p, q); });
      }
    }
  }
}

// Writes [pos, pos + n) of the download into the partial file and publishes it to readers;
// bytes that extend the hashed prefix are hashed from memory.
Status Blob::Land(const char* data, size_t n, int64_t pos) {
  RETURN_IF_ERROR(WriteAllAt(fd_.get(), data, n, pos, partial_path_));
  bool hash_here = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    present_.Insert(pos, pos + static_cast<int64_t>(n));
    if (!hashing_ && hashed_ == pos && state_ == State::kPartial) hash_here = hashing_ = true;
  }
  cv_.notify_all();
  if (hash_here) {
    hasher_.Update(data, n);
    std::lock_guard<std::mutex> lock(mu_);
    hashed_ += static_cast<int64_t>(n);
    hashing_ = false;
  }
  return Ok();
}

void Blob::Fetch(int64_t start, int64_t end) {
  // The transport hands over up to 256 KiB at a time: land the bytes in 1 MiB batches.
  std::vector<char> batch;
  batch.reserve(kLandBatch);
  int64_t landed = start;
  Status s =
      location_.client->GetBlobRange(location_.repository, digest_, start, end - start, size_,
                                     [&](const char* data, size_t n) -> Status {
                                       batch.insert(batch.end(), data, data + n);
                                       if (batch.size() < kLandBatch) return Ok();
                                       RETURN_IF_ERROR(Land(batch.data(), batch.size(), landed));
                                       landed += static_cast<int64_t>(batch.size());
                                       batch.clear();
                                       return Ok();
                                     });
  if (s.ok() && !batch.empty()) s = Land(batch.data(), batch.size(), landed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_.Erase(start, end);
    if (!s.ok()) {
      fetch_error_ = s.error();
      if (store_->log_) store_->log_(s.error().message);
    }
  }
  cv_.notify_all();
  AdvanceHash();
}

void Blob::AdvanceHash() {
  std::unique_lock<std::mutex> lock(mu_);
  if (hashing_ || state_ != State::kPartial) return;
  hashing_ = true;
  std::vector<char> buf;
  while (true) {
    int64_t from = hashed_;
    int64_t to = present_.ContiguousEnd(from);
    if (to <= from) break;
    lock.unlock();
    buf.resize(static_cast<size_t>(std::min<int64_t>(to - from, 1 << 20)));
    int64_t p = from;
    bool io_error = false;
    while (p < to) {
      size_t want =
          static_cast<size_t>(std::min<int64_t>(to - p, static_cast<int64_t>(buf.size())));
      ssize_t n = pread(fd_.get(), buf.data(), want, p);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        io_error = true;
        break;
      }
      hasher_.Update(buf.data(), static_cast<size_t>(n));
      p += n;
    }
    lock.lock();
    hashed_ = p;
    if (io_error) {
      fetch_error_ = MakeError(EIO, "reading back " + partial_path_);
      break;
    }
  }
  bool finished = hashed_ == size_;
  hashing_ = false;
  if (!finished) return;
  std::string got = hasher_.Finish();
  if (got != digest_) {
    state_ = State::kBad;
    present_.Clear();
    unlink(partial_path_.c_str());
    reserved_ = false;
    store_->cache_->DropPartial(size_);
    lock.unlock();
    cv_.notify_all();
    if (store_->log_) {
      store_->log_("blob " + digest_ + " from " + location_.client->registry() + "/" +
                   location_.repository + " has digest " + got + ": discarded");
    }
    return;
  }
  state_ = State::kVerified;
  reserved_ = false;  // Commit ends the reservation
  lock.unlock();
  cv_.notify_all();
  Status s = store_->cache_->Commit(partial_path_, fd_.get(), digest_, size_);
  if (!s.ok() && store_->log_) store_->log_("caching " + digest_ + ": " + s.error().message);
}

int64_t Blob::CoveredFromLocked(int64_t pos) const {
  while (true) {
    int64_t next = std::max(present_.ContiguousEnd(pos), inflight_.ContiguousEnd(pos));
    if (next <= pos) return pos;
    pos = next;
  }
}

Result<size_t> Blob::Read(char* buf, size_t len, int64_t off, ReadCursor* cursor) {
  if (off >= size_ || len == 0) return size_t{0};
  int64_t end = std::min<int64_t>(size_, off + static_cast<int64_t>(len));
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::kPartial) {
      fetch_error_.reset();
      bool full = store_->verify_ == VerifyMode::kFull;
      // Sequential: at the end of the last read, give or take the kernel's readahead, whose
      // requests may arrive a little out of order.
      bool sequential = cursor->window > 0 && off >= cursor->next - kReorder &&
                        off <= cursor->next + 2 * kReorder;
      if (off == 0 && cursor->window == 0) sequential = true;
      if (full || end == size_) {
        RequestLocked(0, size_);  // the verdict needs every byte
      } else if (sequential) {
        // Readahead: when less than half a window lies ahead (here or on its way), fetch up to
        // a window ahead, and let the window double; one request then carries many reads.
        int64_t window = std::max(cursor->window, kFirstWindow);
        int64_t covered = CoveredFromLocked(off);
        if (covered < std::min(size_, off + window / 2)) {
          if (covered > off) window = std::min(window * 2, kMaxWindow);
          RequestLocked(covered, std::max(end, off + window));
        }
        cursor->window = window;
      } else {
        int64_t start = off / kRandomChunk * kRandomChunk;
        int64_t stop =
            std::max(start + kRandomChunk, (end + kRandomChunk - 1) / kRandomChunk * kRandomChunk);
        cursor->window = 0;
        RequestLocked(start, stop);
      }
      cursor->next = end;
      if (cursor->window == 0)
        cursor->window = kFirstWindow / 2;  // the next read may be sequential
      bool need_verdict = full || end == size_;
      while (true) {
        if (state_ == State::kBad) break;
        if (state_ == State::kVerified) break;
        if (!need_verdict && present_.Contains(off, end)) break;
        if (fetch_error_ && !inflight_.Contains(off, end)) {
          Error e = *fetch_error_;
          return e;
        }
        if (!inflight_.Contains(off, end) && !present_.Contains(off, end)) {
          RequestLocked(off, end);  // a failed piece: try again
        }
        cv_.wait(lock);
      }
    }
    if (state_ == State::kBad) {
      return MakeError(EIO, "blob " + digest_ + " does not match its digest");
    }
  }
  size_t done = 0;
  while (done < static_cast<size_t>(end - off)) {
    ssize_t n = pread(fd_.get(), buf + done, static_cast<size_t>(end - off) - done,
                      off + static_cast<int64_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError("reading", partial_path_.empty() ? digest_ : partial_path_);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace regfs
