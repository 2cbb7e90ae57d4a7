// libFuzzer target: docker-archive tars (docker save, skopeo's docker-archive:) — the files of
// the input (fuzz_input.h's SplitFiles; a name "A -> B" is a symlink A to B) written as a tar
// that NewDockerArchiveSource opens in place, as `regfs copy docker-archive:…` and the
// docker-daemon: source do: manifest.json, the config it names, the layers (plain or
// compressed). Then the copy's reads: the synthesized manifest, which parses, and every blob
// it names. The first byte chooses the image: the only one, by index, or by tag.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "transports/archive/docker_archive.h"
#include "transports/archive/tar_writer.h"
#include "transports/manifest/manifest.h"
#include "transports/util/file_util.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  size_t choice = fuzz::TakeSelector(&text, 4);
  std::string tar;
  TarWriter w([&](const char* p, size_t n) {
    tar.append(p, n);
    return Ok();
  });
  for (const fuzz::File& f : fuzz::SplitFiles(text)) {
    size_t arrow = f.name.find(" -> ");
    Status s = arrow == std::string::npos
                   ? w.WriteFile(f.name, f.content)
                   : w.WriteSymlink(f.name.substr(0, arrow), f.name.substr(arrow + 4));
    if (!s.ok()) return 0;
  }
  if (!w.Finish().ok()) return 0;
  UniqueFd fd(memfd_create("regfs-fuzz-archive", MFD_CLOEXEC));
  REGFS_FUZZ_CHECK(fd.valid());
  REGFS_FUZZ_CHECK(write(fd.get(), tar.data(), tar.size()) == static_cast<ssize_t>(tar.size()));
  static const std::pair<const char*, int> kChoices[] = {
      {"", -1}, {"", 0}, {"", 1}, {"busybox:latest", -1}};
  auto src = NewDockerArchiveSource(std::move(fd), "docker-archive:fuzz.tar",
                                    kChoices[choice].first, kChoices[choice].second);
  if (!src.ok()) return 0;
  auto raw = (*src)->GetManifest("");
  REGFS_FUZZ_CHECK(raw.ok());
  auto m = ParseManifest(raw->bytes, raw->media_type);
  REGFS_FUZZ_CHECK(m.ok() && !m->is_index);
  int64_t budget = 64 << 20;
  auto sink = [&](const char*, size_t n) -> Status {
    budget -= static_cast<int64_t>(n);
    if (budget < 0) return MakeError(EFBIG, "fuzz budget");
    return Ok();
  };
  std::vector<Descriptor> blobs = m->layers;
  blobs.insert(blobs.begin(), m->config);
  for (const Descriptor& d : blobs) {
    BlobInfo b{d.digest, d.size, d.media_type};
    (void)(*src)->GetBlob(b, sink);
  }
  return 0;
}
