#include "transports/registry/image_delete.h"

#include <nlohmann/json.hpp>
#include <random>

#include "transports/util/digest.h"

namespace regfs {
namespace {

// The registry refused to delete by tag (distribution before v3 answers 400 DIGEST_INVALID or
// 405 UNSUPPORTED).
bool IsTagDeleteUnsupported(const Error& e) { return e.errnum == EOPNOTSUPP || e.errnum == EINVAL; }

}  // namespace

Result<std::vector<std::string>> TagsSharing(Registry& client, const std::string& repo,
                                             const std::string& tag, const std::string& digest) {
  ASSIGN_OR_RETURN(std::vector<std::string> tags, client.ListTags(repo));
  std::vector<std::string> sharing;
  for (const std::string& t : tags) {
    if (t == tag) continue;
    auto d = client.ResolveDigest(repo, t);
    if (!d.ok()) {
      if (d.error().errnum == ENOENT) continue;  // deleted meanwhile
      return d.error();
    }
    if (*d == digest) sharing.push_back(t);
  }
  return sharing;
}

Status DeleteImage(Registry& client, const std::string& repo, const std::string& ref, bool force,
                   std::vector<std::string>* sharing_out) {
  ASSIGN_OR_RETURN(std::string digest, client.ResolveDigest(repo, ref));
  if (!IsSha256Digest(ref)) {
    Status by_tag = client.DeleteManifest(repo, ref);
    if (by_tag.ok() || !IsTagDeleteUnsupported(by_tag.error())) return by_tag;
    if (!force) {
      ASSIGN_OR_RETURN(std::vector<std::string> sharing, TagsSharing(client, repo, ref, digest));
      if (!sharing.empty()) {
        std::string names;
        for (const auto& t : sharing) names += (names.empty() ? "" : ", ") + t;
        if (sharing_out) *sharing_out = sharing;
        return MakeError(EBUSY, client.registry() + " deletes only by digest, and " + digest +
                                    " is also tagged " + names + " in " + repo +
                                    ": deleting it would delete those tags too");
      }
    }
  }
  return client.DeleteManifest(repo, digest);
}

Status RemoveTag(Registry& client, const std::string& repo, const std::string& tag) {
  ASSIGN_OR_RETURN(RawManifest m, client.GetManifest(repo, tag));
  Status by_tag = client.DeleteManifest(repo, tag);
  if (by_tag.ok() || !IsTagDeleteUnsupported(by_tag.error())) return by_tag;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(m.bytes, nullptr, false);
  if (!j.is_object()) return MakeError(EIO, "manifest of " + repo + ":" + tag + " is not JSON");
  std::random_device rd;
  std::string marker = std::to_string(rd()) + std::to_string(rd());
  if (!j.contains("annotations") || !j["annotations"].is_object()) {
    j["annotations"] = nlohmann::ordered_json::object();
  }
  j["annotations"]["org.regfs.placeholder"] = marker;
  std::string placeholder = j.dump();
  RETURN_IF_ERROR(client.PutManifest(repo, tag, placeholder, m.media_type));
  return client.DeleteManifest(repo, DigestOf(placeholder));
}

}  // namespace regfs
