#include "transports/docker/registry_responses.h"

#include <nlohmann/json.hpp>

#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;

std::optional<std::vector<std::string>> StringEntries(std::string_view body, const char* key) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

}  // namespace

Result<TokenResponse> ParseTokenResponse(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return MakeError(EACCES, "token response is not JSON");
  TokenResponse out;
  out.token = JsonString(j, "token");
  if (out.token.empty()) out.token = JsonString(j, "access_token");
  if (out.token.empty()) return MakeError(EACCES, "token response holds no token");
  out.expires_in = JsonInt(j, "expires_in").value_or(60);
  return out;
}

std::optional<std::vector<std::string>> ParseTagListPage(std::string_view body) {
  return StringEntries(body, "tags");
}

std::optional<std::vector<std::string>> ParseCatalogPage(std::string_view body) {
  return StringEntries(body, "repositories");
}

std::string NextLinkTarget(const std::vector<std::string>& link_headers) {
  for (const std::string& link : link_headers) {
    if (link.find("rel=\"next\"") == std::string::npos &&
        link.find("rel=next") == std::string::npos) {
      continue;
    }
    size_t open = link.find('<');
    size_t close = link.find('>', open);
    if (open != std::string::npos && close != std::string::npos) {
      return link.substr(open + 1, close - open - 1);
    }
  }
  return {};
}

}  // namespace regfs
