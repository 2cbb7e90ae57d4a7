#include "transports/oci/oci_transport.h"

#include <nlohmann/json.hpp>

#include "transports/dir/local_blob.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::ordered_json;

constexpr const char* kRefAnnotation = "org.opencontainers.image.ref.name";
constexpr std::string_view kLayoutFile = "{\"imageLayoutVersion\": \"1.0.0\"}";
constexpr int64_t kMaxIndexSize = 64 << 20;

std::string BlobPath(const std::string& layout, std::string_view digest) {
  return layout + "/blobs/sha256/" + std::string(DigestHex(digest));
}

Result<ordered_json> ParseIndex(const std::string& bytes, const std::string& where) {
  ordered_json j = ordered_json::parse(bytes, nullptr, false);
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array()) {
    return MakeError(EINVAL, where + " is not an OCI image index");
  }
  return j;
}

Result<ordered_json> ReadIndex(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileBounded(path + "/index.json", kMaxIndexSize));
  return ParseIndex(bytes, path + "/index.json");
}

std::string BlobName(std::string_view digest) {
  return "blobs/sha256/" + std::string(DigestHex(digest));
}

class DirLayoutFiles final : public OciLayoutFiles {
 public:
  explicit DirLayoutFiles(std::string root) : root_(std::move(root)) {}
  Result<std::string> ReadFile(const std::string& name, int64_t max) const override {
    return ReadFileBounded(root_ + "/" + name, max);
  }
  Status StreamFile(const std::string& name, const ByteSink& sink) const override {
    return regfs::StreamFile(root_ + "/" + name, sink);
  }

 private:
  const std::string root_;
};

class OciSource final : public ImageSource {
 public:
  OciSource(std::shared_ptr<const OciLayoutFiles> files, std::string description, RawManifest top)
      : files_(std::move(files)), description_(std::move(description)), top_(std::move(top)) {}

  std::string Describe() const override { return description_; }

  Result<RawManifest> GetManifest(const std::string& instance_digest) override {
    if (instance_digest.empty()) return top_;
    return ReadManifestBlob(*files_, description_, instance_digest, "");
  }

  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return files_->StreamFile(BlobName(blob.digest), sink);
  }

  static Result<RawManifest> ReadManifestBlob(const OciLayoutFiles& files,
                                              const std::string& description,
                                              const std::string& digest,
                                              const std::string& media_type) {
    RETURN_IF_ERROR(ValidateDigest(digest));
    ASSIGN_OR_RETURN(std::string bytes, files.ReadFile(BlobName(digest), kMaxManifestSize));
    RawManifest m;
    m.digest = DigestOf(bytes);
    if (m.digest != digest) {
      return MakeError(
          EIO, "manifest blob " + digest + " in " + description + " has digest " + m.digest);
    }
    m.media_type = GuessManifestMediaType(bytes, media_type);
    m.bytes = std::move(bytes);
    return m;
  }

 private:
  const std::shared_ptr<const OciLayoutFiles> files_;
  const std::string description_;
  const RawManifest top_;
};

class OciDestination final : public ImageDestination {
 public:
  OciDestination(std::string path, std::string ref, bool created)
      : path_(std::move(path)), ref_(std::move(ref)), created_(created) {}

  ~OciDestination() override {
    if (!committed_ && created_) (void)RemoveAll(path_);
  }

  std::string Describe() const override {
    return "oci:" + path_ + (ref_.empty() ? "" : ":" + ref_);
  }

  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference*) override {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return PathExists(BlobPath(path_, blob.digest));
  }

  // A re-encoded blob (no digest yet) is named when it is committed.
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    if (blob.digest.empty()) {
      return FileBlobWriter::Create(path_ + "/blobs/sha256/",
                                    [this](const BlobInfo& done) { return BlobPathFor(done); });
    }
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return FileBlobWriter::Create(BlobPath(path_, blob.digest));
  }

  Result<std::string> BlobPathFor(const BlobInfo& blob) const {
    RETURN_IF_ERROR(ValidateDigest(blob.digest));
    return BlobPath(path_, blob.digest);
  }

  Status PutManifest(const RawManifest& m, bool is_instance) override {
    RETURN_IF_ERROR(WriteFileAtomic(BlobPath(path_, m.digest), m.bytes, 0644));
    if (!is_instance) top_ = m;
    return Ok();
  }

  Status Commit() override {
    ordered_json index;
    if (PathExists(path_ + "/index.json")) {
      ASSIGN_OR_RETURN(index, ReadIndex(path_));
    } else {
      index = ordered_json{{"schemaVersion", 2}, {"manifests", ordered_json::array()}};
    }
    ordered_json kept = ordered_json::array();
    for (auto& d : index["manifests"]) {
      bool same_name = !ref_.empty() && d.contains("annotations") &&
                       JsonString(d["annotations"], kRefAnnotation) == ref_;
      if (!same_name) kept.push_back(d);
    }
    ordered_json desc = {
        {"mediaType", top_.media_type}, {"digest", top_.digest}, {"size", top_.bytes.size()}};
    if (!ref_.empty()) desc["annotations"] = {{kRefAnnotation, ref_}};
    kept.push_back(desc);
    index["manifests"] = kept;
    RETURN_IF_ERROR(WriteFileAtomic(path_ + "/oci-layout", kLayoutFile, 0644));
    RETURN_IF_ERROR(WriteFileAtomic(path_ + "/index.json", index.dump(), 0644));
    committed_ = true;
    return Ok();
  }

 private:
  const std::string path_;
  const std::string ref_;
  const bool created_;
  RawManifest top_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> NewOciSource(const std::string& path, const std::string& ref) {
  RETURN_IF_ERROR(ReadIndex(path));  // a missing or bad index.json named by its path
  return NewOciSource(std::make_shared<DirLayoutFiles>(path),
                      "oci:" + path + (ref.empty() ? "" : ":" + ref), ref);
}

Result<std::unique_ptr<ImageSource>> NewOciSource(std::shared_ptr<const OciLayoutFiles> files,
                                                  std::string description, const std::string& ref) {
  ASSIGN_OR_RETURN(std::string index_bytes, files->ReadFile("index.json", kMaxIndexSize));
  ASSIGN_OR_RETURN(ordered_json index, ParseIndex(index_bytes, "index.json in " + description));
  const ordered_json* found = nullptr;
  for (const auto& d : index["manifests"]) {
    std::string name;
    if (d.contains("annotations")) name = JsonString(d["annotations"], kRefAnnotation);
    if (ref.empty() ? index["manifests"].size() == 1 : name == ref) {
      found = &d;
      break;
    }
  }
  if (!found) {
    if (ref.empty()) {
      return MakeError(EINVAL, description + " holds " + std::to_string(index["manifests"].size()) +
                                   " images: name one as " + description + ":REF");
    }
    return MakeError(ENOENT, "no image named \"" + ref + "\" in " + description);
  }
  if (!found->contains("digest") || !(*found)["digest"].is_string()) {
    return MakeError(EINVAL, description + ": index entry without a digest");
  }
  ASSIGN_OR_RETURN(RawManifest top, OciSource::ReadManifestBlob(
                                        *files, description, (*found)["digest"].get<std::string>(),
                                        JsonString(*found, "mediaType")));
  return std::unique_ptr<ImageSource>(
      new OciSource(std::move(files), std::move(description), std::move(top)));
}

Result<std::unique_ptr<ImageDestination>> NewOciDestination(const std::string& raw_path,
                                                            const std::string& ref) {
  std::string path = raw_path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  bool created = !PathExists(path);
  if (!created && !IsDirectory(path)) return MakeError(ENOTDIR, path + " is not a directory");
  if (!created && PathExists(path + "/index.json")) RETURN_IF_ERROR(ReadIndex(path));
  if (created && !IsDirectory(DirName(path))) {
    errno = ENOENT;
    return SysError("creating OCI layout in", DirName(path));
  }
  Status s = MakeDirs(path + "/blobs/sha256", 0755);
  if (!s.ok()) {
    if (created) (void)RemoveAll(path);
    return std::move(s).error();
  }
  // What a killed copy left: blobs, index.json and oci-layout being written.
  RemoveStaleStaging(path);
  RemoveStaleStaging(path + "/blobs/sha256");
  return std::unique_ptr<ImageDestination>(new OciDestination(path, ref, created));
}

}  // namespace regfs
