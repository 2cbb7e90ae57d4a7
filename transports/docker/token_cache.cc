#include "transports/docker/token_cache.h"

#include <algorithm>

namespace regfs {

std::optional<std::string> TokenCache::Get(const std::string& scopes, Clock::time_point now) const {
  auto it = tokens_.find(scopes);
  if (it == tokens_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.value;
}

void TokenCache::Put(const std::string& scopes, std::string token, int64_t expires_in,
                     Clock::time_point now) {
  int64_t lifetime = std::max<int64_t>(expires_in, 60) - 10;
  tokens_[scopes] = Token{std::move(token), now + std::chrono::seconds(lifetime)};
}

}  // namespace regfs
