#include "transports/docker/www_authenticate.h"

#include <cctype>

namespace regfs {
namespace {

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }
  void Next() { ++i_; }
  size_t pos() const { return i_; }
  void set_pos(size_t p) { i_ = p; }
  std::string_view Token() {
    size_t start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // A quoted-string with backslash escapes; false if unterminated.
  bool Quoted(std::string* out) {
    if (Peek() != '"') return false;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\' && i_ < s_.size()) c = s_[i_++];
      out->push_back(c);
    }
    return false;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<Challenge> ParseWwwAuthenticate(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc(header);
  while (true) {
    sc.SkipSpace();
    while (sc.Peek() == ',') {
      sc.Next();
      sc.SkipSpace();
    }
    if (sc.AtEnd()) break;
    std::string_view scheme = sc.Token();
    if (scheme.empty()) break;  // garbage: stop, keep what we have
    Challenge ch;
    ch.scheme = Lower(scheme);
    // auth-params: name=value pairs separated by commas, until the next scheme.
    while (true) {
      sc.SkipSpace();
      size_t mark = sc.pos();
      std::string_view name = sc.Token();
      sc.SkipSpace();
      if (name.empty() || sc.Peek() != '=') {
        sc.set_pos(mark);
        break;
      }
      sc.Next();
      sc.SkipSpace();
      std::string value;
      if (sc.Peek() == '"') {
        if (!sc.Quoted(&value)) return out;  // unterminated quote: drop this challenge
      } else {
        value = std::string(sc.Token());
      }
      ch.params[Lower(name)] = value;
      sc.SkipSpace();
      if (sc.Peek() == ',') {
        sc.Next();
        continue;
      }
      break;
    }
    out.push_back(std::move(ch));
    sc.SkipSpace();
    if (!sc.AtEnd() && sc.Peek() != ',' && !IsTokenChar(sc.Peek())) break;
  }
  return out;
}

}  // namespace regfs
