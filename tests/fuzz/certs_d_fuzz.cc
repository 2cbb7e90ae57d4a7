// libFuzzer target: certs.d directories (containers-certs.d(5)) — the files of the input
// (fuzz_input.h's SplitFiles: a name line, then the contents) written into a directory that
// TlsConfig::LoadDir reads, as LoadTlsConfigFor does for a registry: which names are CAs,
// client certificates and keys, and their PEM. The first file's name is also tried as the
// registry whose directory is looked up: one that IsValidRegistryHost accepts names a
// directory below the certs.d root, never elsewhere.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "transports/http/tls_config.h"
#include "transports/types/image_reference.h"

using namespace regfs;

namespace {

const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::string tmpl = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                       "/regfs-fuzz-certs-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    return tmpl;
  }();
  return dir;
}

void Empty(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) std::abort();
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
  }
  closedir(d);
}

bool UsableName(const std::string& name) {
  return !name.empty() && name.size() < 200 && name != "." && name != ".." &&
         name.find_first_of(std::string("/\0", 2)) == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<fuzz::File> files = fuzz::SplitFiles(fuzz::AsText(data, size));
  const std::string& registry = files[0].name;
  if (IsValidRegistryHost(registry)) {
    // Any length (the 200-byte bound is only this target's, for the files it writes).
    REGFS_FUZZ_CHECK(registry != "." && registry != ".." &&
                     registry.find_first_of(std::string("/\0", 2)) == std::string::npos);
  }
  const std::string& dir = ScratchDir();
  Empty(dir);
  for (const fuzz::File& f : files) {
    if (!UsableName(f.name)) continue;
    int fd = open((dir + "/" + f.name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    if (write(fd, f.content.data(), f.content.size()) < 0) std::abort();
    close(fd);
  }
  (void)TlsConfig::LoadDir(dir);
  return 0;
}
