#include "fs/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "transports/util/digest.h"

namespace regfs {

Result<std::unique_ptr<BlobCache>> BlobCache::Open(const std::string& dir, int64_t max_bytes) {
  RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256", 0700));
  RETURN_IF_ERROR(RemoveAll(dir + "/partial"));
  RETURN_IF_ERROR(MakeDirs(dir + "/partial", 0700));
  std::unique_ptr<BlobCache> cache(new BlobCache(dir, max_bytes));
  std::string blobs = dir + "/blobs/sha256";
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(blobs));
  std::vector<std::pair<int64_t, std::string>> by_time;  // (mtime ns, digest)
  for (const std::string& name : names) {
    std::string path = blobs + "/" + name;
    struct stat st {};
    if (!IsSha256Digest("sha256:" + name) || lstat(path.c_str(), &st) != 0 ||
        !S_ISREG(st.st_mode)) {
      unlink(path.c_str());  // not ours, or a leftover temporary
      continue;
    }
    cache->entries_["sha256:" + name].size = st.st_size;
    cache->total_ += st.st_size;
    by_time.emplace_back(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, "sha256:" + name);
  }
  std::sort(by_time.begin(), by_time.end());
  for (auto& [t, digest] : by_time) cache->entries_[digest].last_use = ++cache->clock_;
  std::lock_guard<std::mutex> lock(cache->mu_);
  cache->EvictLocked();
  return cache;
}

std::string BlobCache::EntryPath(const std::string& digest) const {
  return dir_ + "/blobs/sha256/" + std::string(DigestHex(digest));
}

namespace {

bool SameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// The ctime of an open file; zero when it cannot be read (which no recorded ctime matches).
struct timespec CtimeOf(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_ctim : timespec{};
}

}  // namespace

Result<UniqueFd> BlobCache::OpenEntry(const std::string& digest) {
  bool verified = false;
  struct timespec ctime {};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(digest);
    if (it == entries_.end()) return MakeError(ENOENT, "not cached");
    verified = it->second.verified;
    ctime = it->second.ctime;
  }
  UniqueFd fd(open(EntryPath(digest).c_str(), O_RDONLY | O_CLOEXEC));
  Status checked = fd.valid() ? Ok() : Status(SysError("opening cache entry", EntryPath(digest)));
  // Changed since this process verified or last opened it: checked again.
  if (checked.ok() && verified && !SameTime(CtimeOf(fd.get()), ctime)) verified = false;
  if (checked.ok() && !verified) checked = CheckEntry(fd.get(), digest);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(digest);
  if (!checked.ok()) {
    if (it != entries_.end()) {
      if (fd.valid()) unlink(EntryPath(digest).c_str());  // corrupt: fetched again
      total_ -= it->second.size;
      entries_.erase(it);
    }
    return checked.error();
  }
  futimens(fd.get(), nullptr);  // the LRU order survives a remount
  if (it != entries_.end()) {   // else evicted meanwhile: the open file still reads
    it->second.verified = true;
    it->second.ctime = CtimeOf(fd.get());  // the futimens is ours
    it->second.last_use = ++clock_;
  }
  ++pins_[digest];
  return fd;
}

Status BlobCache::CheckEntry(int fd, const std::string& digest) const {
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (off_t off = 0;;) {
    ssize_t n = pread(fd, buf.data(), buf.size(), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("reading cache entry", EntryPath(digest));
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
    off += n;
  }
  std::string got = h.Finish();
  if (got != digest) {
    return MakeError(ENOENT, "cache entry " + EntryPath(digest) + " has digest " + got +
                                 ": removed, to be fetched again");
  }
  return Ok();
}

Result<UniqueFd> BlobCache::CreatePartial(const std::string& digest, int64_t size,
                                          std::string* path) {
  *path = dir_ + "/partial/" + std::string(DigestHex(digest)) + ".XXXXXX";
  int fd = mkostemp(path->data(), O_CLOEXEC);
  if (fd < 0) return SysError("creating", *path);
  std::lock_guard<std::mutex> lock(mu_);
  ++pins_[digest];
  partial_ += size;
  EvictLocked();
  return UniqueFd(fd);
}

void BlobCache::DropPartial(int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  partial_ -= size;
}

Status BlobCache::Commit(const std::string& partial_path, int fd, const std::string& digest,
                         int64_t size) {
  Status moved = [&]() -> Status {
    if (fsync(fd) != 0) return SysError("fsync", partial_path);
    fchmod(fd, 0600);
    std::string path = EntryPath(digest);
    if (rename(partial_path.c_str(), path.c_str()) != 0) return SysError("renaming to", path);
    return Ok();
  }();
  std::lock_guard<std::mutex> lock(mu_);
  partial_ -= size;
  if (!moved.ok()) return moved;
  auto [it, inserted] = entries_.try_emplace(digest);
  if (!inserted) total_ -= it->second.size;
  it->second.size = size;
  it->second.last_use = ++clock_;
  it->second.verified = true;  // its sha256 matched before the commit
  it->second.ctime = CtimeOf(fd);
  total_ += size;
  EvictLocked();
  return Ok();
}

void BlobCache::Pin(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  ++pins_[digest];
}

void BlobCache::Unpin(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pins_.find(digest);
  if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
  EvictLocked();
}

int64_t BlobCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

int64_t BlobCache::partial_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return partial_;
}

void BlobCache::EvictLocked() {
  while (total_ + partial_ > max_bytes_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (pins_.count(it->first)) continue;
      if (victim == entries_.end() || it->second.last_use < victim->second.last_use) victim = it;
    }
    if (victim == entries_.end()) return;  // everything left is open
    unlink(EntryPath(victim->first).c_str());
    total_ -= victim->second.size;
    entries_.erase(victim);
  }
}

}  // namespace regfs
