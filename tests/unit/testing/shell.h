// Running a shell command from a test (real tools such as gpg).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

namespace regfs::testing {

// The output of `command` run by /bin/sh (stderr discarded), or nullopt when it fails.
inline std::optional<std::string> Shell(const std::string& command) {
  FILE* p = popen((command + " 2>/dev/null").c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

}  // namespace regfs::testing
