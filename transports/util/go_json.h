// JSON written as Go's encoding/json writes it, so that documents regfs produces (signature
// blobs, sigstore payloads, attachment manifests and configs) are byte-identical to those of
// skopeo / containers/image.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace regfs {

// A JSON string as Go's encoding/json writes it: HTML-safe escaping (<, >, & as \u003c…),
// \u2028 and \u2029 escaped, invalid UTF-8 replaced by \ufffd.
void AppendGoJsonString(std::string& out, std::string_view s);

// A whole document, compact, strings as above and object members in their stored order (an
// ordered_json keeps the order it was parsed or built in, which is how a Go struct's field
// order is reproduced). Numbers are written as nlohmann writes them, which for integers is
// what Go writes.
void AppendGoJson(std::string& out, const nlohmann::ordered_json& j);
std::string GoJson(const nlohmann::ordered_json& j);

// A json.RawMessage as Go's json.Marshal writes it: insignificant whitespace dropped, and
// '<', '>', '&', U+2028 and U+2029 inside strings escaped; nothing else changes. `raw` must be
// valid JSON.
std::string GoCompactJson(std::string_view raw);

// The members of a JSON object as unmarshalled into Go's map[string]*json.RawMessage: each
// key (unescaped) to its value's raw bytes, the last of repeated keys winning. nullopt when
// `raw` is not a valid JSON object.
std::optional<std::map<std::string, std::string>> RawJsonMembers(std::string_view raw);

}  // namespace regfs
