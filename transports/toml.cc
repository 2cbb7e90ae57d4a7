#include "transports/toml.h"

#include <cctype>
#include <cstdint>

namespace regfs {
namespace {

constexpr int kMaxNesting = 32;

bool IsBareKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Quote(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& k : path) out += (out.empty() ? "" : ".") + k;
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<TomlTable> Parse() {
    TomlTable root;
    TomlTable* current = &root;
    while (true) {
      SkipBlankLines();
      if (AtEnd()) break;
      if (Peek() == '[') {
        bool array = Peek(1) == '[';
        pos_ += array ? 2 : 1;
        ASSIGN_OR_RETURN(std::vector<std::string> path, KeyPath());
        if (!Consume(array ? "]]" : "]")) return Fail(array ? "expected \"]]\"" : "expected \"]\"");
        ASSIGN_OR_RETURN(current, array ? OpenArrayTable(root, path) : OpenTable(root, path));
        RETURN_IF_ERROR(EndOfLine());
        continue;
      }
      ASSIGN_OR_RETURN(std::string key, Key());
      if (current->Find(key)) return Fail("key \"" + key + "\" defined twice");
      SkipSpace();
      if (Peek() == '.') return Fail("dotted keys are not supported (\"" + key + ".…\")");
      if (!Consume("=")) return Fail("expected \"=\" after key \"" + key + "\"");
      SkipSpace();
      ASSIGN_OR_RETURN(TomlValue value, Value(0));
      RETURN_IF_ERROR(EndOfLine());
      current->keys.push_back(key);
      current->values.push_back(std::move(value));
    }
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  bool Consume(std::string_view token) {
    if (s_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }

  Error Fail(const std::string& what) const {
    return MakeError(EINVAL, "line " + std::to_string(line_) + ": " + what);
  }

  void SkipSpace() {
    while (Peek() == ' ' || Peek() == '\t') ++pos_;
  }

  void SkipComment() {
    if (Peek() != '#') return;
    while (!AtEnd() && Peek() != '\n') ++pos_;
  }

  // Consumes a line break ("\n" or "\r\n"); false when there is none here.
  bool Newline() {
    if (Peek() == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    if (Peek() == '\r' && Peek(1) == '\n') {
      pos_ += 2;
      ++line_;
      return true;
    }
    return false;
  }

  void SkipBlankLines() {
    while (true) {
      SkipSpace();
      SkipComment();
      if (!Newline()) return;
    }
  }

  // Whitespace and comments (and, inside arrays, line breaks).
  void SkipInsideArray() {
    while (true) {
      SkipSpace();
      SkipComment();
      if (!Newline()) return;
    }
  }

  Status EndOfLine() {
    SkipSpace();
    SkipComment();
    if (AtEnd() || Newline()) return Ok();
    return Fail(std::string("unexpected \"") + Peek() + "\" after the value");
  }

  Result<std::string> Key() {
    if (Peek() == '"' || Peek() == '\'') {
      ASSIGN_OR_RETURN(TomlValue v, String());
      return v.string;
    }
    size_t start = pos_;
    while (IsBareKeyChar(Peek())) ++pos_;
    if (pos_ == start) {
      if (AtEnd()) return Fail("expected a key");
      return Fail(std::string("unexpected \"") + Peek() + "\" where a key belongs");
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  Result<std::vector<std::string>> KeyPath() {
    std::vector<std::string> path;
    while (true) {
      SkipSpace();
      ASSIGN_OR_RETURN(std::string key, Key());
      path.push_back(std::move(key));
      SkipSpace();
      if (Peek() != '.') return path;
      ++pos_;
    }
  }

  Result<TomlValue> Value(int depth) {
    if (depth > kMaxNesting) return Fail("arrays nested too deeply");
    char c = Peek();
    if (c == '"' || c == '\'') return String();
    if (c == '[') return Array(depth);
    if (Consume("true")) return Bool(true);
    if (Consume("false")) return Bool(false);
    if (c == '{') return Fail("inline tables are not supported");
    if (AtEnd() || c == '\n' || c == '\r' || c == '#') return Fail("expected a value");
    return Fail("unsupported value (only strings, booleans and arrays are allowed)");
  }

  Result<TomlValue> Bool(bool b) {
    if (IsBareKeyChar(Peek())) return Fail("unsupported value (only strings, booleans and arrays)");
    TomlValue v;
    v.kind = TomlValue::Kind::kBool;
    v.boolean = b;
    return v;
  }

  Result<TomlValue> Array(int depth) {
    ++pos_;  // '['
    TomlValue v;
    v.kind = TomlValue::Kind::kArray;
    while (true) {
      SkipInsideArray();
      if (Consume("]")) return v;
      if (AtEnd()) return Fail("unterminated array");
      ASSIGN_OR_RETURN(TomlValue element, Value(depth + 1));
      v.array.push_back(std::move(element));
      SkipInsideArray();
      if (Consume(",")) continue;
      if (Consume("]")) return v;
      if (AtEnd()) return Fail("unterminated array");
      return Fail(std::string("expected \",\" or \"]\" in an array, found \"") + Peek() + "\"");
    }
  }

  Result<TomlValue> String() {
    char quote = Peek();
    if (Peek(1) == quote && Peek(2) == quote) return Fail("multi-line strings are not supported");
    ++pos_;
    TomlValue v;
    v.kind = TomlValue::Kind::kString;
    while (true) {
      if (AtEnd() || Peek() == '\n' || Peek() == '\r') return Fail("unterminated string");
      char c = s_[pos_++];
      if (c == quote) return v;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        return Fail("control character in a string");
      }
      if (c == 0x7f) return Fail("control character in a string");
      if (c != '\\' || quote == '\'') {
        v.string.push_back(c);
        continue;
      }
      char e = AtEnd() ? '\0' : s_[pos_++];
      switch (e) {
        case 'b':
          v.string.push_back('\b');
          break;
        case 't':
          v.string.push_back('\t');
          break;
        case 'n':
          v.string.push_back('\n');
          break;
        case 'f':
          v.string.push_back('\f');
          break;
        case 'r':
          v.string.push_back('\r');
          break;
        case '"':
          v.string.push_back('"');
          break;
        case '\\':
          v.string.push_back('\\');
          break;
        case 'u':
        case 'U': {
          ASSIGN_OR_RETURN(uint32_t cp, Hex(e == 'u' ? 4 : 8));
          AppendUtf8(cp, &v.string);
          break;
        }
        default:
          return Fail(std::string("invalid escape \"\\") + e + "\" in a string");
      }
    }
  }

  Result<uint32_t> Hex(int digits) {
    uint32_t cp = 0;
    for (int i = 0; i < digits; ++i) {
      char c = Peek();
      if (!std::isxdigit(static_cast<unsigned char>(c))) return Fail("invalid unicode escape");
      cp = cp * 16 +
           static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c))
                                     ? c - '0'
                                     : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
      ++pos_;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Fail("unicode escape is not a scalar value");
    }
    return cp;
  }

  // Walks to the table that holds the last component of `path`, creating implicit tables; an
  // array of tables on the way means its last element, as TOML says.
  Result<TomlTable*> Parent(TomlTable& root, const std::vector<std::string>& path) {
    TomlTable* t = &root;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      TomlValue* v = t->Find(path[i]);
      if (!v) {
        t->keys.push_back(path[i]);
        t->values.emplace_back();
        v = &t->values.back();
        v->kind = TomlValue::Kind::kTable;
      }
      if (v->kind == TomlValue::Kind::kArray && v->array_of_tables && !v->array.empty()) {
        v = &v->array.back();
      }
      if (v->kind != TomlValue::Kind::kTable) {
        std::vector<std::string> prefix(path.begin(), path.begin() + static_cast<long>(i) + 1);
        return Fail("\"" + Quote(prefix) + "\" is not a table");
      }
      t = &v->table;
    }
    return t;
  }

  Result<TomlTable*> OpenTable(TomlTable& root, const std::vector<std::string>& path) {
    ASSIGN_OR_RETURN(TomlTable * parent, Parent(root, path));
    TomlValue* v = parent->Find(path.back());
    if (!v) {
      parent->keys.push_back(path.back());
      parent->values.emplace_back();
      v = &parent->values.back();
      v->kind = TomlValue::Kind::kTable;
    } else if (v->kind != TomlValue::Kind::kTable) {
      return Fail("\"" + Quote(path) + "\" is already defined as a value or array");
    } else if (v->defined) {
      return Fail("table [" + Quote(path) + "] defined twice");
    }
    v->defined = true;
    return &v->table;
  }

  Result<TomlTable*> OpenArrayTable(TomlTable& root, const std::vector<std::string>& path) {
    ASSIGN_OR_RETURN(TomlTable * parent, Parent(root, path));
    TomlValue* v = parent->Find(path.back());
    if (!v) {
      parent->keys.push_back(path.back());
      parent->values.emplace_back();
      v = &parent->values.back();
      v->kind = TomlValue::Kind::kArray;
      v->array_of_tables = true;
    } else if (v->kind != TomlValue::Kind::kArray || !v->array_of_tables) {
      return Fail("\"" + Quote(path) + "\" is already defined and is not an array of tables");
    }
    v->array.emplace_back();
    TomlValue& element = v->array.back();
    element.kind = TomlValue::Kind::kTable;
    element.defined = true;
    return &element.table;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

const TomlValue* TomlTable::Find(std::string_view key) const {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &values[i];
  }
  return nullptr;
}

TomlValue* TomlTable::Find(std::string_view key) {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &values[i];
  }
  return nullptr;
}

Result<TomlTable> ParseToml(std::string_view text) { return Parser(text).Parse(); }

}  // namespace regfs
