#include "transports/image/inspect.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "transports/util/digest.h"

namespace regfs {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

Result<std::string> ReadConfig(ImageSource& src, const Descriptor& d) {
  if (d.size > kMaxConfigSize) return MakeError(EFBIG, "config blob over the 4 MiB limit");
  std::string bytes;
  RETURN_IF_ERROR(src.GetBlob(BlobInfo{d.digest, d.size, d.media_type},
                              [&](const char* data, size_t n) -> Status {
                                if (static_cast<int64_t>(bytes.size() + n) > kMaxConfigSize) {
                                  return MakeError(EFBIG, "config blob over the 4 MiB limit");
                                }
                                bytes.append(data, n);
                                return Ok();
                              }));
  if (DigestOf(bytes) != d.digest) {
    return MakeError(EIO, "config blob does not match its digest " + d.digest);
  }
  return bytes;
}

// A JSON value for a Go string map (sorted keys), or null when absent or empty-and-nil.
ordered_json StringMap(const json& j) {
  if (!j.is_object()) return nullptr;
  ordered_json out = ordered_json::object();
  std::map<std::string, std::string> sorted;
  for (auto& [k, v] : j.items()) sorted[k] = v.is_string() ? v.get<std::string>() : "";
  for (auto& [k, v] : sorted) out[k] = v;
  return out;
}

ordered_json StringList(const json& j) {
  if (!j.is_array()) return nullptr;
  ordered_json out = ordered_json::array();
  for (const auto& v : j) out.push_back(v.is_string() ? v.get<std::string>() : "");
  return out;
}

ordered_json Time(const json& j) {
  if (!j.is_string()) return nullptr;
  std::string t = NormalizeRfc3339(j.get<std::string>());
  if (t.empty()) return nullptr;
  return t;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& Field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

}  // namespace

std::string GoJsonEscapes(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out.push_back(c);
  }
  return out;
}

std::string NormalizeRfc3339(const std::string& t) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (t.size() < 20) return {};
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u, 11u, 12u, 14u, 15u, 17u, 18u}) {
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return {};
  }
  if (t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' ||
      t[16] != ':') {
    return {};
  }
  std::string out = t.substr(0, 10) + "T" + t.substr(11, 8);
  size_t i = 19;
  if (i < t.size() && t[i] == '.') {
    size_t start = ++i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    std::string frac = t.substr(start, std::min<size_t>(i - start, 9));
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    if (!frac.empty()) out += "." + frac;
  }
  std::string zone = t.substr(i);
  if (zone == "Z" || zone == "z" || zone == "+00:00" || zone == "-00:00") return out + "Z";
  auto digit = [&](size_t k) { return std::isdigit(static_cast<unsigned char>(zone[k])) != 0; };
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' && digit(1) &&
      digit(2) && digit(4) && digit(5)) {
    return out + zone;
  }
  return {};
}

Result<ResolvedImage> ResolveImage(ImageSource& src, const Platform& platform) {
  ResolvedImage r;
  ASSIGN_OR_RETURN(r.top, src.GetManifest(""));
  ASSIGN_OR_RETURN(r.parsed, ParseManifest(r.top.bytes, r.top.media_type));
  r.manifest = r.top;
  if (r.parsed.is_index) {
    ASSIGN_OR_RETURN(Descriptor chosen, ChooseInstance(r.parsed, platform));
    ASSIGN_OR_RETURN(r.manifest, src.GetManifest(chosen.digest));
    if (r.manifest.digest != chosen.digest) {
      return MakeError(EIO, "instance manifest does not match its digest " + chosen.digest);
    }
    ASSIGN_OR_RETURN(r.parsed, ParseManifest(r.manifest.bytes, r.manifest.media_type));
    if (r.parsed.is_index) return MakeError(EOPNOTSUPP, "nested indexes are not supported");
  }
  ASSIGN_OR_RETURN(r.config, ReadConfig(src, r.parsed.config));
  return r;
}

std::string InspectJson(const ResolvedImage& image, const std::string& name,
                        const std::vector<std::string>& repo_tags) {
  json config = json::parse(image.config, nullptr, false);
  const json& cc = Field(config, "config");
  ordered_json out = ordered_json::object();
  if (!name.empty()) out["Name"] = name;
  out["Digest"] = image.top.digest;
  out["RepoTags"] = repo_tags;
  bool docker = image.parsed.media_type == media::kDockerV2S2;
  ordered_json created = Time(Field(config, "created"));
  if (created.is_null() && docker) created = "0001-01-01T00:00:00Z";
  out["Created"] = created;
  out["DockerVersion"] = config.is_object() ? Str(config, "docker_version") : "";
  out["Labels"] = StringMap(Field(cc, "Labels"));
  out["Architecture"] = config.is_object() ? Str(config, "architecture") : "";
  out["Os"] = config.is_object() ? Str(config, "os") : "";
  ordered_json layers = ordered_json::array();
  ordered_json layers_data = ordered_json::array();
  for (const auto& l : image.parsed.layers) {
    layers.push_back(l.digest);
    ordered_json ann = nullptr;
    if (!l.annotations.empty()) {
      ann = ordered_json::object();
      for (const auto& [k, v] : l.annotations) ann[k] = v;
    }
    layers_data.push_back(ordered_json{
        {"MIMEType", l.media_type}, {"Digest", l.digest}, {"Size", l.size}, {"Annotations", ann}});
  }
  out["Layers"] = layers;
  out["LayersData"] = layers_data;
  out["Env"] = StringList(Field(cc, "Env"));
  return GoJsonEscapes(out.dump(4)) + "\n";
}

Result<std::string> OciConfigJson(const std::string& config_bytes) {
  json c = json::parse(config_bytes, nullptr, false);
  if (!c.is_object()) return MakeError(EINVAL, "image config is not a JSON object");
  ordered_json out = ordered_json::object();
  if (auto t = Time(Field(c, "created")); !t.is_null()) out["created"] = t;
  if (auto a = Str(c, "author"); !a.empty()) out["author"] = a;
  out["architecture"] = Str(c, "architecture");
  if (auto v = Str(c, "variant"); !v.empty()) out["variant"] = v;
  out["os"] = Str(c, "os");
  if (auto v = Str(c, "os.version"); !v.empty()) out["os.version"] = v;
  if (auto f = StringList(Field(c, "os.features")); f.is_array() && !f.empty())
    out["os.features"] = f;
  const json& cc = Field(c, "config");
  ordered_json oc = ordered_json::object();
  auto set_str = [&](const char* k) {
    if (auto v = Str(cc.is_object() ? cc : json::object(), k); !v.empty()) oc[k] = v;
  };
  auto set_list = [&](const char* k) {
    if (auto v = StringList(Field(cc, k)); v.is_array() && !v.empty()) oc[k] = v;
  };
  auto set_set = [&](const char* k) {
    const json& m = Field(cc, k);
    if (!m.is_object() || m.empty()) return;
    ordered_json o = ordered_json::object();
    std::map<std::string, int> sorted;
    for (auto& [key, v] : m.items()) sorted[key] = 0;
    for (auto& [key, v] : sorted) o[key] = ordered_json::object();
    oc[k] = o;
  };
  set_str("User");
  set_set("ExposedPorts");
  set_list("Env");
  set_list("Entrypoint");
  set_list("Cmd");
  set_set("Volumes");
  set_str("WorkingDir");
  if (auto l = StringMap(Field(cc, "Labels")); l.is_object() && !l.empty()) oc["Labels"] = l;
  set_str("StopSignal");
  if (Field(cc, "ArgsEscaped").is_boolean() && Field(cc, "ArgsEscaped").get<bool>()) {
    oc["ArgsEscaped"] = true;
  }
  out["config"] = oc;
  const json& rootfs = Field(c, "rootfs");
  ordered_json diff_ids = StringList(Field(rootfs, "diff_ids"));
  out["rootfs"] =
      ordered_json{{"type", rootfs.is_object() ? Str(rootfs, "type") : ""}, {"diff_ids", diff_ids}};
  const json& history = Field(c, "history");
  if (history.is_array() && !history.empty()) {
    ordered_json hs = ordered_json::array();
    for (const auto& h : history) {
      ordered_json o = ordered_json::object();
      if (auto t = Time(Field(h, "created")); !t.is_null()) o["created"] = t;
      for (const char* k : {"created_by", "author", "comment"}) {
        if (h.is_object()) {
          if (auto v = Str(h, k); !v.empty()) o[k] = v;
        }
      }
      if (Field(h, "empty_layer").is_boolean() && Field(h, "empty_layer").get<bool>()) {
        o["empty_layer"] = true;
      }
      hs.push_back(o);
    }
    out["history"] = hs;
  }
  return GoJsonEscapes(out.dump(4)) + "\n";
}

}  // namespace regfs
