#include "transports/types/signature.h"

#include <nlohmann/json.hpp>

#include "transports/util/base64.h"

namespace regfs {
namespace {

constexpr std::string_view kSigstorePrefix("\0sigstore-json\n", 15);
constexpr std::string_view kSimpleSigningPrefix("\0simple-signing\n", 16);

// A JSON string as Go's encoding/json writes it (HTML-safe escaping, \u2028 and \u2029
// escaped, invalid UTF-8 replaced by U+FFFD), so that blobs match skopeo's byte for byte.
void AppendGoJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length and the smallest code point it may encode.
    size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5) len = 0;
    uint32_t cp = len == 4 ? (c & 0x07) : len == 3 ? (c & 0x0f) : (c & 0x1f);
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) valid = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (valid && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                  (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))) {
      valid = false;
    }
    if (!valid) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      out += cp == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out += '"';
}

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
      if (!value.is_string()) return MakeError(EINVAL, "sigstore signature: mimeType is not a string");
      sig.mime_type = value.get<std::string>();
    } else if (key == "payload") {
      if (value.is_null()) continue;
      if (!value.is_string()) return MakeError(EINVAL, "sigstore signature: payload is not a string");
      auto payload = Base64Decode(value.get<std::string>());
      if (!payload.ok()) return MakeError(EINVAL, "sigstore signature: payload is not base64");
      sig.payload = std::move(*payload);
    } else if (key == "annotations") {
      if (value.is_null()) continue;
      if (!value.is_object()) return MakeError(EINVAL, "sigstore signature: annotations not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) return MakeError(EINVAL, "sigstore signature: annotation is not a string");
        sig.annotations[k] = v.get<std::string>();
      }
    }
    // Other fields are ignored, as Go's json.Unmarshal ignores them.
  }
  return sig;
}

}  // namespace regfs
