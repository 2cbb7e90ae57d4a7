#include "transports/manifest/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "transports/util/digest.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;

Error Malformed(const std::string& why) { return MakeError(EINVAL, "malformed manifest: " + why); }

Result<Descriptor> ParseDescriptor(const json& j, const char* what) {
  if (!j.is_object()) return Malformed(std::string(what) + " is not an object");
  Descriptor d;
  auto mt = j.find("mediaType");
  if (mt != j.end() && mt->is_string()) d.media_type = mt->get<std::string>();
  auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) return Malformed(std::string(what) + " has no digest");
  d.digest = dg->get<std::string>();
  if (auto s = ValidateDigest(d.digest); !s.ok()) return Malformed(s.error().message);
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0) {
    return Malformed(std::string(what) + " " + d.digest + " has no valid size");
  }
  d.size = sz->get<int64_t>();
  auto pl = j.find("platform");
  if (pl != j.end() && pl->is_object()) {
    Platform p;
    p.architecture = JsonString(*pl, "architecture");
    p.os = JsonString(*pl, "os");
    p.variant = JsonString(*pl, "variant");
    d.platform = p;
  }
  auto an = j.find("annotations");
  if (an != j.end() && an->is_object()) {
    for (auto& [k, v] : an->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  auto urls = j.find("urls");
  if (urls != j.end() && urls->is_array()) {
    for (auto& u : *urls) {
      if (u.is_string()) d.urls.push_back(u.get<std::string>());
    }
  }
  return d;
}

}  // namespace

bool IsIndexMediaType(std::string_view mt) {
  return mt == media::kOciIndex || mt == media::kDockerList;
}

std::string GuessManifestMediaType(std::string_view bytes, std::string_view hint) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::string(hint);
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string()) {
    return mt->get<std::string>();
  }
  if (JsonInt(j, "schemaVersion") == 1) {
    return std::string(j.contains("signatures") ? media::kDockerV1Signed : media::kDockerV1);
  }
  if (!hint.empty()) return std::string(hint);
  if (j.contains("manifests")) return std::string(media::kOciIndex);
  if (j.contains("config") || j.contains("layers")) return std::string(media::kOciManifest);
  return {};
}

Result<Manifest> ParseManifest(std::string_view bytes, std::string_view hint) {
  if (static_cast<int64_t>(bytes.size()) > kMaxManifestSize) {
    return MakeError(
        EFBIG, "manifest of " + std::to_string(bytes.size()) + " bytes is over the 4 MiB limit");
  }
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Malformed("not valid JSON");
  if (!j.is_object()) return Malformed("not a JSON object");
  Manifest m;
  m.media_type = GuessManifestMediaType(bytes, hint);
  if (m.media_type == media::kDockerV1 || m.media_type == media::kDockerV1Signed ||
      JsonInt(j, "schemaVersion") == 1) {
    return MakeError(EINVAL,
                     "Docker schema 1 manifests are not supported (deprecated since 2017); "
                     "re-push the image with a current client");
  }
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer() || sv->get<int>() != 2) {
    return Malformed("schemaVersion is not 2");
  }
  if (m.media_type != media::kOciManifest && m.media_type != media::kOciIndex &&
      m.media_type != media::kDockerV2S2 && m.media_type != media::kDockerList) {
    return MakeError(EINVAL, "unsupported manifest media type \"" + m.media_type + "\"");
  }
  m.is_index = IsIndexMediaType(m.media_type);
  if (m.is_index) {
    auto ms = j.find("manifests");
    if (ms == j.end() || !ms->is_array()) return Malformed("index has no \"manifests\" array");
    for (auto& d : *ms) {
      ASSIGN_OR_RETURN(Descriptor desc, ParseDescriptor(d, "manifest"));
      m.manifests.push_back(std::move(desc));
    }
    return m;
  }
  auto cfg = j.find("config");
  if (cfg == j.end()) return Malformed("no \"config\" descriptor");
  ASSIGN_OR_RETURN(m.config, ParseDescriptor(*cfg, "config"));
  auto ls = j.find("layers");
  if (ls == j.end() || !ls->is_array()) return Malformed("no \"layers\" array");
  for (auto& d : *ls) {
    ASSIGN_OR_RETURN(Descriptor desc, ParseDescriptor(d, "layer"));
    m.layers.push_back(std::move(desc));
  }
  return m;
}

Platform HostPlatform() {
  utsname u{};
  uname(&u);
  std::string machine = u.machine;
  Platform p{"amd64", "linux", ""};
  if (machine == "aarch64" || machine == "arm64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (machine.rfind("armv7", 0) == 0) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine == "i686" || machine == "i386") {
    p.architecture = "386";
  } else if (machine == "ppc64le" || machine == "s390x" || machine == "riscv64") {
    p.architecture = machine;
  }
  return p;
}

Result<Descriptor> ChooseInstance(const Manifest& index, const Platform& want) {
  // Variants in order of preference, as containers/image orders them: the exact one, older
  // ones that the CPU also runs (arm v7 runs v6 and v5), then an entry without a variant.
  std::vector<std::string> variants = {want.variant};
  if (want.architecture == "arm") {
    for (std::string v : {"v7", "v6", "v5"}) {
      if (want.variant.empty() || v < want.variant) variants.push_back(v);
    }
  }
  if (!want.variant.empty()) variants.push_back("");
  for (const std::string& variant : variants) {
    for (const auto& d : index.manifests) {
      if (d.platform && d.platform->os == want.os &&
          d.platform->architecture == want.architecture && d.platform->variant == variant) {
        return d;
      }
    }
  }
  if (want.variant.empty() && want.architecture != "arm") {
    // No variant asked for (amd64 and the like): any variant of the architecture will do.
    for (const auto& d : index.manifests) {
      if (d.platform && d.platform->os == want.os &&
          d.platform->architecture == want.architecture) {
        return d;
      }
    }
  }
  std::string offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (!offered.empty()) offered += ", ";
    offered += d.platform->os + "/" + d.platform->architecture;
    if (!d.platform->variant.empty()) offered += "/" + d.platform->variant;
  }
  return MakeError(ENOENT, "no image found in manifest list for architecture " + want.architecture +
                               ", OS " + want.os +
                               (offered.empty() ? "" : " (offered: " + offered + ")"));
}

Result<Platform> ParsePlatform(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() < 4) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  auto valid = [](const std::string& part) {
    return !part.empty() && part.size() <= 32 &&
           part.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") == std::string::npos;
  };
  if (parts.size() < 2 || parts.size() > 3 || !std::all_of(parts.begin(), parts.end(), valid)) {
    return MakeError(EINVAL, "\"" + std::string(text) +
                                 "\" is not a platform (os/architecture[/variant], e.g. "
                                 "linux/arm64/v8)");
  }
  return Platform{parts[1], parts[0], parts.size() == 3 ? parts[2] : ""};
}

std::string PlatformString(const Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

Result<RawManifest> ReduceIndex(const RawManifest& raw, const Manifest& index,
                                const std::vector<Platform>& platforms) {
  std::set<std::string> keep;
  for (const Platform& p : platforms) {
    ASSIGN_OR_RETURN(Descriptor d, ChooseInstance(index, p));
    keep.insert(d.digest);
  }
  bool drops = false;
  for (const Descriptor& d : index.manifests) drops |= keep.count(d.digest) == 0;
  if (!drops) return raw;
  // Parsed again keeping key order, so that only the dropped entries change.
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(raw.bytes, nullptr, false);
  if (doc.is_discarded() || !doc.contains("manifests") || !doc["manifests"].is_array()) {
    return MakeError(EINVAL, "index " + raw.digest + " can't be reduced: no manifests array");
  }
  nlohmann::ordered_json kept = nlohmann::ordered_json::array();
  for (const auto& entry : doc["manifests"]) {
    if (entry.is_object() && entry.contains("digest") && entry["digest"].is_string() &&
        keep.count(entry["digest"].get<std::string>())) {
      kept.push_back(entry);
    }
  }
  doc["manifests"] = std::move(kept);
  RawManifest out;
  out.bytes = doc.dump();
  out.media_type = raw.media_type;
  out.digest = DigestOf(out.bytes);
  return out;
}

}  // namespace regfs
