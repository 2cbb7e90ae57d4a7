// What the registry's small responses hold, read from their bytes: token responses, tag-list
// and catalog pages, and the Link headers that page them. Pure functions over untrusted
// input (RegistryClient's, and the fuzz targets'); safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transports/util/result.h"

namespace regfs {

struct TokenResponse {
  std::string token;
  int64_t expires_in = 60;  // seconds, as the server wrote it (60 when it did not)
};

// A token server's JSON: "token", else "access_token", and "expires_in". EACCES when the body
// is not a JSON object or holds no token.
Result<TokenResponse> ParseTokenResponse(std::string_view body);

// The string entries of "tags" (tag lists) or "repositories" (catalog) of one page; entries
// of other types are skipped. nullopt when the page is not a JSON object.
std::optional<std::vector<std::string>> ParseTagListPage(std::string_view body);
std::optional<std::vector<std::string>> ParseCatalogPage(std::string_view body);

// The "next" target of Link headers: `</v2/_catalog?last=x&n=100>; rel="next"` gives
// "/v2/_catalog?last=x&n=100"; "" when none says rel="next".
std::string NextLinkTarget(const std::vector<std::string>& link_headers);

}  // namespace regfs
