// A fresh temporary directory for one test, removed with all it holds when the object goes:
//
//   TempDir tmp("regfs-cache-test");   // $TMPDIR (default /tmp)/regfs-cache-test-XXXXXX
//   tmp.path()                         // its path
//   tmp.Sub("a/b")                     // path() + "/a/b" (nothing is created)
//
// Removal makes the directory itself writable first (a test may have taken that away) and
// fails the running test if it cannot remove everything.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "transports/util/file_util.h"

namespace regfs::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "regfs-test") {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    }
    path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    chmod(path_.c_str(), 0700);
    Status s = RemoveAll(path_);
    EXPECT_TRUE(s.ok()) << s.error().message;
  }

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

}  // namespace regfs::testing
