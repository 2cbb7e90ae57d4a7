// docker-archive: as a source, as containers/image's docker/internal/tarfile reads it.
#include <fcntl.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "transports/archive/docker_archive.h"
#include "transports/archive/tar_archive.h"
#include "transports/util/digest.h"
#include "transports/util/go_json.h"

namespace regfs {
namespace {

using nlohmann::json;

// containers/image iolimits.MaxTarFileManifestSize.
constexpr int64_t kMaxTarManifestSize = 1 << 20;
constexpr size_t kMaxLayers = 4096;
constexpr size_t kChunk = 1 << 20;

struct Layer {
  const TarArchive::Member* member = nullptr;
  Compression compression = Compression::kNone;
  int64_t size = -1;  // uncompressed, which is what GetBlob serves
};

Status Pump(TarInput& in, const ByteSink& sink, int64_t* total = nullptr) {
  std::vector<char> buf(kChunk);
  while (true) {
    ASSIGN_OR_RETURN(size_t n, in.Read(buf.data(), buf.size()));
    if (n == 0) return Ok();
    if (total) *total += static_cast<int64_t>(n);
    if (sink) RETURN_IF_ERROR(sink(buf.data(), n));
  }
}

Result<std::unique_ptr<TarInput>> OpenLayer(const TarArchive& a, const Layer& l) {
  ASSIGN_OR_RETURN(std::unique_ptr<TarInput> in, a.OpenData(*l.member));
  return NewDecompressingInput(l.compression, std::move(in));
}

class DockerArchiveSource final : public ImageSource {
 public:
  DockerArchiveSource(std::shared_ptr<const TarArchive> archive, std::string config,
                      std::map<std::string, Layer> layers, RawManifest manifest)
      : archive_(std::move(archive)),
        config_(std::move(config)),
        config_digest_(DigestOf(config_)),
        layers_(std::move(layers)),
        manifest_(std::move(manifest)) {}

  std::string Describe() const override { return archive_->description(); }

  Result<RawManifest> GetManifest(const std::string& instance_digest) override {
    if (!instance_digest.empty()) {
      return MakeError(EINVAL, "manifest lists are not supported by docker-archive:");
    }
    return manifest_;
  }

  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    if (blob.digest == config_digest_) return sink(config_.data(), config_.size());
    auto it = layers_.find(blob.digest);
    if (it == layers_.end()) {
      return MakeError(ENOENT, "unknown blob " + blob.digest + " in " + Describe());
    }
    ASSIGN_OR_RETURN(std::unique_ptr<TarInput> in, OpenLayer(*archive_, it->second));
    return Pump(*in, sink);
  }

 private:
  const std::shared_ptr<const TarArchive> archive_;
  const std::string config_;
  const std::string config_digest_;
  const std::map<std::string, Layer> layers_;  // by diffID
  const RawManifest manifest_;
};

std::vector<std::string> StringArray(const json& item, const char* key) {
  std::vector<std::string> out;
  auto it = item.find(key);
  if (it == item.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// ChooseManifestItem: by tag, by index, or the only one.
Result<json> ChooseItem(const json& items, const std::string& desc, const std::string& ref,
                        int index) {
  if (!ref.empty()) {
    ASSIGN_OR_RETURN(DockerReference want, ParseDockerReference(ref));
    const std::string wanted = want.String();
    for (size_t i = 0; i < items.size(); ++i) {
      for (const std::string& tag : StringArray(items[i], "RepoTags")) {
        auto parsed = ParseDockerReference(tag);
        if (!parsed.ok()) {
          return MakeError(EINVAL, "invalid tag \"" + tag + "\" in manifest.json item @" +
                                       std::to_string(i) + " of " + desc);
        }
        if (parsed->String() == wanted) return items[i];
      }
    }
    return MakeError(ENOENT, "tag \"" + wanted + "\" not found in " + desc);
  }
  if (index >= 0) {
    if (static_cast<size_t>(index) >= items.size()) {
      return MakeError(ENOENT, "invalid source index @" + std::to_string(index) + ", only " +
                                   std::to_string(items.size()) + " manifest items available in " +
                                   desc);
    }
    return items[static_cast<size_t>(index)];
  }
  if (items.size() != 1) {
    return MakeError(EINVAL, desc + ": expected 1 image in manifest.json, found " +
                                 std::to_string(items.size()) +
                                 " (name one as docker-archive:PATH:REF or :@N)");
  }
  return items[0];
}

// The v2s2 manifest containers/image synthesizes: the config, and each diffID with the size
// of the layer uncompressed and, as it writes it, the gzip layer media type.
std::string SynthesizeManifest(const std::string& config, const std::vector<std::string>& diff_ids,
                               const std::map<std::string, Layer>& layers) {
  std::string m = "{\"schemaVersion\":2,\"mediaType\":";
  AppendGoJsonString(m, media::kDockerV2S2);
  m += ",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":" +
       std::to_string(config.size()) + ",\"digest\":\"" + DigestOf(config) + "\"},\"layers\":[";
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    if (i) m += ',';
    m += "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":" +
         std::to_string(layers.at(diff_ids[i]).size) + ",\"digest\":";
    AppendGoJsonString(m, diff_ids[i]);
    m += '}';
  }
  m += "]}";
  return m;
}

Result<std::unique_ptr<ImageSource>> OpenSource(std::shared_ptr<const TarArchive> archive,
                                                const std::string& ref, int index) {
  const std::string& desc = archive->description();
  ASSIGN_OR_RETURN(std::string manifest_bytes,
                   archive->ReadFile("manifest.json", kMaxTarManifestSize));
  json items = json::parse(manifest_bytes, nullptr, false);
  if (!items.is_array()) {
    return MakeError(EINVAL, "manifest.json in " + desc + " is not a JSON array of images");
  }
  ASSIGN_OR_RETURN(json item, ChooseItem(items, desc, ref, index));
  if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string()) {
    return MakeError(EINVAL, "manifest.json item in " + desc + " names no Config");
  }
  const std::string config_path = item["Config"].get<std::string>();
  ASSIGN_OR_RETURN(std::string config, archive->ReadFile(config_path, kMaxConfigSize));
  json parsed = json::parse(config, nullptr, false);
  if (!parsed.is_object()) {
    return MakeError(EINVAL, "decoding tar config " + config_path + " in " + desc + ": not JSON");
  }
  auto rootfs = parsed.find("rootfs");
  if (rootfs == parsed.end() || !rootfs->is_object()) {
    return MakeError(EINVAL, "invalid image config (rootfs is not set): " + config_path);
  }
  std::vector<std::string> diff_ids;
  if (rootfs->contains("diff_ids") && (*rootfs)["diff_ids"].is_array()) {
    for (const auto& d : (*rootfs)["diff_ids"]) {
      if (!d.is_string() || !IsSha256Digest(d.get<std::string>())) {
        return MakeError(EINVAL, "invalid diff_id in " + config_path + " of " + desc);
      }
      diff_ids.push_back(d.get<std::string>());
    }
  }
  const std::vector<std::string> layer_paths = StringArray(item, "Layers");
  if (layer_paths.size() != diff_ids.size()) {
    return MakeError(EINVAL, "inconsistent layer count in " + desc + ": " +
                                 std::to_string(layer_paths.size()) + " in manifest.json, " +
                                 std::to_string(diff_ids.size()) + " in the config");
  }
  if (diff_ids.size() > kMaxLayers) {
    return MakeError(EFBIG, desc + ": more than " + std::to_string(kMaxLayers) + " layers");
  }
  std::map<std::string, Layer> layers;
  std::set<std::string> paths;
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    // The same diff twice is one layer (docker save links the second to the first).
    if (layers.count(diff_ids[i])) continue;
    const std::string path = CleanTarPath(layer_paths[i]);
    if (!paths.insert(path).second) {
      return MakeError(EINVAL,
                       "layer file " + path + " used for two different diff_ids in " + desc);
    }
    auto member = archive->FindFile(path);
    if (!member.ok()) {
      return Annotate(std::move(member).error(), "layer " + diff_ids[i] + " of the image");
    }
    Layer l;
    l.member = *member;
    l.compression = DetectCompression(l.member->head);
    Status supported = RefuseUnsupportedCompression(l.member->head);
    if (!supported.ok()) return Annotate(std::move(supported).error(), "layer file " + path);
    if (l.compression == Compression::kNone) {
      l.size = l.member->entry.size;
    } else {
      // Served decompressed (the manifest names it by its diffID), so its size is that of
      // the uncompressed stream, found as containers/image finds it: by decompressing it.
      l.size = 0;
      ASSIGN_OR_RETURN(std::unique_ptr<TarInput> in, OpenLayer(*archive, l));
      Status s = Pump(*in, nullptr, &l.size);
      if (!s.ok()) return Annotate(std::move(s).error(), "reading " + path + " in " + desc);
    }
    layers[diff_ids[i]] = l;
  }
  RawManifest m;
  m.bytes = SynthesizeManifest(config, diff_ids, layers);
  m.media_type = std::string(media::kDockerV2S2);
  m.digest = DigestOf(m.bytes);
  return std::unique_ptr<ImageSource>(new DockerArchiveSource(std::move(archive), std::move(config),
                                                              std::move(layers), std::move(m)));
}

}  // namespace

Result<std::unique_ptr<ImageSource>> NewDockerArchiveSource(UniqueFd fd, std::string description,
                                                            const std::string& ref, int index) {
  if (!ref.empty() && index >= 0) {
    return MakeError(EINVAL, "docker-archive: either a tag or a source index, not both");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const TarArchive> archive,
                   TarArchive::Open(std::move(fd), std::move(description)));
  return OpenSource(std::move(archive), ref, index);
}

Result<std::unique_ptr<ImageSource>> NewDockerArchiveSource(const std::string& path,
                                                            const std::string& ref, int index) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("opening docker archive", path);
  std::string desc = "docker-archive:" + path;
  if (!ref.empty()) desc += ":" + ref;
  if (index >= 0) desc += ":@" + std::to_string(index);
  return NewDockerArchiveSource(std::move(fd), std::move(desc), ref, index);
}

}  // namespace regfs
