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
constexpr size_t kMaxMarkedBlobs = 1024;  // digests with bad locations remembered

std::string Where(const BlobLocation& l) { return l.client->registry() + "/" + l.repository; }

// Whether a location's failed transfer says something that lasts about it: it lacks the blob,
// refuses us, or names it wrongly. Anything else (a reset, a refused connection, a stall, a
// 5xx) may be over by the next read.
bool Lasting(const Error& e) {
  switch (e.errnum) {
    case ENOENT:
    case EACCES:
    case EPERM:
    case EINVAL:
    case EFBIG:
    case EOPNOTSUPP:
      return true;
    default:
      return false;
  }
}

}  // namespace

BlobStore::BlobStore(BlobCache* cache, FetchPool* pool, VerifyMode verify,
                     std::function<void(const std::string&)> log)
    : cache_(cache), pool_(pool), verify_(verify), log_(std::move(log)) {}

Result<OpenedBlob> BlobStore::Open(const std::string& digest, int64_t size,
                                   const std::vector<BlobLocation>& locations) {
  if (locations.empty()) return MakeError(EIO, "no registry known for blob " + digest);
  OpenedBlob out;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = open_.find(digest); it != open_.end()) {
    if (auto b = it->second.lock(); b && !b->bad()) out.blob = std::move(b);
  }
  if (!out.blob) {
    std::shared_ptr<Blob> blob(new Blob(this, digest, size));
    auto cached = cache_->OpenEntry(digest);
    if (cached.ok()) {
      ++cache_hits_;
      blob->fd_ = std::move(cached).value();
      blob->state_ = Blob::State::kVerified;
      blob->present_.Insert(0, size);
    } else {
      ASSIGN_OR_RETURN(blob->fd_, cache_->CreatePartial(digest, size, &blob->partial_path_));
      blob->reserved_ = true;
      // Locations found bad by an earlier Blob of this digest are skipped, unless that is all
      // of them: then each gets another chance.
      blob->AddLocationsLocked(locations);
      std::lock_guard<std::mutex> marks_lock(marks_mu_);
      if (auto marks = bad_.find(digest); marks != bad_.end()) {
        bool all = true;
        for (const Blob::Source& src : blob->sources_)
          all = all && marks->second.count(Where(src.where));
        if (all) {
          bad_.erase(marks);
        } else {
          for (Blob::Source& src : blob->sources_) {
            auto mark = marks->second.find(Where(src.where));
            if (mark != marks->second.end()) {
              src.failure = mark->second.why;
              src.lasting = mark->second.lasting;
            }
          }
        }
      }
    }
    open_[digest] = blob;
    out.blob = std::move(blob);
  }
  Blob& b = *out.blob;
  {
    std::lock_guard<std::mutex> blob_lock(b.mu_);
    b.AddLocationsLocked(locations);
    out.cursor.attempt = b.attempt_;
    out.keep_cache = b.state_ == Blob::State::kVerified;
    // This open drops the kernel's pages whenever it does not keep them, stale or not.
    std::lock_guard<std::mutex> stale_lock(marks_mu_);
    if (stale_.erase(digest) > 0) out.keep_cache = false;
  }
  if (size == 0) b.AdvanceHash();  // nothing to fetch: the verdict now
  return out;
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

void Blob::AddLocationsLocked(const std::vector<BlobLocation>& locations) {
  for (const BlobLocation& l : locations) {
    bool known = std::any_of(sources_.begin(), sources_.end(),
                             [&](const Source& s) { return Where(s.where) == Where(l); });
    if (!known) sources_.push_back({l, ""});
  }
}

void Blob::FailSourceLocked(size_t source, const std::string& why, bool lasting) {
  Source& s = sources_[source];
  if (!s.failure.empty()) return;
  s.failure = why;
  s.lasting = lasting;
  std::string where = Where(s.where);
  {
    std::lock_guard<std::mutex> marks_lock(store_->marks_mu_);
    if (store_->bad_.size() >= kMaxMarkedBlobs && !store_->bad_.count(digest_)) {
      store_->bad_.erase(store_->bad_.begin());
    }
    store_->bad_[digest_][where] = {why, lasting};
  }
  bool others = std::any_of(sources_.begin(), sources_.end(),
                            [](const Source& o) { return o.failure.empty(); });
  if (store_->log_) {
    store_->log_("blob " + digest_ + " from " + where + ": " + why +
                 (others ? "; trying its other locations" : ""));
  }
  if (others || state_ != State::kPartial) return;
  std::string failure = "blob " + digest_ + ": every location failed:";
  for (const Source& o : sources_) {
    failure += " " + Where(o.where) + ": " + o.failure + ";";
  }
  failure.pop_back();
  bool passing =
      std::any_of(sources_.begin(), sources_.end(), [](const Source& o) { return !o.lasting; });
  if (passing) {
    // A location that went away may be back by the next read: the reads waiting now fail,
    // the bytes that landed stay, and the next read asks the passing locations again.
    {
      std::lock_guard<std::mutex> marks_lock(store_->marks_mu_);
      auto marks = store_->bad_.find(digest_);
      for (Source& o : sources_) {
        if (o.lasting) continue;
        o.failure.clear();
        if (marks != store_->bad_.end()) marks->second.erase(Where(o.where));
      }
      if (marks != store_->bad_.end() && marks->second.empty()) store_->bad_.erase(marks);
    }
    FailReadsLocked(MakeError(EIO, failure + "; the next read tries again"));
    return;
  }
  // Every location failed for good: the blob is bad, and its bytes are discarded.
  failure_ = failure;
  DiscardAttemptLocked();
  state_ = State::kBad;
  unlink(partial_path_.c_str());
  reserved_ = false;
  store_->cache_->DropPartial(size_);
}

void Blob::FailReadsLocked(Error e) {
  fetch_error_ = std::move(e);
  ++fetch_failures_;
}

void Blob::DiscardAttemptLocked() {
  if (served_) {
    tainted_through_ = attempt_;
    std::lock_guard<std::mutex> stale_lock(store_->marks_mu_);
    store_->stale_.insert(digest_);
  }
  ++attempt_;
  served_ = false;
  contributors_.clear();
  present_.Clear();
  inflight_.Clear();  // pieces still running belong to the old attempt and land nothing
  // A digest mismatch is found with no hashing under way; when every location failed, a
  // hashing thread may still hold the hasher, and the blob needs it no more.
  if (!hashing_) {
    hashed_ = 0;
    hasher_ = Sha256();
  }
}

void Blob::RequestLocked(int64_t start, int64_t end) {
  if (state_ != State::kPartial) return;
  // Every piece comes from the first location not known to be bad.
  auto good = std::find_if(sources_.begin(), sources_.end(),
                           [](const Source& s) { return s.failure.empty(); });
  if (good == sources_.end()) return;
  size_t source = static_cast<size_t>(good - sources_.begin());
  // Whole MiBs: overlapping windows then leave no slivers to fetch one request each.
  start = start / kAlign * kAlign;
  end = std::min(size_, (end + kAlign - 1) / kAlign * kAlign);
  for (auto [s, e] : present_.Missing(start, end)) {
    for (auto [ms, me] : inflight_.Missing(s, e)) {
      for (int64_t p = ms; p < me; p += kMaxPiece) {
        int64_t q = std::min(me, p + kMaxPiece);
        inflight_.Insert(p, q);
        std::shared_ptr<Blob> self = shared_from_this();
        store_->pool_->Submit([self, p, q, attempt = attempt_, source, where = good->where] {
          self->Fetch(p, q, attempt, source, where);
        });
      }
    }
  }
}

// Writes [pos, pos + n) of the download into the partial file and publishes it to readers;
// bytes that extend the hashed prefix are hashed from memory. A piece of an attempt that was
// given up stops here.
Status Blob::Land(const char* data, size_t n, int64_t pos, int64_t attempt, size_t source) {
  auto superseded = [&] {
    return MakeError(ECANCELED, "fetch of " + digest_ + " no longer needed");
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt != attempt_ || state_ != State::kPartial) return superseded();
  }
  // An attempt is only discarded once every byte of it landed (or the blob is bad), so no
  // piece of an old attempt is still writing here when a new one begins.
  RETURN_IF_ERROR(WriteAllAt(fd_.get(), data, n, pos, partial_path_));
  bool hash_here = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt != attempt_ || state_ != State::kPartial) return superseded();
    present_.Insert(pos, pos + static_cast<int64_t>(n));
    contributors_.insert(source);
    if (!hashing_ && hashed_ == pos) hash_here = hashing_ = true;
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

void Blob::Fetch(int64_t start, int64_t end, int64_t attempt, size_t source, BlobLocation where) {
  // The transport hands over up to 256 KiB at a time: land the bytes in 1 MiB batches.
  std::vector<char> batch;
  batch.reserve(kLandBatch);
  int64_t landed = start;
  std::optional<Status> local;  // a failure here, not at the registry
  auto land = [&]() -> Status {
    Status s = Land(batch.data(), batch.size(), landed, attempt, source);
    if (!s.ok()) {
      local = s;
      return s;
    }
    landed += static_cast<int64_t>(batch.size());
    batch.clear();
    return Ok();
  };
  Status s = where.client->GetBlobRange(where.repository, digest_, start, end - start, size_,
                                        [&](const char* data, size_t n) -> Status {
                                          batch.insert(batch.end(), data, data + n);
                                          if (batch.size() < kLandBatch) return Ok();
                                          return land();
                                        });
  if (s.ok() && !batch.empty()) s = land();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt != attempt_ || state_ != State::kPartial) return;  // nothing of ours is left
    inflight_.Erase(start, end);
    if (!s.ok()) {
      if (local) {
        if (store_->log_) store_->log_(s.error().message);
        FailReadsLocked(s.error());
      } else {
        // What landed stays: the next location's fetch resumes after it.
        FailSourceLocked(source, s.error().message, Lasting(s.error()));
      }
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
      FailReadsLocked(MakeError(EIO, "reading back " + partial_path_));
      break;
    }
  }
  bool finished = hashed_ == size_;
  hashing_ = false;
  if (!finished || state_ != State::kPartial) return;
  std::string got = hasher_.Finish();
  if (got != digest_) {
    std::string from;
    for (size_t i : contributors_) {
      from += (from.empty() ? "" : ", ") + Where(sources_[i].where);
    }
    if (store_->log_) {
      store_->log_("blob " + digest_ + " from " + (from.empty() ? "nowhere" : from) +
                   " has digest " + got + ": discarded");
    }
    std::set<size_t> blamed = contributors_;
    DiscardAttemptLocked();
    if (blamed.size() == 1) {
      // One location served every byte: it is the bad one.
      FailSourceLocked(*blamed.begin(), "served bytes with digest " + got, true);
    } else if (blamed.empty()) {
      // Nothing was fetched (a blob of size 0): no other location can do better.
      for (size_t i = 0; i < sources_.size(); ++i) {
        FailSourceLocked(i, "size 0, digest " + got, true);
      }
    }
    // Several: a fetch moved on from a location that failed part way, so one of them is marked
    // already; the next attempt takes every byte from one location and settles it.
    lock.unlock();
    cv_.notify_all();
    return;
  }
  state_ = State::kVerified;
  reserved_ = false;  // Commit ends the reservation
  {
    std::lock_guard<std::mutex> marks_lock(store_->marks_mu_);
    store_->bad_.erase(digest_);  // cached now: no location is asked again
  }
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
  auto tainted = [&] {  // called with mu_ held
    std::string failed;
    for (const Source& src : sources_) {
      if (!src.failure.empty()) failed += "; " + Where(src.where) + ": " + src.failure;
    }
    return MakeError(EIO, "blob " + digest_ +
                              ": bytes that did not verify were served while this file was "
                              "open, open it again" +
                              failed);
  };
  int64_t attempt;
  bool verified;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::kBad) return MakeError(EIO, failure_);
    if (TaintedLocked(*cursor)) return tainted();
    if (state_ == State::kPartial) {
      // Only fetches that fail from now on fail this read: an earlier failure is asked again.
      const int64_t failures_before = fetch_failures_;
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
      // What this read waits for: its bytes, or for a verdict every byte.
      const int64_t from = need_verdict ? 0 : off;
      const int64_t to = need_verdict ? size_ : end;
      auto on_its_way = [&] {
        for (auto [s, e] : present_.Missing(from, to)) {
          if (!inflight_.Contains(s, e)) return false;
        }
        return true;
      };
      while (true) {
        if (state_ != State::kPartial) break;
        if (TaintedLocked(*cursor)) return tainted();
        if (!need_verdict && present_.Contains(off, end)) break;
        if (fetch_failures_ != failures_before && fetch_error_ && !on_its_way()) {
          Error e = *fetch_error_;
          return e;
        }
        // What failed, or was discarded, is asked for again (from the next good location);
        // what is here or on its way is not.
        RequestLocked(from, to);
        cv_.wait(lock);
      }
    }
    if (state_ == State::kBad) return MakeError(EIO, failure_);
    if (TaintedLocked(*cursor)) return tainted();
    verified = state_ == State::kVerified;
    if (!verified) served_ = true;
    attempt = attempt_;
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
  if (!verified) {
    // The attempt may have been discarded while we read; its bytes are not to be trusted.
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kBad) return MakeError(EIO, failure_);
    if (attempt != attempt_) return tainted();
  }
  return done;
}

}  // namespace regfs
