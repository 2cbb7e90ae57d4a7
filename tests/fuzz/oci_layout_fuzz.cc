// libFuzzer target: OCI image layouts (oci:, and oci-archive: once unpacked) — the files of
// the input (fuzz_input.h's SplitFiles; "sha256:@N" names file N by its digest) served as the
// layout's files to NewOciSource: index.json, the manifest blob it picks by ref, the instances
// of an index, the config and layers, read as the copy reads them. The first byte chooses the
// ref asked for.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "transports/manifest/manifest.h"
#include "transports/oci/oci_transport.h"

using namespace regfs;

namespace {

class MemoryLayout final : public OciLayoutFiles {
 public:
  explicit MemoryLayout(std::map<std::string, std::string> files) : files_(std::move(files)) {}
  Result<std::string> ReadFile(const std::string& name, int64_t max) const override {
    auto it = files_.find(name);
    if (it == files_.end()) return MakeError(ENOENT, name + ": no such file");
    if (static_cast<int64_t>(it->second.size()) > max) return MakeError(EFBIG, name + " too large");
    return it->second;
  }
  Status StreamFile(const std::string& name, const ByteSink& sink) const override {
    auto it = files_.find(name);
    if (it == files_.end()) return MakeError(ENOENT, name + ": no such file");
    return sink(it->second.data(), it->second.size());
  }

 private:
  const std::map<std::string, std::string> files_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  static const char* kRefs[] = {"", "latest", "v1"};
  const char* ref = kRefs[fuzz::TakeSelector(&text, std::size(kRefs))];
  std::map<std::string, std::string> files;
  for (fuzz::File& f : fuzz::SplitFiles(text)) {
    // A file named "blob" is stored where its digest puts it.
    std::string name = f.name == "blob" ? "blobs/sha256/" + DigestOf(f.content).substr(7) : f.name;
    files.emplace(std::move(name), std::move(f.content));
  }
  auto src = NewOciSource(std::make_shared<MemoryLayout>(std::move(files)), "oci:fuzz", ref);
  if (!src.ok()) return 0;
  auto top = (*src)->GetManifest("");
  REGFS_FUZZ_CHECK(top.ok());
  auto m = ParseManifest(top->bytes, top->media_type);
  if (!m.ok()) return 0;
  std::vector<Manifest> images;
  if (m->is_index) {
    for (size_t i = 0; i < m->manifests.size() && i < 8; ++i) {
      auto instance = (*src)->GetManifest(m->manifests[i].digest);
      if (!instance.ok()) continue;
      auto parsed = ParseManifest(instance->bytes, instance->media_type);
      if (parsed.ok() && !parsed->is_index) images.push_back(std::move(*parsed));
    }
  } else {
    images.push_back(std::move(*m));
  }
  int64_t budget = 64 << 20;
  auto sink = [&](const char*, size_t n) -> Status {
    budget -= static_cast<int64_t>(n);
    if (budget < 0) return MakeError(EFBIG, "fuzz budget");
    return Ok();
  };
  for (const Manifest& image : images) {
    std::vector<Descriptor> blobs = image.layers;
    blobs.insert(blobs.begin(), image.config);
    for (const Descriptor& d : blobs) {
      BlobInfo b{d.digest, d.size, d.media_type};
      (void)(*src)->GetBlob(b, sink);
    }
  }
  return 0;
}
