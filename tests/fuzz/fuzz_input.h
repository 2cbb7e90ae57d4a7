// Helpers for the fuzz targets: inputs that stand for several files, and the trap that reports
// a broken invariant to libFuzzer as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transports/util/digest.h"

namespace regfs::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// An invariant that must hold for every input; a crash the fuzzer records when it does not.
#define REGFS_FUZZ_CHECK(cond)     \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// The first byte chooses what to fuzz (one of `n`); the rest is the input.
inline size_t TakeSelector(std::string_view* text, size_t n) {
  if (text->empty()) return 0;
  size_t s = static_cast<unsigned char>(text->front()) % n;
  text->remove_prefix(1);
  return s;
}

struct File {
  std::string name;
  std::string content;
};

// Several files in one input: separated by a line "----", each its name's line and then its
// content. Where a file holds "sha256:@N" (N a digit), it is replaced by the digest of file N
// once that file is complete (files refer to later ones; the last is resolved first), so that
// an input can name blobs by their digest as layouts and archives do.
inline std::vector<File> SplitFiles(std::string_view text) {
  std::vector<File> files;
  constexpr std::string_view kSeparator = "\n----\n";
  while (files.size() < 16) {
    size_t end = text.find(kSeparator);
    std::string_view part = text.substr(0, end);
    size_t nl = part.find('\n');
    File f;
    f.name = std::string(part.substr(0, nl));
    if (nl != std::string_view::npos) f.content = std::string(part.substr(nl + 1));
    files.push_back(std::move(f));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + kSeparator.size());
  }
  for (size_t i = files.size(); i-- > 0;) {
    std::string& c = files[i].content;
    for (size_t at = c.find("sha256:@"); at != std::string::npos; at = c.find("sha256:@", at)) {
      size_t n = at + 8 < c.size() ? static_cast<size_t>(c[at + 8] - '0') : 100;
      if (n <= i || n >= files.size()) {
        at += 8;
        continue;
      }
      std::string digest = DigestOf(files[n].content);
      c.replace(at, 9, digest);
      at += digest.size();
    }
  }
  return files;
}

}  // namespace regfs::fuzz
