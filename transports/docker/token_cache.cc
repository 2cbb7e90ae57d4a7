#include "transports/docker/token_cache.h"

#include <algorithm>

namespace regfs {

namespace {
constexpr int64_t kMaxLifetime = 24 * 60 * 60;
}  // namespace

std::optional<std::string> TokenCache::Get(const std::string& scopes, Clock::time_point now) const {
  auto it = tokens_.find(scopes);
  if (it == tokens_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.value;
}

void TokenCache::Put(const std::string& scopes, std::string token, int64_t expires_in,
                     Clock::time_point now) {
  // Capped at a day: a server's huge expires_in would overflow the clock's arithmetic (and
  // make the token expire at once); a token still good after a day is simply fetched again.
  int64_t lifetime = std::clamp<int64_t>(expires_in, 60, kMaxLifetime) - 10;
  tokens_[scopes] = Token{std::move(token), now + std::chrono::seconds(lifetime)};
}

}  // namespace regfs
