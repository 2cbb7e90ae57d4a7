#include "transports/util/go_json.h"

#include <cstdint>

namespace regfs {

void AppendGoJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
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

void AppendGoJson(std::string& out, const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::string:
      AppendGoJsonString(out, j.get_ref<const std::string&>());
      return;
    case nlohmann::ordered_json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : j.items()) {
        if (!first) out += ',';
        first = false;
        AppendGoJsonString(out, k);
        out += ':';
        AppendGoJson(out, v);
      }
      out += '}';
      return;
    }
    case nlohmann::ordered_json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& v : j) {
        if (!first) out += ',';
        first = false;
        AppendGoJson(out, v);
      }
      out += ']';
      return;
    }
    default:
      // null, booleans and numbers; a binary value can't come from parsing JSON text.
      out += j.dump();
  }
}

std::string GoJson(const nlohmann::ordered_json& j) {
  std::string out;
  AppendGoJson(out, j);
  return out;
}

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The end of the string token starting at s[i] == '"'.
size_t SkipString(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

// The end of the (valid) value starting at s[i].
size_t SkipValue(std::string_view s, size_t i) {
  if (s[i] == '"') return SkipString(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = SkipString(s, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return s.size();
  }
  while (i < s.size() && !IsJsonSpace(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return i;
}

}  // namespace

std::string GoCompactJson(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  bool in_string = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (!in_string) {
      if (IsJsonSpace(c)) continue;
      if (c == '"') in_string = true;
      out += c;
      continue;
    }
    if (c == '\\' && i + 1 < raw.size()) {
      out += c;
      out += raw[++i];
      continue;
    }
    if (c == '"') in_string = false;
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < raw.size() && raw[i + 1] == '\x80' &&
               (raw[i + 2] == '\xa8' || raw[i + 2] == '\xa9')) {
      out += raw[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> RawJsonMembers(std::string_view raw) {
  if (!nlohmann::json::accept(raw)) return std::nullopt;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < raw.size() && IsJsonSpace(raw[i])) ++i;
  };
  skip_space();
  if (i >= raw.size() || raw[i] != '{') return std::nullopt;
  ++i;
  std::map<std::string, std::string> out;
  while (true) {
    skip_space();
    if (i >= raw.size()) return std::nullopt;
    if (raw[i] == '}') return out;
    if (raw[i] == ',') {
      ++i;
      continue;
    }
    size_t key_end = SkipString(raw, i);
    std::string key = nlohmann::json::parse(raw.substr(i, key_end - i)).get<std::string>();
    i = key_end;
    skip_space();
    ++i;  // ':'
    skip_space();
    size_t value_end = SkipValue(raw, i);
    out[key] = std::string(raw.substr(i, value_end - i));
    i = value_end;
  }
}

}  // namespace regfs
