#include "transports/types/signature.h"

#include <nlohmann/json.hpp>

#include "transports/util/base64.h"
#include "transports/util/go_json.h"

namespace regfs {
namespace {

constexpr std::string_view kSigstorePrefix("\0sigstore-json\n", 15);
constexpr std::string_view kSimpleSigningPrefix("\0simple-signing\n", 16);

}  // namespace

std::string SignatureBlob(const Signature& sig) {
  if (sig.format == Signature::Format::kSimpleSigning) return sig.simple_signing;
  // {"mimeType":…,"payload":…,"annotations":…}: the field order of containers/image's struct,
  // map keys sorted as Go sorts them (bytewise, as std::map does).
  std::string out(kSigstorePrefix);
  out += "{\"mimeType\":";
  AppendGoJsonString(out, sig.mime_type);
  out += ",\"payload\":";
  AppendGoJsonString(out, Base64Encode(sig.payload));
  out += ",\"annotations\":";
  if (sig.annotations.empty()) {
    out += "null";
  } else {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : sig.annotations) {
      if (!first) out += ',';
      first = false;
      AppendGoJsonString(out, k);
      out += ':';
      AppendGoJsonString(out, v);
    }
    out += '}';
  }
  out += '}';
  return out;
}

Result<Signature> SignatureFromBlob(std::string_view blob) {
  if (blob.empty()) return MakeError(EINVAL, "empty signature");
  if (static_cast<int64_t>(blob.size()) > kMaxSignatureSize) {
    return MakeError(EFBIG, "signature of " + std::to_string(blob.size()) + " bytes is over the " +
                                std::to_string(kMaxSignatureSize) + "-byte limit");
  }
  Signature sig;
  if (blob[0] != '\0') {
    // The legacy simple-signing form: a bare OpenPGP message, which starts with a packet tag
    // (bit 7 set).
    if ((static_cast<unsigned char>(blob[0]) & 0x80) == 0) {
      return MakeError(EINVAL, "unrecognized signature format (neither OpenPGP nor sigstore)");
    }
    sig.format = Signature::Format::kSimpleSigning;
    sig.simple_signing = std::string(blob);
    return sig;
  }
  if (blob.starts_with(kSimpleSigningPrefix)) {
    sig.format = Signature::Format::kSimpleSigning;
    sig.simple_signing = std::string(blob.substr(kSimpleSigningPrefix.size()));
    return sig;
  }
  if (!blob.starts_with(kSigstorePrefix)) {
    size_t nl = blob.find('\n');
    return MakeError(EINVAL, "unrecognized signature format \"" +
                                 std::string(blob.substr(1, std::min<size_t>(nl, 40) - 1)) + "\"");
  }
  auto doc = nlohmann::json::parse(blob.substr(kSigstorePrefix.size()), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return MakeError(EINVAL, "sigstore signature is not a JSON object");
  }
  sig.format = Signature::Format::kSigstore;
  for (const auto& [key, value] : doc.items()) {
    if (key == "mimeType") {
      if (!value.is_string())
        return MakeError(EINVAL, "sigstore signature: mimeType is not a string");
      sig.mime_type = value.get<std::string>();
    } else if (key == "payload") {
      if (value.is_null()) continue;
      if (!value.is_string())
        return MakeError(EINVAL, "sigstore signature: payload is not a string");
      auto payload = Base64Decode(value.get<std::string>());
      if (!payload.ok()) return MakeError(EINVAL, "sigstore signature: payload is not base64");
      sig.payload = std::move(*payload);
    } else if (key == "annotations") {
      if (value.is_null()) continue;
      if (!value.is_object())
        return MakeError(EINVAL, "sigstore signature: annotations not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          return MakeError(EINVAL, "sigstore signature: annotation is not a string");
        sig.annotations[k] = v.get<std::string>();
      }
    }
    // Other fields are ignored, as Go's json.Unmarshal ignores them.
  }
  return sig;
}

}  // namespace regfs
