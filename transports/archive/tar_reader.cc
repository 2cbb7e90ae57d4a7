#include "transports/archive/tar_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace regfs {
namespace {

constexpr size_t kBlock = 512;

// Header field offsets (POSIX ustar; GNU puts nothing we read elsewhere).
struct Field {
  size_t off, len;
};
constexpr Field kName{0, 100}, kMode{100, 8}, kUid{108, 8}, kGid{116, 8}, kSize{124, 12},
    kMtime{136, 12}, kChksum{148, 8}, kType{156, 1}, kLinkname{157, 100}, kMagic{257, 6},
    kUname{265, 32}, kGname{297, 32}, kDevmajor{329, 8}, kDevminor{337, 8}, kPrefix{345, 155};

std::string_view FieldOf(const char* blk, Field f) { return std::string_view(blk + f.off, f.len); }

// A NUL-terminated string field.
std::string StringField(const char* blk, Field f) {
  std::string_view v = FieldOf(blk, f);
  return std::string(v.substr(0, v.find('\0')));
}

Error Bad(int64_t offset, const std::string& why) {
  return MakeError(EINVAL,
                   "malformed tar archive at offset " + std::to_string(offset) + ": " + why);
}

// An octal field (spaces and NULs around it allowed), or base-256 when the high bit of the
// first byte is set (GNU and star write large numbers so). Negative numbers are refused.
Result<int64_t> NumberField(const char* blk, Field f, int64_t offset, const char* what) {
  std::string_view v = FieldOf(blk, f);
  auto u = [](char c) { return static_cast<unsigned char>(c); };
  if (u(v[0]) & 0x80) {
    if (u(v[0]) == 0xff) return Bad(offset, std::string("negative ") + what);
    uint64_t x = u(v[0]) & 0x7f;
    for (size_t i = 1; i < v.size(); ++i) {
      if (x >> 55) return Bad(offset, std::string(what) + " too large");
      x = (x << 8) | u(v[i]);
    }
    if (x > static_cast<uint64_t>(INT64_MAX)) return Bad(offset, std::string(what) + " too large");
    return static_cast<int64_t>(x);
  }
  size_t i = 0;
  while (i < v.size() && (v[i] == ' ' || v[i] == '\0')) ++i;
  int64_t x = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '7'; ++i) {
    if (x >> 60) return Bad(offset, std::string(what) + " too large");
    x = x * 8 + (v[i] - '0');
  }
  for (; i < v.size(); ++i) {
    if (v[i] != ' ' && v[i] != '\0') return Bad(offset, std::string("bad ") + what + " field");
  }
  return x;
}

bool IsZeroBlock(const char* blk) {
  return std::all_of(blk, blk + kBlock, [](char c) { return c == 0; });
}

// Unsigned sum with the checksum field as spaces; historic writers used signed chars, which
// readers (Go's among them) accept too.
bool ChecksumMatches(const char* blk, int64_t stored) {
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    char c = (i >= kChksum.off && i < kChksum.off + kChksum.len) ? ' ' : blk[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return stored == unsigned_sum || stored == signed_sum;
}

// Parses "LEN key=value\n" records. Repeated keys: the last wins, as in Go and GNU tar.
Status ParsePax(std::string_view data, std::map<std::string, std::string>* out, int64_t offset) {
  while (!data.empty()) {
    size_t sp = data.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp > 20) return Bad(offset, "bad PAX record");
    uint64_t len = 0;
    for (size_t i = 0; i < sp; ++i) {
      if (data[i] < '0' || data[i] > '9') return Bad(offset, "bad PAX record length");
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= sp + 1 || len > data.size() || data[len - 1] != '\n') {
      return Bad(offset, "bad PAX record length");
    }
    std::string_view rec = data.substr(sp + 1, len - sp - 2);
    size_t eq = rec.find('=');
    if (eq == std::string_view::npos || eq == 0) return Bad(offset, "PAX record without a key");
    (*out)[std::string(rec.substr(0, eq))] = std::string(rec.substr(eq + 1));
    data.remove_prefix(len);
  }
  return Ok();
}

Result<int64_t> PaxNumber(const std::string& v, int64_t offset, const char* key) {
  // mtime may carry a fraction: only the seconds are kept.
  std::string_view s = v;
  if (std::string_view(key) == "mtime") s = s.substr(0, s.find('.'));
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
    return Bad(offset, std::string("bad PAX ") + key + " \"" + v + "\"");
  }
  return std::stoll(std::string(s));
}

}  // namespace

Status TarInput::Skip(int64_t n) {
  std::vector<char> buf(static_cast<size_t>(std::min<int64_t>(n, 1 << 16)));
  while (n > 0) {
    ASSIGN_OR_RETURN(size_t got, Read(buf.data(), static_cast<size_t>(std::min<int64_t>(
                                                      n, static_cast<int64_t>(buf.size())))));
    if (got == 0) return MakeError(EIO, "tar archive truncated");
    n -= static_cast<int64_t>(got);
  }
  return Ok();
}

Result<size_t> FdTarInput::Read(char* buf, size_t n) {
  n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), end_ - pos_));
  if (n == 0) return size_t{0};
  while (true) {
    ssize_t got = pread(fd_, buf, n, pos_);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return MakeError(errno, std::string("reading tar archive: ") + strerror(errno));
    pos_ += got;
    return static_cast<size_t>(got);
  }
}

Status FdTarInput::Skip(int64_t n) {
  if (n > end_ - pos_) return MakeError(EIO, "tar archive truncated");
  pos_ += n;
  return Ok();
}

Result<size_t> LimitedTarInput::Read(char* buf, size_t n) {
  n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), left_));
  if (n == 0) return size_t{0};
  ASSIGN_OR_RETURN(size_t got, in_->Read(buf, n));
  if (got == 0) return MakeError(EIO, "tar archive truncated in an entry's data");
  left_ -= static_cast<int64_t>(got);
  return got;
}

Status LimitedTarInput::Skip(int64_t n) {
  if (n > left_) return MakeError(EIO, "skipping past the end of a tar entry");
  RETURN_IF_ERROR(in_->Skip(n));
  left_ -= n;
  return Ok();
}

std::string CleanTarPath(std::string_view name) {
  const bool rooted = !name.empty() && name.front() == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view c = name.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(c);
      }
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

Status CheckTarName(std::string_view name) {
  if (name.empty()) return MakeError(EINVAL, "tar entry with an empty name");
  if (name.front() == '/') {
    return MakeError(EINVAL, "tar entry \"" + std::string(name) + "\" has an absolute name");
  }
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    if (name.substr(i, j - i) == "..") {
      return MakeError(EINVAL,
                       "tar entry \"" + std::string(name) + "\" climbs out of the archive (..)");
    }
    i = j + 1;
  }
  return Ok();
}

Status TarReader::ReadFull(char* buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    ASSIGN_OR_RETURN(size_t got, in_.Read(buf + have, n - have));
    if (got == 0) {
      return MakeError(EIO, "tar archive truncated at offset " +
                                std::to_string(offset_ + static_cast<int64_t>(have)));
    }
    have += got;
  }
  offset_ += static_cast<int64_t>(n);
  return Ok();
}

Status TarReader::SkipBytes(int64_t n) {
  if (n == 0) return Ok();
  Status s = in_.Skip(n);
  if (!s.ok()) {
    return MakeError(EIO, "tar archive truncated: an entry's data runs past the end (offset " +
                              std::to_string(offset_) + ")");
  }
  offset_ += n;
  return Ok();
}

Result<std::string> TarReader::ReadExtended(int64_t size, const char* what) {
  if (size < 0 || static_cast<uint64_t>(size) > limits_.max_extended_header) {
    return MakeError(EFBIG, std::string(what) + " of " + std::to_string(size) +
                                " bytes at offset " + std::to_string(offset_) + " (limit " +
                                std::to_string(limits_.max_extended_header) + ")");
  }
  std::string data(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(ReadFull(data.data(), data.size()));
  RETURN_IF_ERROR(SkipBytes((kBlock - size % kBlock) % kBlock));
  return data;
}

Result<size_t> TarReader::ReadData(char* buf, size_t n) {
  n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), remaining_));
  if (n == 0) return size_t{0};
  ASSIGN_OR_RETURN(size_t got, in_.Read(buf, n));
  if (got == 0) {
    return MakeError(
        EIO, "tar archive truncated in an entry's data (offset " + std::to_string(offset_) + ")");
  }
  offset_ += static_cast<int64_t>(got);
  remaining_ -= static_cast<int64_t>(got);
  return got;
}

Result<std::optional<TarEntry>> TarReader::Next() {
  if (done_) return std::optional<TarEntry>();
  RETURN_IF_ERROR(SkipBytes(remaining_ + padding_));
  remaining_ = padding_ = 0;

  std::map<std::string, std::string> pax;
  std::optional<std::string> long_name, long_link;
  const int64_t header_offset = offset_;
  char blk[kBlock];
  while (true) {
    // End of archive: two zero blocks, one zero block at the end of the stream, or the end of
    // the stream at a block boundary (as Go's reader accepts).
    size_t have = 0;
    while (have < kBlock) {
      ASSIGN_OR_RETURN(size_t got, in_.Read(blk + have, kBlock - have));
      if (got == 0) break;
      have += got;
    }
    if (have == 0 && pax.empty() && !long_name && !long_link) {
      done_ = true;
      return std::optional<TarEntry>();
    }
    if (have < kBlock) {
      return MakeError(EIO, "tar archive truncated at offset " +
                                std::to_string(offset_ + static_cast<int64_t>(have)));
    }
    offset_ += kBlock;
    if (IsZeroBlock(blk)) {
      if (!pax.empty() || long_name || long_link) {
        return Bad(offset_ - kBlock, "extended header without an entry");
      }
      done_ = true;
      return std::optional<TarEntry>();
    }
    ASSIGN_OR_RETURN(int64_t chksum, NumberField(blk, kChksum, offset_ - kBlock, "checksum"));
    if (!ChecksumMatches(blk, chksum)) return Bad(offset_ - kBlock, "header checksum mismatch");
    if (++entries_ > limits_.max_entries) {
      return MakeError(
          EFBIG, "tar archive has more than " + std::to_string(limits_.max_entries) + " entries");
    }
    ASSIGN_OR_RETURN(int64_t size, NumberField(blk, kSize, offset_ - kBlock, "size"));
    const char type = blk[kType.off];
    if (type == 'x' || type == 'g') {
      ASSIGN_OR_RETURN(std::string data, ReadExtended(size, "PAX header"));
      // A global header's records would apply to every later entry; none of the formats
      // read here use them, so they are read past.
      if (type == 'x') RETURN_IF_ERROR(ParsePax(data, &pax, header_offset));
      continue;
    }
    if (type == 'L' || type == 'K') {
      ASSIGN_OR_RETURN(std::string data, ReadExtended(size, "GNU long name"));
      data.resize(std::min(data.size(), data.find('\0')));
      (type == 'L' ? long_name : long_link) = std::move(data);
      continue;
    }
    if (type == 'S' || type == 'M' || type == 'V') {
      return MakeError(EOPNOTSUPP,
                       "GNU sparse and multi-volume tar entries are not supported "
                       "(offset " +
                           std::to_string(offset_ - kBlock) + ")");
    }
    break;
  }

  const int64_t at = offset_ - kBlock;
  TarEntry e;
  e.header_offset = header_offset;
  e.type = blk[kType.off];
  if (e.type == '\0' || e.type == '7') e.type = TarEntry::kFile;
  e.name = StringField(blk, kName);
  e.linkname = StringField(blk, kLinkname);
  std::string_view magic = FieldOf(blk, kMagic);
  const bool ustar = magic == std::string_view("ustar\0", 6);
  if (ustar || magic == std::string_view("ustar ", 6)) {
    e.uname = StringField(blk, kUname);
    e.gname = StringField(blk, kGname);
    ASSIGN_OR_RETURN(e.devmajor, NumberField(blk, kDevmajor, at, "devmajor"));
    ASSIGN_OR_RETURN(e.devminor, NumberField(blk, kDevminor, at, "devminor"));
  }
  if (ustar) {
    std::string prefix = StringField(blk, kPrefix);
    if (!prefix.empty()) e.name = prefix + "/" + e.name;
  }
  ASSIGN_OR_RETURN(e.mode, NumberField(blk, kMode, at, "mode"));
  ASSIGN_OR_RETURN(e.uid, NumberField(blk, kUid, at, "uid"));
  ASSIGN_OR_RETURN(e.gid, NumberField(blk, kGid, at, "gid"));
  ASSIGN_OR_RETURN(e.size, NumberField(blk, kSize, at, "size"));
  ASSIGN_OR_RETURN(e.mtime, NumberField(blk, kMtime, at, "mtime"));
  if (long_name) e.name = std::move(*long_name);
  if (long_link) e.linkname = std::move(*long_link);
  for (const auto& [key, value] : pax) {
    if (key == "path") e.name = value;
    if (key == "linkpath") e.linkname = value;
    if (key == "uname") e.uname = value;
    if (key == "gname") e.gname = value;
    for (auto [name, field] : {std::pair<const char*, int64_t*>{"size", &e.size},
                               {"uid", &e.uid},
                               {"gid", &e.gid},
                               {"mtime", &e.mtime}}) {
      if (key != name) continue;
      ASSIGN_OR_RETURN(*field, PaxNumber(value, at, name));
    }
  }
  e.pax = std::move(pax);
  if (e.name.size() > limits_.max_name || e.linkname.size() > limits_.max_name) {
    return MakeError(EFBIG, "tar entry name at offset " + std::to_string(at) + " longer than " +
                                std::to_string(limits_.max_name) + " bytes");
  }
  Status name_ok = CheckTarName(e.name);
  if (!name_ok.ok()) return Annotate(std::move(name_ok).error(), "refusing tar archive");
  // Links, directories and devices carry no data whatever their size field says.
  switch (e.type) {
    case TarEntry::kHardLink:
    case TarEntry::kSymlink:
    case TarEntry::kCharDevice:
    case TarEntry::kBlockDevice:
    case TarEntry::kDirectory:
    case TarEntry::kFifo:
      e.size = 0;
      break;
    default:
      break;
  }
  if (e.size > limits_.max_entry_size) {
    return MakeError(EFBIG, "tar entry \"" + e.name + "\" claims " + std::to_string(e.size) +
                                " bytes (limit " + std::to_string(limits_.max_entry_size) + ")");
  }
  e.data_offset = offset_;
  remaining_ = e.size;
  padding_ = (kBlock - e.size % kBlock) % kBlock;
  return std::optional<TarEntry>(std::move(e));
}

}  // namespace regfs
