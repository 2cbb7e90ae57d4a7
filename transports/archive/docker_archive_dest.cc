// docker-archive: as a destination, writing what containers/image's docker/internal/tarfile
// Writer writes: layers as <hex>.tar in the order copied, then the config as <hex>.json, the
// legacy <id>/{layer.tar,VERSION,json} entries, manifest.json and repositories.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "transports/archive/docker_archive.h"
#include "transports/archive/tar_writer.h"
#include "transports/util/digest.h"
#include "transports/util/go_json.h"

namespace regfs {
namespace {

using nlohmann::json;

constexpr size_t kChunk = 1 << 20;

bool IsConfigMediaType(std::string_view t) {
  return t == "application/vnd.docker.container.image.v1+json" ||
         t == "application/vnd.oci.image.config.v1+json";
}

std::string LayerFile(std::string_view digest) { return std::string(DigestHex(digest)) + ".tar"; }

// Where a blob of unknown size waits for its size: an unlinked file in the temporary
// directory for big files ($TMPDIR, else /var/tmp, as containers/image picks it).
Result<UniqueFd> NewSpoolFile() {
  const char* env = getenv("TMPDIR");
  std::string dir = env && *env ? env : "/var/tmp";
  UniqueFd fd(open(dir.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600));
  if (fd.valid()) return fd;
  std::string name = dir + "/regfs-spool-XXXXXX";
  fd = UniqueFd(mkostemp(name.data(), O_CLOEXEC));
  if (!fd.valid()) return SysError("creating a temporary file in", dir);
  unlink(name.c_str());
  return fd;
}

// The legacy layer config's JSON, as Go marshals a map[string]any: keys sorted.
std::string LegacyJson(const std::map<std::string, std::string>& raw_members) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : raw_members) {
    if (!first) out += ',';
    first = false;
    AppendGoJsonString(out, k);
    out += ':';
    out += v;
  }
  return out + "}";
}

class DockerArchiveDestination;

// Streams one layer of known size straight into the tar; the destination is busy until the
// writer commits or is dropped.
class DirectWriter final : public BlobWriter {
 public:
  DirectWriter(DockerArchiveDestination& d, BlobInfo blob) : d_(d), blob_(std::move(blob)) {}
  ~DirectWriter() override;
  Status Write(const char* data, size_t n) override;
  Status Commit(const BlobInfo& verified) override;

 private:
  DockerArchiveDestination& d_;
  const BlobInfo blob_;
  bool done_ = false;
};

// Holds a config (small, bounded) until PutManifest, where containers/image writes it.
class ConfigWriter final : public BlobWriter {
 public:
  explicit ConfigWriter(DockerArchiveDestination& d) : d_(d) {}
  Status Write(const char* data, size_t n) override {
    if (bytes_.size() + n > static_cast<size_t>(kMaxConfigSize)) {
      return MakeError(EFBIG, "config larger than " + std::to_string(kMaxConfigSize) + " bytes");
    }
    bytes_.append(data, n);
    return Ok();
  }
  Status Commit(const BlobInfo& verified) override;

 private:
  DockerArchiveDestination& d_;
  std::string bytes_;
};

// A layer whose digest and size are known only at the end, into a sink that can be
// rewritten: streamed into a tar entry whose header is written over its placeholder at
// Commit(). The destination is busy until then.
class DeferredWriter final : public BlobWriter {
 public:
  DeferredWriter(DockerArchiveDestination& d, int64_t header_at) : d_(d), header_at_(header_at) {}
  ~DeferredWriter() override;
  Status Write(const char* data, size_t n) override;
  Status Commit(const BlobInfo& verified) override;

 private:
  DockerArchiveDestination& d_;
  const int64_t header_at_;
  bool done_ = false;
};

// A layer whose digest and size are known only at the end, into a sequential sink: spooled,
// then appended at Commit().
class SpoolWriter final : public BlobWriter {
 public:
  SpoolWriter(DockerArchiveDestination& d, UniqueFd fd) : d_(d), fd_(std::move(fd)) {}
  Status Write(const char* data, size_t n) override {
    RETURN_IF_ERROR(WriteAll(fd_.get(), data, n, "a temporary file"));
    size_ += static_cast<int64_t>(n);
    return Ok();
  }
  Status Commit(const BlobInfo& verified) override;

 private:
  DockerArchiveDestination& d_;
  UniqueFd fd_;
  int64_t size_ = 0;
};

class DockerArchiveDestination final : public ImageDestination {
 public:
  DockerArchiveDestination(std::unique_ptr<ArchiveSink> out, std::optional<DockerReference> tag,
                           std::string description)
      : out_(std::move(out)),
        tag_(std::move(tag)),
        description_(std::move(description)),
        tar_([this](const char* data, size_t n) { return out_->Write(data, n); }) {}

  std::string Describe() const override { return description_; }

  LayerCompression DesiredLayerCompression() const override {
    return LayerCompression::kDecompress;
  }
  bool SerialBlobs() const override { return true; }

  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference*) override {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    std::lock_guard<std::mutex> lock(mu_);
    return written_.count(blob.digest) > 0 || configs_.count(blob.digest) > 0;
  }

  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    if (IsConfigMediaType(blob.media_type))
      return std::unique_ptr<BlobWriter>(new ConfigWriter(*this));
    if ((blob.digest.empty() || blob.size < 0) && !out_->CanRewrite()) {
      ASSIGN_OR_RETURN(UniqueFd fd, NewSpoolFile());
      return std::unique_ptr<BlobWriter>(new SpoolWriter(*this, std::move(fd)));
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (blob.digest.empty() || blob.size < 0) {
      idle_.wait(lock, [&] { return !busy_; });
      RETURN_IF_ERROR(broken_);
      ASSIGN_OR_RETURN(int64_t header_at, tar_.BeginDeferred());
      busy_ = true;
      return std::unique_ptr<BlobWriter>(new DeferredWriter(*this, header_at));
    }
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    // One entry at a time: a pipeline that copies blobs in parallel waits here.
    idle_.wait(lock, [&] { return !busy_; });
    RETURN_IF_ERROR(broken_);
    RETURN_IF_ERROR(tar_.WriteHeader(TarHeader{LayerFile(blob.digest), "", '0', 0444, blob.size}));
    busy_ = true;
    return std::unique_ptr<BlobWriter>(new DirectWriter(*this, blob));
  }

  Status PutManifest(const RawManifest& m, bool is_instance) override {
    if (is_instance)
      return MakeError(EOPNOTSUPP, "manifest lists are not supported by " + description_);
    ASSIGN_OR_RETURN(Manifest parsed, ParseManifest(m.bytes, m.media_type));
    if (parsed.is_index) {
      return MakeError(EOPNOTSUPP, "manifest lists are not supported by " + description_);
    }
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return !busy_; });
    RETURN_IF_ERROR(broken_);
    Status s = WriteImage(parsed);
    if (!s.ok()) broken_ = s;
    return s;
  }

  Status Commit() override {
    std::unique_lock<std::mutex> lock(mu_);
    RETURN_IF_ERROR(broken_);
    if (manifest_json_.empty()) return MakeError(EINVAL, "no image written to " + description_);
    RETURN_IF_ERROR(tar_.WriteFile("manifest.json", manifest_json_));
    RETURN_IF_ERROR(tar_.WriteFile("repositories", GoJson(repositories_)));
    RETURN_IF_ERROR(tar_.Finish());
    return out_->Commit();
  }

  // For the writers.
  Status WriteToEntry(const char* data, size_t n) {
    Status s = tar_.WriteData(data, n);
    if (!s.ok()) Break(s);
    return s;
  }
  void FinishEntry(const BlobInfo& blob, bool ok, Status why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ok) {
      written_[blob.digest] = blob.size;
    } else if (broken_.ok()) {
      broken_ =
          why.ok() ? MakeError(EIO, "a layer of " + description_ + " was not completed") : why;
    }
    busy_ = false;
    idle_.notify_all();
  }
  // The deferred entry at `header_at` is `blob`: its header goes over the placeholder.
  Status EndDeferred(int64_t header_at, const BlobInfo& blob) {
    Status s = [&]() -> Status {
      RETURN_IF_ERROR(ValidateDigest(blob.digest));
      ASSIGN_OR_RETURN(std::string header, tar_.EndDeferred(TarHeader{LayerFile(blob.digest), "",
                                                                      '0', 0444, blob.size}));
      return out_->Rewrite(header_at, header.data(), header.size());
    }();
    FinishEntry(blob, s.ok(), s);
    return s;
  }
  Status KeepConfig(const BlobInfo& blob, std::string bytes) {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    std::lock_guard<std::mutex> lock(mu_);
    configs_[blob.digest] = std::move(bytes);
    return Ok();
  }
  Status AppendSpooled(const BlobInfo& blob, int fd, int64_t size) {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return !busy_; });
    RETURN_IF_ERROR(broken_);
    if (written_.count(blob.digest)) return Ok();
    Status s = CopySpooled(blob, fd, size);
    if (!s.ok()) {
      broken_ = s;
      return s;
    }
    written_[blob.digest] = size;
    return Ok();
  }

 private:
  void Break(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.ok()) broken_ = s;
  }

  // REQUIRES: mu_ held, not busy.
  Status CopySpooled(const BlobInfo& blob, int fd, int64_t size) {
    RETURN_IF_ERROR(tar_.WriteHeader(TarHeader{LayerFile(blob.digest), "", '0', 0444, size}));
    std::vector<char> buf(kChunk);
    for (int64_t off = 0; off < size;) {
      ssize_t n = pread(fd, buf.data(), buf.size(), off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return SysError("reading back", "a temporary file");
      RETURN_IF_ERROR(tar_.WriteData(buf.data(), static_cast<size_t>(n)));
      off += n;
    }
    return Ok();
  }

  // The config, the legacy layer entries, and this image's manifest.json item.
  // REQUIRES: mu_ held, not busy.
  Status WriteImage(const Manifest& m) {
    auto config = configs_.find(m.config.digest);
    if (config == configs_.end()) {
      return MakeError(EIO, "the config " + m.config.digest + " was not written to " +
                                description_ + " before its manifest");
    }
    for (const Descriptor& l : m.layers) {
      if (!written_.count(l.digest)) {
        return MakeError(EIO, "layer " + l.digest + " was not written to " + description_);
      }
    }
    const std::string config_file = std::string(DigestHex(m.config.digest)) + ".json";
    RETURN_IF_ERROR(tar_.WriteFile(config_file, config->second));
    ASSIGN_OR_RETURN(std::string last_id, WriteLegacyLayers(m, config->second));

    json layer_files = json::array();
    for (const Descriptor& l : m.layers) layer_files.push_back(LayerFile(l.digest));
    json tags = json::array();
    if (tag_) tags.push_back(tag_->Name() + ":" + tag_->tag);
    nlohmann::ordered_json item = {
        {"Config", config_file}, {"RepoTags", tags}, {"Layers", layer_files}};
    manifest_json_ = "[" + GoJson(item) + "]";
    repositories_ = nlohmann::ordered_json::object();
    if (tag_ && !last_id.empty()) repositories_[tag_->Name()] = {{tag_->tag, last_id}};
    return Ok();
  }

  // writeLegacyMetadataLocked: one <id>/ directory per layer, ids chained from the diffIDs.
  // Returns the top layer's id.
  Result<std::string> WriteLegacyLayers(const Manifest& m, const std::string& config) {
    auto members = RawJsonMembers(config);
    if (!members)
      return MakeError(EINVAL, "the config " + m.config.digest + " is not a JSON object");
    std::string chain_id, last_id;
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const Descriptor& l = m.layers[i];
      std::map<std::string, std::string> legacy;
      if (!last_id.empty()) legacy["parent"] = "\"" + last_id + "\"";
      if (i + 1 == m.layers.size()) {
        for (const char* attr : {"architecture", "config", "container", "container_config",
                                 "created", "docker_version", "os"}) {
          auto it = members->find(attr);
          legacy[attr] = it == members->end() ? "null" : GoCompactJson(it->second);
        }
      }
      chain_id = chain_id.empty() ? l.digest : DigestOf(chain_id + " " + l.digest);
      legacy["layer_id"] = "\"" + chain_id + "\"";
      const std::string id(DigestHex(DigestOf(LegacyJson(legacy))));
      legacy.erase("layer_id");
      legacy["id"] = "\"" + id + "\"";
      if (legacy_sent_.insert(id).second) {
        RETURN_IF_ERROR(tar_.WriteSymlink(id + "/layer.tar", "../" + LayerFile(l.digest)));
        RETURN_IF_ERROR(tar_.WriteFile(id + "/VERSION", "1.0"));
        RETURN_IF_ERROR(tar_.WriteFile(id + "/json", LegacyJson(legacy)));
      }
      last_id = id;
    }
    return last_id;
  }

  const std::unique_ptr<ArchiveSink> out_;
  const std::optional<DockerReference> tag_;
  const std::string description_;
  // Lock order: mu_ only. The tar stream is written under mu_, or by the one writer that
  // holds busy_.
  std::mutex mu_;
  std::condition_variable idle_;
  bool busy_ = false;                           // guarded by mu_
  Status broken_ = Ok();                        // guarded by mu_: the stream is unusable
  TarWriter tar_;                               // see above
  std::map<std::string, int64_t> written_;      // guarded by mu_: layers in the stream
  std::map<std::string, std::string> configs_;  // guarded by mu_: held until PutManifest
  std::set<std::string> legacy_sent_;           // guarded by mu_
  std::string manifest_json_;                   // guarded by mu_
  nlohmann::ordered_json repositories_ = nlohmann::ordered_json::object();  // guarded by mu_
};

DirectWriter::~DirectWriter() {
  if (!done_) d_.FinishEntry(blob_, false, Ok());
}

Status DirectWriter::Write(const char* data, size_t n) { return d_.WriteToEntry(data, n); }

Status DirectWriter::Commit(const BlobInfo& verified) {
  done_ = true;
  if (verified.digest != blob_.digest || verified.size != blob_.size) {
    Error e = MakeError(EIO, "layer " + blob_.digest + " arrived as " + verified.digest +
                                 ", after its tar entry was written");
    d_.FinishEntry(blob_, false, e);
    return e;
  }
  d_.FinishEntry(blob_, true, Ok());
  return Ok();
}

DeferredWriter::~DeferredWriter() {
  if (!done_) d_.FinishEntry(BlobInfo{}, false, Ok());
}

Status DeferredWriter::Write(const char* data, size_t n) { return d_.WriteToEntry(data, n); }

Status DeferredWriter::Commit(const BlobInfo& verified) {
  done_ = true;
  return d_.EndDeferred(header_at_, verified);
}

Status ConfigWriter::Commit(const BlobInfo& verified) {
  return d_.KeepConfig(verified, std::move(bytes_));
}

Status SpoolWriter::Commit(const BlobInfo& verified) {
  if (verified.size != size_) return MakeError(EIO, "spooled layer size mismatch");
  return d_.AppendSpooled(verified, fd_.get(), size_);
}

}  // namespace

Result<std::unique_ptr<ImageDestination>> NewDockerArchiveDestination(
    std::unique_ptr<ArchiveSink> out, std::optional<DockerReference> tag, std::string description) {
  if (tag && tag->tag.empty()) return MakeError(EINVAL, "a docker-archive tag needs a tag");
  return std::unique_ptr<ImageDestination>(
      new DockerArchiveDestination(std::move(out), std::move(tag), std::move(description)));
}

Result<std::unique_ptr<ImageDestination>> NewDockerArchiveFileDestination(
    const std::string& path, std::optional<DockerReference> tag) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size != 0) {
    return MakeError(EEXIST, "docker-archive:" + path +
                                 ": docker-archive doesn't support modifying existing images");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveSink> sink, NewFileArchiveSink(path));
  std::string desc = "docker-archive:" + path;
  if (tag) desc += ":" + tag->String();
  return NewDockerArchiveDestination(std::move(sink), std::move(tag), std::move(desc));
}

}  // namespace regfs
