#include "transports/archive/tar_writer.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace regfs {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kNameSize = 100;
constexpr size_t kPrefixSize = 155;

// Octal, zero-padded to the field less one byte, then NUL (Go's formatOctal).
bool PutOctal(char* field, size_t len, int64_t x) {
  if (x < 0) return false;
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + (x & 7)));
    x >>= 3;
  } while (x);
  if (s.size() > len - 1) return false;
  s.insert(0, len - 1 - s.size(), '0');
  std::memcpy(field, s.data(), s.size());
  field[len - 1] = '\0';
  return true;
}

// (std::copy_n: an empty view's data() may be null, which memcpy must never be given.)
void PutString(char* field, size_t len, std::string_view s) {
  std::copy_n(s.data(), std::min(len, s.size()), field);
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Go's splitUSTARPath: a name longer than 100 bytes split at a '/' into a prefix of at most
// 155 bytes and a name of at most 100.
bool SplitUstar(std::string_view name, std::string_view* prefix, std::string_view* suffix) {
  size_t length = name.size();
  if (length <= kNameSize || !IsAscii(name)) return false;
  if (length > kPrefixSize + 1) {
    length = kPrefixSize + 1;
  } else if (name[length - 1] == '/') {
    --length;
  }
  size_t i = name.substr(0, length).rfind('/');
  if (i == std::string_view::npos || i == 0) return false;
  size_t nlen = name.size() - i - 1;
  if (nlen > kNameSize || nlen == 0 || i > kPrefixSize) return false;
  *prefix = name.substr(0, i);
  *suffix = name.substr(i + 1);
  return true;
}

void SetChecksum(char* blk) {
  std::memset(blk + 148, ' ', 8);
  int64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(blk[i]);
  PutOctal(blk + 148, 7, sum);
  blk[155] = ' ';
}

void SetUstarMagic(char* blk) {
  std::memcpy(blk + 257, "ustar\0", 6);
  std::memcpy(blk + 263, "00", 2);
}

// One PAX record, "LEN key=value\n", LEN counting itself.
std::string PaxRecord(std::string_view key, std::string_view value) {
  size_t base = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = base + 1;
  while (std::to_string(len).size() + base != len) ++len;
  return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

}  // namespace

Status TarWriter::Emit(const char* data, size_t n) {
  RETURN_IF_ERROR(out_(data, n));
  offset_ += static_cast<int64_t>(n);
  return Ok();
}

Status TarWriter::EndEntry() {
  if (deferred_) return MakeError(EINVAL, "a deferred tar entry is still open");
  if (remaining_ != 0) {
    return MakeError(EIO, "tar entry short by " + std::to_string(remaining_) + " bytes");
  }
  static const char kZeros[kBlock] = {};
  size_t pad = (kBlock - static_cast<size_t>(entry_size_ % kBlock)) % kBlock;
  entry_size_ = 0;
  return pad ? Emit(kZeros, pad) : Ok();
}

Result<std::string> TarWriter::HeaderBlocks(const TarHeader& h) {
  if (h.linkname.size() > kNameSize) {
    return MakeError(ENAMETOOLONG, "tar link target too long: " + h.linkname);
  }
  std::string out;
  std::string_view name = h.name, prefix;
  std::string pax_name;
  if (name.size() > kNameSize && !SplitUstar(h.name, &prefix, &name)) {
    // A PAX header carries the whole name; the ustar one gets what fits, as Go writes it.
    std::string data = PaxRecord("path", h.name);
    size_t slash = h.name.rfind('/', h.name.size() - 1);
    std::string dir = slash == std::string::npos ? "" : h.name.substr(0, slash + 1);
    std::string file = slash == std::string::npos ? h.name : h.name.substr(slash + 1);
    std::string xname = (dir + "PaxHeaders.0/" + file).substr(0, kNameSize);
    while (!xname.empty() && xname.back() == '/') xname.pop_back();
    char x[kBlock] = {};
    PutString(x, kNameSize, xname);
    PutOctal(x + 100, 8, 0);
    PutOctal(x + 108, 8, 0);
    PutOctal(x + 116, 8, 0);
    PutOctal(x + 124, 12, static_cast<int64_t>(data.size()));
    PutOctal(x + 136, 12, 0);
    x[156] = 'x';
    SetUstarMagic(x);
    SetChecksum(x);
    out.append(x, kBlock);
    out += data;
    out.append((kBlock - data.size() % kBlock) % kBlock, '\0');
    pax_name = h.name.substr(0, kNameSize);
    name = pax_name;
  }
  const int64_t size = h.type == '0' ? h.size : 0;
  char blk[kBlock] = {};
  PutString(blk, kNameSize, name);
  bool ok = PutOctal(blk + 100, 8, h.mode) && PutOctal(blk + 108, 8, h.uid) &&
            PutOctal(blk + 116, 8, h.gid) && PutOctal(blk + 124, 12, size) &&
            PutOctal(blk + 136, 12, h.mtime);
  if (!ok) return MakeError(EFBIG, "tar header field out of range for " + h.name);
  blk[156] = h.type;
  PutString(blk + 157, kNameSize, h.linkname);
  SetUstarMagic(blk);
  PutOctal(blk + 329, 8, 0);
  PutOctal(blk + 337, 8, 0);
  PutString(blk + 345, kPrefixSize, prefix);
  SetChecksum(blk);
  out.append(blk, kBlock);
  return out;
}

Status TarWriter::WriteHeader(const TarHeader& h) {
  if (finished_) return MakeError(EINVAL, "tar stream already finished");
  RETURN_IF_ERROR(EndEntry());
  ASSIGN_OR_RETURN(std::string blocks, HeaderBlocks(h));
  RETURN_IF_ERROR(Emit(blocks.data(), blocks.size()));
  remaining_ = entry_size_ = h.type == '0' ? h.size : 0;
  return Ok();
}

Result<int64_t> TarWriter::BeginDeferred() {
  if (finished_) return MakeError(EINVAL, "tar stream already finished");
  RETURN_IF_ERROR(EndEntry());
  const int64_t at = offset_;
  static const char kPlaceholder[kBlock] = {};
  RETURN_IF_ERROR(Emit(kPlaceholder, kBlock));
  deferred_ = true;
  remaining_ = INT64_MAX;
  entry_size_ = 0;
  return at;
}

Result<std::string> TarWriter::EndDeferred(const TarHeader& h) {
  if (!deferred_) return MakeError(EINVAL, "no deferred tar entry open");
  const int64_t written = INT64_MAX - remaining_;
  if (h.size != written) {
    return MakeError(EIO, "deferred tar entry: " + std::to_string(written) +
                              " bytes written, the header says " + std::to_string(h.size));
  }
  deferred_ = false;
  remaining_ = 0;
  entry_size_ = written;
  ASSIGN_OR_RETURN(std::string blocks, HeaderBlocks(h));
  if (blocks.size() != kBlock) {
    return MakeError(ENAMETOOLONG, "deferred tar entry name needs a PAX header: " + h.name);
  }
  RETURN_IF_ERROR(EndEntry());
  return blocks;
}

Status TarWriter::WriteData(const char* data, size_t n) {
  if (static_cast<int64_t>(n) > remaining_) {
    if (deferred_) return MakeError(EFBIG, "tar entry too large");
    return MakeError(EIO,
                     "more data than the tar entry's " + std::to_string(entry_size_) + " bytes");
  }
  remaining_ -= static_cast<int64_t>(n);
  return Emit(data, n);
}

Status TarWriter::WriteFile(const std::string& name, std::string_view data) {
  RETURN_IF_ERROR(WriteHeader(TarHeader{name, "", '0', 0444, static_cast<int64_t>(data.size())}));
  return WriteData(data.data(), data.size());
}

Status TarWriter::WriteSymlink(const std::string& name, const std::string& target) {
  return WriteHeader(TarHeader{name, target, '2', 0, 0});
}

Status TarWriter::Finish() {
  if (finished_) return Ok();
  RETURN_IF_ERROR(EndEntry());
  static const char kZeros[2 * kBlock] = {};
  RETURN_IF_ERROR(Emit(kZeros, sizeof kZeros));
  finished_ = true;
  return Ok();
}

}  // namespace regfs
