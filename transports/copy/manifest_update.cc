#include "transports/copy/manifest_update.h"

#include <array>
#include <map>

#include "transports/util/digest.h"
#include "transports/util/go_json.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kOciNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
constexpr std::string_view kDockerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar";

// containers/image's compressionMIMETypeSets: the variants of one kind of layer, indexed by
// Compression (none, gzip, zstd); "" is a variant the format does not have.
using VariantSet = std::array<std::string, 3>;
const std::vector<VariantSet>& VariantSets(std::string_view manifest_type) {
  static const std::vector<VariantSet> kOci = {
      {std::string(kOciLayer), std::string(kOciLayer) + "+gzip", std::string(kOciLayer) + "+zstd"},
      {std::string(kOciNondistributable), std::string(kOciNondistributable) + "+gzip",
       std::string(kOciNondistributable) + "+zstd"},
  };
  static const std::vector<VariantSet> kDocker = {
      {std::string(kDockerForeign), std::string(kDockerForeign) + ".gzip", ""},
      {std::string(kDockerLayer), std::string(kDockerLayer) + ".gzip", ""},
  };
  return manifest_type == media::kDockerV2S2 ? kDocker : kOci;
}

// A JSON object with its members in Go's map order (sorted keys).
ordered_json SortedObject(const json& obj) {
  std::map<std::string, json> sorted;
  for (const auto& [k, v] : obj.items()) sorted[k] = v;
  ordered_json out = ordered_json::object();
  for (const auto& [k, v] : sorted) out[k] = v;
  return out;
}

size_t Index(Compression c) {
  return c == Compression::kNone ? 0 : c == Compression::kGzip ? 1 : 2;
}

// A descriptor decoded into containers/image's struct and encoded again.
ordered_json OciDescriptor(const json& d, bool keep_extras) {
  ordered_json out;
  if (std::string mt = JsonString(d, "mediaType"); !mt.empty()) out["mediaType"] = mt;
  out["digest"] = JsonString(d, "digest");
  out["size"] = JsonInt(d, "size").value_or(0);
  if (!keep_extras) return out;
  if (auto u = d.find("urls"); u != d.end() && u->is_array() && !u->empty()) out["urls"] = *u;
  if (auto a = d.find("annotations"); a != d.end() && a->is_object() && !a->empty()) {
    out["annotations"] = SortedObject(*a);
  }
  if (std::string data = JsonString(d, "data"); !data.empty()) out["data"] = data;
  if (auto p = d.find("platform"); p != d.end() && p->is_object()) {
    ordered_json pl;
    pl["architecture"] = JsonString(*p, "architecture");
    pl["os"] = JsonString(*p, "os");
    if (std::string v = JsonString(*p, "os.version"); !v.empty()) pl["os.version"] = v;
    if (auto f = p->find("os.features"); f != p->end() && f->is_array() && !f->empty()) {
      pl["os.features"] = *f;
    }
    if (std::string v = JsonString(*p, "variant"); !v.empty()) pl["variant"] = v;
    out["platform"] = pl;
  }
  if (std::string at = JsonString(d, "artifactType"); !at.empty()) out["artifactType"] = at;
  return out;
}

ordered_json Schema2Descriptor(const json& d, bool keep_urls) {
  ordered_json out;
  out["mediaType"] = JsonString(d, "mediaType");
  out["size"] = JsonInt(d, "size").value_or(0);
  out["digest"] = JsonString(d, "digest");
  if (auto u = d.find("urls"); keep_urls && u != d.end() && u->is_array() && !u->empty()) {
    out["urls"] = *u;
  }
  return out;
}

// The layer types each format converts the other's into (containers/image's converters).
Result<std::string> ConvertLayerType(std::string_view to, const std::string& mt) {
  static const std::array<std::pair<std::string_view, std::string_view>, 4> kPairs = {{
      {kDockerForeign, kOciNondistributable},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
       "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
      {kDockerLayer, kOciLayer},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip",
       "application/vnd.oci.image.layer.v1.tar+gzip"},
  }};
  for (const auto& [docker, oci] : kPairs) {
    if (to == media::kOciManifest && mt == docker) return std::string(oci);
    if (to == media::kDockerV2S2 && mt == oci) return std::string(docker);
  }
  if (to == media::kDockerV2S2 && LayerMediaTypeCompression(mt) == Compression::kZstd) {
    return MakeError(EINVAL, "converting the manifest: \"" + mt +
                                 "\": zstd compression is not supported for docker images");
  }
  return MakeError(EINVAL, "unknown layer media type during manifest conversion: \"" + mt + "\"");
}

// Go's time.Time as encoding/json writes it (RFC 3339 with the fraction's trailing zeros
// dropped, UTC as Z), from what it parsed. Anything else is kept as it was.
std::string GoTime(const std::string& t) {
  if (t.size() < 20 || t[10] != 'T') return t;
  size_t zone = t.find_first_of("Zz+-", 19);
  if (zone == std::string::npos) return t;
  std::string head = t.substr(0, 19), frac, tz = t.substr(zone);
  if (t[19] == '.') frac = t.substr(20, zone - 20);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  if (tz == "z" || tz == "+00:00") tz = "Z";
  return head + (frac.empty() ? "" : "." + frac) + tz;
}

template <class F>
void IfString(const json& j, const char* key, F put) {
  if (std::string v = JsonString(j, key); !v.empty()) put(v);
}

ordered_json SortedSet(const json& j) {  // map[string]struct{}
  std::map<std::string, int> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys[it.key()] = 0;
  ordered_json out = ordered_json::object();
  for (const auto& [k, _] : keys) out[k] = ordered_json::object();
  return out;
}

ordered_json StringArray(const json& j) {
  ordered_json out = ordered_json::array();
  for (const auto& v : j) out.push_back(v.is_string() ? v.get<std::string>() : std::string());
  return out;
}

}  // namespace

Result<std::string> LayerMediaTypeVariant(std::string_view manifest_type,
                                          std::string_view media_type, Compression c) {
  for (const VariantSet& set : VariantSets(manifest_type)) {
    if (std::find(set.begin(), set.end(), media_type) == set.end()) continue;
    const std::string& variant = set[Index(c)];
    if (variant.empty()) {
      return MakeError(EINVAL, std::string(CompressionName(c)) +
                                   " compression is not supported for type \"" +
                                   std::string(media_type) + "\"");
    }
    return variant;
  }
  return MakeError(EINVAL, "unsupported layer media type for a compression change: \"" +
                               std::string(media_type) + "\"");
}

bool FormatCarries(std::string_view manifest_type, Compression c) {
  return !(manifest_type == media::kDockerV2S2 && c == Compression::kZstd);
}

Result<std::string> OciConfigFromDocker(std::string_view docker_config) {
  json c = json::parse(docker_config, nullptr, false);
  if (!c.is_object()) return MakeError(EINVAL, "the image config is not a JSON object");
  ordered_json out;
  IfString(c, "created", [&](const std::string& v) { out["created"] = GoTime(v); });
  IfString(c, "author", [&](const std::string& v) { out["author"] = v; });
  out["architecture"] = JsonString(c, "architecture");
  IfString(c, "variant", [&](const std::string& v) { out["variant"] = v; });
  out["os"] = JsonString(c, "os");
  IfString(c, "os.version", [&](const std::string& v) { out["os.version"] = v; });
  if (auto f = c.find("os.features"); f != c.end() && f->is_array() && !f->empty()) {
    out["os.features"] = StringArray(*f);
  }
  ordered_json cfg = ordered_json::object();
  if (auto in = c.find("config"); in != c.end() && in->is_object()) {
    IfString(*in, "User", [&](const std::string& v) { cfg["User"] = v; });
    if (auto p = in->find("ExposedPorts"); p != in->end() && p->is_object() && !p->empty()) {
      cfg["ExposedPorts"] = SortedSet(*p);
    }
    for (const char* key : {"Env", "Entrypoint", "Cmd"}) {
      if (auto a = in->find(key); a != in->end() && a->is_array() && !a->empty()) {
        cfg[key] = StringArray(*a);
      }
      if (std::string_view(key) == "Cmd") {
        if (auto v = in->find("Volumes"); v != in->end() && v->is_object() && !v->empty()) {
          cfg["Volumes"] = SortedSet(*v);
        }
      }
    }
    IfString(*in, "WorkingDir", [&](const std::string& v) { cfg["WorkingDir"] = v; });
    if (auto l = in->find("Labels"); l != in->end() && l->is_object() && !l->empty()) {
      std::map<std::string, std::string> sorted;
      for (auto it = l->begin(); it != l->end(); ++it) {
        sorted[it.key()] = it->is_string() ? it->get<std::string>() : "";
      }
      ordered_json labels = ordered_json::object();
      for (const auto& [k, v] : sorted) labels[k] = v;
      cfg["Labels"] = labels;
    }
    IfString(*in, "StopSignal", [&](const std::string& v) { cfg["StopSignal"] = v; });
  }
  out["config"] = cfg;
  ordered_json rootfs;
  const json* rf = c.contains("rootfs") && c["rootfs"].is_object() ? &c["rootfs"] : nullptr;
  rootfs["type"] = rf ? JsonString(*rf, "type") : "";
  if (rf && rf->contains("diff_ids") && (*rf)["diff_ids"].is_array()) {
    rootfs["diff_ids"] = StringArray((*rf)["diff_ids"]);
  } else {
    rootfs["diff_ids"] = nullptr;
  }
  out["rootfs"] = rootfs;
  if (auto h = c.find("history"); h != c.end() && h->is_array() && !h->empty()) {
    ordered_json history = ordered_json::array();
    for (const auto& e : *h) {
      ordered_json item = ordered_json::object();
      IfString(e, "created", [&](const std::string& v) { item["created"] = GoTime(v); });
      IfString(e, "created_by", [&](const std::string& v) { item["created_by"] = v; });
      IfString(e, "author", [&](const std::string& v) { item["author"] = v; });
      IfString(e, "comment", [&](const std::string& v) { item["comment"] = v; });
      if (e.is_object() && e.value("empty_layer", false)) item["empty_layer"] = true;
      history.push_back(item);
    }
    out["history"] = history;
  }
  return GoJson(out);
}

Result<RawManifest> UpdateImageManifest(const RawManifest& src, const Manifest& parsed,
                                        const ManifestUpdate& update) {
  const bool convert = update.target_type != parsed.media_type;
  bool layers_changed = false;
  if (!update.layers.empty()) {
    if (update.layers.size() != parsed.layers.size()) {
      return MakeError(EINVAL, "preparing the updated manifest: layer count changed from " +
                                   std::to_string(parsed.layers.size()) + " to " +
                                   std::to_string(update.layers.size()));
    }
    for (size_t i = 0; i < parsed.layers.size(); ++i) {
      layers_changed |= update.layers[i].digest != parsed.layers[i].digest;
    }
  }
  if (!convert && !layers_changed) return src;
  json doc = json::parse(src.bytes, nullptr, false);
  if (!doc.is_object()) return MakeError(EINVAL, "manifest " + src.digest + " is not JSON");
  const json& config = doc["config"];
  const json& layers = doc["layers"];

  ordered_json out;
  out["schemaVersion"] = 2;
  const bool to_oci = update.target_type == media::kOciManifest;
  if (to_oci) {
    out["mediaType"] = std::string(media::kOciManifest);
    if (convert) {
      if (!update.oci_config) return MakeError(EINVAL, "converting to OCI needs the config");
      ordered_json cd;
      cd["mediaType"] = std::string(kOciConfigMediaType);
      cd["digest"] = DigestOf(*update.oci_config);
      cd["size"] = update.oci_config->size();
      out["config"] = cd;
    } else {
      // UpdateLayerInfos keeps an OCI manifest's own mediaType field as it was.
      if (std::string mt = JsonString(doc, "mediaType"); !mt.empty()) {
        out["mediaType"] = mt;
      } else {
        out.erase("mediaType");
      }
      out["config"] = OciDescriptor(config, true);
    }
  } else {
    out["mediaType"] = std::string(media::kDockerV2S2);
    if (convert) {
      if (JsonString(config, "mediaType") != kOciConfigMediaType) {
        return MakeError(EINVAL, "unsupported image-specific operation on artifact with type \"" +
                                     JsonString(config, "mediaType") + "\"");
      }
      ordered_json cd = Schema2Descriptor(config, true);
      cd["mediaType"] = std::string(kDockerConfigMediaType);
      out["config"] = cd;
    } else {
      out["config"] = Schema2Descriptor(config, true);
    }
  }
  ordered_json new_layers = ordered_json::array();
  for (size_t i = 0; i < parsed.layers.size(); ++i) {
    const json& l = layers[i];
    std::string mt = JsonString(l, "mediaType");
    if (convert) {
      auto converted = ConvertLayerType(update.target_type, mt);
      if (!converted.ok()) return std::move(converted).error();
      mt = *converted;
    }
    ordered_json d;
    if (layers_changed) {
      // containers/image's UpdateLayerInfos: the blob written, its type for how it is
      // compressed; the source's URLs and annotations do not describe it.
      const LayerWritten& w = update.layers[i];
      if (w.compression) {
        auto variant = LayerMediaTypeVariant(update.target_type, mt, *w.compression);
        if (!variant.ok()) {
          return Annotate(std::move(variant).error(),
                          "preparing the updated manifest, layer \"" + w.digest + "\"");
        }
        mt = *variant;
      }
      ordered_json item = {{"mediaType", mt}, {"digest", w.digest}, {"size", w.size}};
      d = to_oci ? OciDescriptor(item, false) : Schema2Descriptor(item, false);
    } else {
      json item = l;
      item["mediaType"] = mt;
      if (to_oci) {
        d = OciDescriptor(item, true);
      } else {
        d = Schema2Descriptor(item, true);
      }
    }
    new_layers.push_back(d);
  }
  out["layers"] = new_layers;
  if (to_oci && !convert) {
    if (auto s = doc.find("subject"); s != doc.end() && s->is_object()) {
      out["subject"] = OciDescriptor(*s, true);
    }
    if (auto a = doc.find("annotations"); a != doc.end() && a->is_object() && !a->empty()) {
      out["annotations"] = SortedObject(*a);
    }
  }
  RawManifest m;
  m.bytes = GoJson(out);
  m.media_type = update.target_type;
  m.digest = DigestOf(m.bytes);
  return m;
}

Result<RawManifest> UpdateIndexInstances(const RawManifest& index,
                                         const std::map<std::string, RawManifest>& replaced) {
  ordered_json doc = ordered_json::parse(index.bytes, nullptr, false);
  if (!doc.is_object() || !doc.contains("manifests") || !doc["manifests"].is_array()) {
    return MakeError(EINVAL, "index " + index.digest + " has no manifests array");
  }
  for (auto& entry : doc["manifests"]) {
    auto it = replaced.find(JsonString(entry, "digest"));
    if (it == replaced.end()) continue;
    entry["mediaType"] = it->second.media_type;
    entry["digest"] = it->second.digest;
    entry["size"] = it->second.bytes.size();
  }
  RawManifest out;
  out.bytes = GoJson(doc);
  out.media_type = index.media_type;
  out.digest = DigestOf(out.bytes);
  return out;
}

}  // namespace regfs
