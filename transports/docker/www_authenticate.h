// WWW-Authenticate challenges (RFC 7235): `Bearer realm="…",service="…",scope="…"`, `Basic …`.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace regfs {

struct Challenge {
  std::string scheme;                         // lowercase: "bearer", "basic", …
  std::map<std::string, std::string> params;  // lowercase names, unquoted values
};

// Parses one header value, which may hold several challenges. Malformed parts are skipped;
// a value with nothing usable gives an empty vector.
std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

}  // namespace regfs
