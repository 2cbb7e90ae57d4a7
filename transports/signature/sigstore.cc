#include "transports/signature/sigstore.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "transports/util/base64.h"
#include "transports/util/digest.h"
#include "transports/util/go_json.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using OJson = nlohmann::ordered_json;

constexpr char kOciManifestMediaType[] = "application/vnd.oci.image.manifest.v1+json";
// containers/image's limit on an attachment config (iolimits.MaxConfigBodySize).

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// The curve of an EC key ("prime256v1", …), or "" for another key type.
std::string EcGroup(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return {};
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
      1) {
    return {};
  }
  return group;
}

// The NIST curves sigstore's ECDSA verifier accepts.
bool IsNistCurve(const std::string& group) {
  return group == SN_X9_62_prime256v1 || group == SN_secp384r1 || group == SN_secp521r1;
}

// sigstore's RSA verifiers refuse keys below 2048 bits.
constexpr int kMinRsaBits = 2048;

std::string KeyKind(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      return "ECDSA " + EcGroup(key);
    case EVP_PKEY_RSA:
      return "RSA-" + std::to_string(EVP_PKEY_get_bits(key));
    case EVP_PKEY_ED25519:
      return "Ed25519";
    default:
      return "unsupported";
  }
}

// Checks that `key` is a public key type sigstore verifies with.
Status CheckVerifyKey(EVP_PKEY* key) {
  if (key == nullptr) return MakeError(EINVAL, "null public key");
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      std::string group = EcGroup(key);
      if (!IsNistCurve(group)) {
        return MakeError(EINVAL, "unsupported ECDSA curve \"" + group +
                                     "\" (P-256, P-384 and P-521 are supported)");
      }
      return Ok();
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
        return MakeError(EINVAL, "RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
                                     " bits is too small (at least " + std::to_string(kMinRsaBits) +
                                     ")");
      }
      return Ok();
    case EVP_PKEY_ED25519:
      return Ok();
    default:
      return MakeError(EINVAL,
                       "unsupported public key type (ECDSA, RSA and Ed25519 are supported)");
  }
}

// Whether `sig` is a valid signature of `data` by `key`: ECDSA (DER) and RSA PKCS#1 v1.5 over
// SHA-256, Ed25519 over the message itself, as sigstore's LoadVerifier(key, SHA256) does.
bool VerifyWith(EVP_PKEY* key, std::string_view data, std::string_view sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  const EVP_MD* md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    ERR_clear_error();
    return false;
  }
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    ERR_clear_error();
    return false;
  }
  int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  return rc == 1;
}

// Parses JSON, noting whether any object has a key twice (Go's paranoid parser refuses that;
// nlohmann keeps the last).
template <class Json>
Json ParseNoDuplicates(std::string_view text, bool* duplicate) {
  using Event = nlohmann::detail::parse_event_t;
  std::vector<std::set<std::string>> keys;
  *duplicate = false;
  typename Json::parser_callback_t cb = [&](int, Event event, Json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        keys.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Event::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.template get<std::string>()).second) {
          *duplicate = true;
        }
        break;
      default:
        break;
    }
    return true;
  };
  return Json::parse(text, cb, /*allow_exceptions=*/false);
}

// Checks that `obj` is an object with exactly the fields `names`.
Status ExactFields(const nlohmann::json& obj, const char* what,
                   std::initializer_list<const char*> names) {
  if (!obj.is_object()) return MakeError(EINVAL, std::string(what) + " is not a JSON object");
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (const char* n : names) known = known || key == n;
    if (!known) return MakeError(EINVAL, std::string(what) + ": unknown field \"" + key + "\"");
  }
  for (const char* n : names) {
    if (!obj.contains(n))
      return MakeError(EINVAL, std::string(what) + ": field \"" + n + "\" missing");
  }
  return Ok();
}

// A digest as go-digest's Parse accepts it for the algorithms containers/image has.
bool IsValidDigest(std::string_view d) {
  size_t colon = d.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view alg = d.substr(0, colon), hex = d.substr(colon + 1);
  size_t want = alg == "sha256" ? 64 : alg == "sha384" ? 96 : alg == "sha512" ? 128 : 0;
  if (want == 0 || hex.size() != want) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// One layer descriptor of an attachment manifest.
struct Layer {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

Result<Layer> ParseLayer(const OJson& j, size_t index) {
  std::string what = "attachment layer " + std::to_string(index);
  if (!j.is_object()) return MakeError(EINVAL, what + " is not a JSON object");
  Layer layer;
  auto mt = j.find("mediaType");
  if (mt != j.end() && !mt->is_null()) {
    if (!mt->is_string()) return MakeError(EINVAL, what + ": mediaType is not a string");
    layer.media_type = mt->get<std::string>();
  }
  auto d = j.find("digest");
  if (d == j.end() || !d->is_string()) return MakeError(EINVAL, what + ": no digest");
  layer.digest = d->get<std::string>();
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer()) return MakeError(EINVAL, what + ": no size");
  layer.size = sz->get<int64_t>();
  auto ann = j.find("annotations");
  if (ann != j.end() && !ann->is_null()) {
    if (!ann->is_object()) return MakeError(EINVAL, what + ": annotations is not an object");
    for (const auto& [k, v] : ann->items()) {
      if (!v.is_string())
        return MakeError(EINVAL, what + ": annotation \"" + k + "\" not a string");
      layer.annotations[k] = v.get<std::string>();
    }
  }
  return layer;
}

// An attachment manifest parsed for editing: an object with a layers array.
Result<OJson> ParseAttachmentManifest(std::string_view manifest) {
  bool duplicate = false;
  OJson doc = ParseNoDuplicates<OJson>(manifest, &duplicate);
  if (doc.is_discarded() || !doc.is_object()) {
    return MakeError(EINVAL, "attachment manifest is not a JSON object");
  }
  if (duplicate) return MakeError(EINVAL, "attachment manifest has a duplicate key");
  auto mt = doc.find("mediaType");
  if (mt != doc.end() && !(mt->is_string() && mt->get<std::string>() == kOciManifestMediaType)) {
    return MakeError(
        EINVAL, "attachment manifest is not an OCI image manifest (mediaType " + mt->dump() + ")");
  }
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) {
    return MakeError(EINVAL, "attachment manifest has no layers array");
  }
  return doc;
}

// A descriptor as imgspecv1.Descriptor marshals: mediaType, digest, size, annotations
// (omitempty).
OJson Descriptor(const std::string& media_type, const std::string& digest, int64_t size,
                 const std::map<std::string, std::string>& annotations) {
  OJson d = OJson::object();
  d["mediaType"] = media_type;
  d["digest"] = digest;
  d["size"] = size;
  if (!annotations.empty()) {
    OJson a = OJson::object();
    for (const auto& [k, v] : annotations) a[k] = v;  // std::map: Go's sorted key order
    d["annotations"] = std::move(a);
  }
  return d;
}

bool LayerMatches(const Layer& layer, const Signature& sig) {
  return layer.media_type == sig.mime_type &&
         layer.size == static_cast<int64_t>(sig.payload.size()) &&
         layer.digest == DigestOf(sig.payload) && layer.annotations == sig.annotations;
}

class SigstoreSigner : public Signer {
 public:
  SigstoreSigner(EvpPkeyPtr key, std::string describe)
      : key_(std::move(key)), describe_(std::move(describe)) {}
  std::string Describe() const override { return describe_; }
  Signature::Format format() const override { return Signature::Format::kSigstore; }
  Result<Signature> Sign(const std::string& manifest_digest,
                         const std::string& docker_reference) override {
    return SignSigstore(key_.get(), manifest_digest, docker_reference);
  }

 private:
  EvpPkeyPtr key_;
  std::string describe_;
};

}  // namespace

std::string SigstoreAttachmentTag(const std::string& manifest_digest) {
  std::string tag = manifest_digest;
  size_t colon = tag.find(':');
  if (colon != std::string::npos) tag[colon] = '-';
  return tag + ".sig";
}

Result<std::string> SigstorePayloadJson(const SigstorePayload& payload) {
  if (payload.manifest_digest.empty() || payload.docker_reference.empty()) {
    return MakeError(EINVAL, "unexpected empty signature content");
  }
  // json.Marshal of map[string]any: keys sorted at every level.
  std::string out = "{\"critical\":{\"identity\":{\"docker-reference\":";
  AppendGoJsonString(out, payload.docker_reference);
  out += "},\"image\":{\"docker-manifest-digest\":";
  AppendGoJsonString(out, payload.manifest_digest);
  out += "},\"type\":";
  AppendGoJsonString(out, kSigstorePayloadType);
  out += "},\"optional\":{";
  if (payload.creator) {
    out += "\"creator\":";
    AppendGoJsonString(out, *payload.creator);
  }
  if (payload.timestamp) {
    if (payload.creator) out += ',';
    out += "\"timestamp\":" + std::to_string(*payload.timestamp);
  }
  out += "}}";
  return out;
}

Result<SigstorePayload> ParseSigstorePayload(std::string_view text) {
  bool duplicate = false;
  nlohmann::json doc = ParseNoDuplicates<nlohmann::json>(text, &duplicate);
  if (doc.is_discarded()) return MakeError(EINVAL, "sigstore payload is not valid JSON");
  if (duplicate) return MakeError(EINVAL, "sigstore payload has a duplicate key");
  RETURN_IF_ERROR(ExactFields(doc, "sigstore payload", {"critical", "optional"}));
  SigstorePayload out;

  const auto& optional = doc["optional"];
  if (!optional.is_null()) {
    if (!optional.is_object()) {
      return MakeError(EINVAL, "sigstore payload: optional is not a JSON object");
    }
    // Other optional fields are ignored, as containers/image ignores them.
    if (auto it = optional.find("creator"); it != optional.end()) {
      if (!it->is_string()) {
        return MakeError(EINVAL, "sigstore payload: optional.creator is not a string");
      }
      out.creator = it->get<std::string>();
    }
    if (auto it = optional.find("timestamp"); it != optional.end()) {
      if (!it->is_number()) {
        return MakeError(EINVAL, "sigstore payload: optional.timestamp is not a number");
      }
      if (it->is_number_integer()) {
        out.timestamp = it->get<int64_t>();
      } else {
        double t = it->get<double>();
        if (!std::isfinite(t) || t != std::trunc(t) || std::fabs(t) > 9.2e18) {
          return MakeError(EINVAL, "sigstore payload: optional.timestamp is not an integer");
        }
        out.timestamp = static_cast<int64_t>(t);
      }
    }
  }

  const auto& critical = doc["critical"];
  RETURN_IF_ERROR(
      ExactFields(critical, "sigstore payload: critical", {"type", "image", "identity"}));
  if (!critical["type"].is_string()) {
    return MakeError(EINVAL, "sigstore payload: critical.type is not a string");
  }
  std::string type = critical["type"].get<std::string>();
  if (type != kSigstorePayloadType) {
    return MakeError(EINVAL,
                     "sigstore payload type is \"" + type + "\", not " + kSigstorePayloadType);
  }
  const auto& image = critical["image"];
  RETURN_IF_ERROR(
      ExactFields(image, "sigstore payload: critical.image", {"docker-manifest-digest"}));
  if (!image["docker-manifest-digest"].is_string()) {
    return MakeError(EINVAL, "sigstore payload: docker-manifest-digest is not a string");
  }
  out.manifest_digest = image["docker-manifest-digest"].get<std::string>();
  if (!IsValidDigest(out.manifest_digest)) {
    return MakeError(
        EINVAL, "sigstore payload: invalid docker-manifest-digest \"" + out.manifest_digest + "\"");
  }
  const auto& identity = critical["identity"];
  RETURN_IF_ERROR(
      ExactFields(identity, "sigstore payload: critical.identity", {"docker-reference"}));
  if (!identity["docker-reference"].is_string()) {
    return MakeError(EINVAL, "sigstore payload: docker-reference is not a string");
  }
  out.docker_reference = identity["docker-reference"].get<std::string>();
  return out;
}

Result<Signature> SignSigstore(EVP_PKEY* key, const std::string& manifest_digest,
                               const std::string& docker_reference) {
  SigstorePayload payload;
  payload.manifest_digest = manifest_digest;
  payload.docker_reference = docker_reference;
  payload.creator = kSigstoreCreator;
  payload.timestamp = static_cast<int64_t>(std::time(nullptr));
  return SignSigstore(key, payload);
}

Result<Signature> SignSigstore(EVP_PKEY* key, const SigstorePayload& payload) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return MakeError(EINVAL, "a sigstore signing key must be an ECDSA key");
  }
  ASSIGN_OR_RETURN(std::string body, SigstorePayloadJson(payload));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return MakeError(ENOMEM, "signing: out of memory");
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return OpensslError(EINVAL, "signing with the sigstore key");
  }
  const auto* data = reinterpret_cast<const unsigned char*>(body.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data, body.size()) != 1) {
    return OpensslError(EINVAL, "signing with the sigstore key");
  }
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, data,
                     body.size()) != 1) {
    return OpensslError(EINVAL, "signing with the sigstore key");
  }
  der.resize(len);
  Signature sig;
  sig.format = Signature::Format::kSigstore;
  sig.mime_type = kSigstoreSignatureMimeType;
  sig.payload = std::move(body);
  sig.annotations[kSigstoreSignatureAnnotation] = Base64Encode(der);
  return sig;
}

std::unique_ptr<Signer> NewSigstoreSigner(EvpPkeyPtr key, std::string describe) {
  return std::make_unique<SigstoreSigner>(std::move(key), std::move(describe));
}

Result<EvpPkeyPtr> LoadPublicKeyPem(std::string_view pem) {
  if (pem.size() > (1 << 20)) return MakeError(EINVAL, "public key file is too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return MakeError(ENOMEM, "reading the public key: out of memory");
  // PEM_read_bio_PUBKEY reads "PUBLIC KEY" (SubjectPublicKeyInfo) blocks only.
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpensslError(EINVAL, "not a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo)");
  ERR_clear_error();
  RETURN_IF_ERROR(CheckVerifyKey(key.get()));
  return key;
}

Result<SigstoreVerified> VerifySigstore(const Signature& sig, const std::vector<EVP_PKEY*>& keys) {
  if (sig.format != Signature::Format::kSigstore) {
    return MakeError(EINVAL, "not a sigstore signature");
  }
  if (sig.mime_type != kSigstoreSignatureMimeType) {
    return MakeError(EINVAL, "sigstore signature has MIME type \"" + sig.mime_type + "\", not " +
                                 kSigstoreSignatureMimeType);
  }
  auto ann = sig.annotations.find(kSigstoreSignatureAnnotation);
  if (ann == sig.annotations.end()) {
    return MakeError(EINVAL, std::string("sigstore signature has no ") +
                                 kSigstoreSignatureAnnotation + " annotation");
  }
  // Go's base64 decoder skips line breaks anywhere (the PKI fixture's annotation has them).
  std::string b64 = ann->second;
  std::erase_if(b64, [](char c) { return c == '\n' || c == '\r'; });
  auto raw = Base64Decode(b64);
  if (!raw.ok()) {
    return MakeError(EINVAL, std::string("sigstore signature: ") + kSigstoreSignatureAnnotation +
                                 " is not base64");
  }
  if (keys.empty()) return MakeError(EINVAL, "no public key to verify the sigstore signature with");
  // As containers/image: every key must be usable, even when an earlier one would verify.
  for (size_t i = 0; i < keys.size(); ++i) {
    auto usable = CheckVerifyKey(keys[i]);
    if (!usable.ok()) return Annotate(std::move(usable).error(), "public key " + std::to_string(i));
  }
  size_t index = keys.size();
  for (size_t i = 0; i < keys.size() && index == keys.size(); ++i) {
    if (VerifyWith(keys[i], sig.payload, *raw)) index = i;
  }
  if (index == keys.size()) {
    std::string kinds;
    for (EVP_PKEY* k : keys) kinds += (kinds.empty() ? "" : ", ") + KeyKind(k);
    return MakeError(EACCES, "sigstore signature does not verify with any of " +
                                 std::to_string(keys.size()) +
                                 (keys.size() == 1 ? " key" : " keys") + " (" + kinds + ")");
  }
  ASSIGN_OR_RETURN(SigstorePayload payload, ParseSigstorePayload(sig.payload));
  SigstoreVerified out;
  out.claims.docker_reference = payload.docker_reference;
  out.claims.manifest_digest = payload.manifest_digest;
  out.payload = std::move(payload);
  out.key_index = index;
  return out;
}

Result<std::vector<Signature>> SignaturesFromAttachment(std::string_view manifest,
                                                        const AttachmentBlobFetcher& fetch) {
  ASSIGN_OR_RETURN(OJson doc, ParseAttachmentManifest(manifest));
  std::vector<Signature> out;
  size_t index = 0;
  for (const auto& j : doc["layers"]) {
    ASSIGN_OR_RETURN(Layer layer, ParseLayer(j, index++));
    // Every layer, whatever its MIME type, as containers/image reads them: the verifier looks
    // at the type, and a copy keeps what skopeo would keep (its signature-N files match).
    if (!IsSha256Digest(layer.digest)) {
      return MakeError(EINVAL, "attachment layer " + std::to_string(index - 1) +
                                   ": unsupported digest \"" + layer.digest + "\"");
    }
    if (layer.size < 0) {
      return MakeError(EINVAL, "attachment layer " + layer.digest + " has a negative size");
    }
    if (layer.size > kMaxSignatureSize) {
      return MakeError(EFBIG, "sigstore signature " + layer.digest + " of " +
                                  std::to_string(layer.size) + " bytes is over the " +
                                  std::to_string(kMaxSignatureSize) + "-byte limit");
    }
    ASSIGN_OR_RETURN(std::string payload, fetch(layer.digest, layer.size));
    if (static_cast<int64_t>(payload.size()) > kMaxSignatureSize) {
      return MakeError(EFBIG, "sigstore signature " + layer.digest + " is over the " +
                                  std::to_string(kMaxSignatureSize) + "-byte limit");
    }
    std::string actual = DigestOf(payload);
    if (actual != layer.digest) {
      return MakeError(EINVAL,
                       "sigstore signature " + layer.digest + ": digest mismatch, got " + actual);
    }
    Signature sig;
    sig.format = Signature::Format::kSigstore;
    sig.mime_type = std::move(layer.media_type);
    sig.payload = std::move(payload);
    sig.annotations = std::move(layer.annotations);
    out.push_back(std::move(sig));
  }
  return out;
}

Result<std::vector<AttachedSignatureKey>> AttachedSignatureKeys(std::string_view manifest) {
  ASSIGN_OR_RETURN(OJson doc, ParseAttachmentManifest(manifest));
  std::vector<AttachedSignatureKey> keys;
  size_t index = 0;
  for (const auto& j : doc["layers"]) {
    ASSIGN_OR_RETURN(Layer layer, ParseLayer(j, index++));
    keys.push_back(
        {std::move(layer.media_type), std::move(layer.digest), std::move(layer.annotations)});
  }
  return keys;
}

AttachedSignatureKey AttachedSignatureKeyOf(const Signature& sig) {
  return {sig.mime_type, DigestOf(sig.payload), sig.annotations};
}

Result<Attachment> AppendToAttachment(std::string_view existing_manifest,
                                      const std::vector<Signature>& sigs) {
  OJson manifest;
  if (existing_manifest.empty()) {
    // manifest.OCI1FromComponents: schemaVersion, mediaType, config, layers.
    manifest["schemaVersion"] = 2;
    manifest["mediaType"] = kOciManifestMediaType;
    manifest["config"] = OJson::object();
    manifest["layers"] = OJson::array();
  } else {
    ASSIGN_OR_RETURN(manifest, ParseAttachmentManifest(existing_manifest));
  }

  std::vector<Layer> layers;
  for (const auto& j : manifest["layers"]) {
    ASSIGN_OR_RETURN(Layer layer, ParseLayer(j, layers.size()));
    layers.push_back(std::move(layer));
  }

  Attachment out;
  for (const Signature& sig : sigs) {
    if (sig.format != Signature::Format::kSigstore) {
      return MakeError(EINVAL, "only sigstore signatures go into an attachment");
    }
    bool present = false;
    for (const Layer& layer : layers) present = present || LayerMatches(layer, sig);
    if (present) continue;
    Layer layer{sig.mime_type, DigestOf(sig.payload), static_cast<int64_t>(sig.payload.size()),
                sig.annotations};
    manifest["layers"].push_back(
        Descriptor(layer.media_type, layer.digest, layer.size, layer.annotations));
    // The same payload with other annotations (another signature of it) is one blob.
    bool uploaded = false;
    for (const auto& blob : out.blobs) uploaded = uploaded || blob.first == layer.digest;
    if (!uploaded) out.blobs.emplace_back(layer.digest, sig.payload);
    layers.push_back(std::move(layer));
    out.changed = true;
  }
  if (!out.changed) {
    out.manifest = std::string(existing_manifest);
    return out;
  }
  // Whatever config it had (containers/image's and cosign's list the layers as diff_ids, so
  // each signature would upload a new one), the attachment now has the empty one, which no
  // reader looks into: one blob per registry, there already after the first signature.
  manifest["config"] =
      Descriptor(kEmptyConfigMediaType, kEmptyConfigDigest, sizeof(kEmptyConfig) - 1, {});
  out.manifest = GoJson(manifest);
  return out;
}

}  // namespace regfs
