#include "transports/archive/tar_archive.h"

#include <sys/stat.h>

namespace regfs {
namespace {

// Of a compressed archive, JSON members up to this size are kept from the indexing pass (the
// manifests and configs a source reads first), up to kKeptTotal in all.
constexpr int64_t kKeptMember = 4 << 20;
constexpr int64_t kKeptTotal = 32 << 20;
constexpr size_t kHead = 8;

bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

}  // namespace

Result<std::shared_ptr<const TarArchive>> TarArchive::Open(UniqueFd fd, std::string description,
                                                           TarLimits limits) {
  std::shared_ptr<TarArchive> a(new TarArchive(std::move(fd), std::move(description)));
  Status s = a->Index(limits);
  if (!s.ok()) return Annotate(std::move(s).error(), "reading " + a->description_);
  return std::shared_ptr<const TarArchive>(std::move(a));
}

Status TarArchive::Index(TarLimits limits) {
  struct stat st;
  if (fstat(fd_.get(), &st) != 0) return SysError("stat", description_);
  if (!S_ISREG(st.st_mode)) return MakeError(EINVAL, "not a regular file");
  file_size_ = st.st_size;
  char magic[kHead] = {};
  FdTarInput probe(fd_.get(), 0, file_size_);
  size_t have = 0;
  while (have < kHead) {
    ASSIGN_OR_RETURN(size_t got, probe.Read(magic + have, kHead - have));
    if (got == 0) break;
    have += got;
  }
  compression_ = DetectCompression(std::string_view(magic, have));
  RETURN_IF_ERROR(RefuseUnsupportedCompression(std::string_view(magic, have)));
  ASSIGN_OR_RETURN(
      std::unique_ptr<TarInput> in,
      NewDecompressingInput(compression_, std::make_unique<FdTarInput>(fd_.get(), 0, file_size_)));
  TarReader reader(*in, limits);
  int64_t kept_total = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::optional<TarEntry> e, reader.Next());
    if (!e) break;
    Member m;
    const std::string clean = CleanTarPath(e->name);
    const bool keep = compression_ != Compression::kNone && e->type == TarEntry::kFile &&
                      e->size <= kKeptMember && kept_total + e->size <= kKeptTotal &&
                      EndsWith(clean, ".json");
    if (keep) {
      std::string data(static_cast<size_t>(e->size), '\0');
      size_t n = 0;
      while (n < data.size()) {
        ASSIGN_OR_RETURN(size_t got, reader.ReadData(data.data() + n, data.size() - n));
        n += got;
      }
      m.head = data.substr(0, kHead);
      kept_total += e->size;
      kept_[members_.size()] = std::move(data);
    } else if (e->type == TarEntry::kFile && e->size > 0) {
      m.head.resize(static_cast<size_t>(std::min<int64_t>(e->size, kHead)));
      size_t n = 0;
      while (n < m.head.size()) {
        ASSIGN_OR_RETURN(size_t got, reader.ReadData(m.head.data() + n, m.head.size() - n));
        n += got;
      }
    }
    m.entry = std::move(*e);
    by_name_.emplace(clean, members_.size());
    members_.push_back(std::move(m));
  }
  return Ok();
}

const TarArchive::Member* TarArchive::Find(std::string_view name) const {
  auto it = by_name_.find(CleanTarPath(name));
  return it == by_name_.end() ? nullptr : &members_[it->second];
}

Result<const TarArchive::Member*> TarArchive::FindFile(std::string_view name) const {
  const Member* m = Find(name);
  if (m && m->entry.type == TarEntry::kSymlink) {
    std::string dir = CleanTarPath(name);
    size_t slash = dir.rfind('/');
    dir = slash == std::string::npos ? "" : dir.substr(0, slash + 1);
    m = Find(dir + m->entry.linkname);
  }
  if (!m) {
    return MakeError(ENOENT, description_ + " has no file \"" + std::string(name) + "\"");
  }
  if (m->entry.type != TarEntry::kFile) {
    return MakeError(EINVAL,
                     "\"" + std::string(name) + "\" in " + description_ + " is not a regular file");
  }
  return m;
}

Result<std::unique_ptr<TarInput>> TarArchive::OpenData(const Member& m) const {
  const int64_t begin = m.entry.data_offset, size = m.entry.size;
  if (compression_ == Compression::kNone) {
    return std::unique_ptr<TarInput>(std::make_unique<FdTarInput>(fd_.get(), begin, begin + size));
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<TarInput> in,
      NewDecompressingInput(compression_, std::make_unique<FdTarInput>(fd_.get(), 0, file_size_)));
  RETURN_IF_ERROR(in->Skip(begin));
  return std::unique_ptr<TarInput>(std::make_unique<LimitedTarInput>(std::move(in), size));
}

Result<std::string> TarArchive::ReadFile(std::string_view name, int64_t max) const {
  ASSIGN_OR_RETURN(const Member* m, FindFile(name));
  if (m->entry.size > max) {
    return MakeError(EFBIG, "\"" + std::string(name) + "\" in " + description_ + " is " +
                                std::to_string(m->entry.size) + " bytes (limit " +
                                std::to_string(max) + ")");
  }
  auto kept = kept_.find(static_cast<size_t>(m - members_.data()));
  if (kept != kept_.end()) return kept->second;
  ASSIGN_OR_RETURN(std::unique_ptr<TarInput> in, OpenData(*m));
  std::string data(static_cast<size_t>(m->entry.size), '\0');
  size_t n = 0;
  while (n < data.size()) {
    ASSIGN_OR_RETURN(size_t got, in->Read(data.data() + n, data.size() - n));
    if (got == 0) return MakeError(EIO, description_ + " truncated");
    n += got;
  }
  return data;
}

}  // namespace regfs
