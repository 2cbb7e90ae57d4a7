// Bearer tokens by the scopes they were granted for, each kept until it expires: `expires_in`
// seconds after it was issued, never less than 60 (the token spec's minimum, as
// containers/image and Docker assume) and never more than a day (a huge one would overflow the
// clock), less a 10 s margin for the request in flight.
// Not thread-safe: RegistryClient guards it with its mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace regfs {

class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;

  std::optional<std::string> Get(const std::string& scopes, Clock::time_point now) const;
  void Put(const std::string& scopes, std::string token, int64_t expires_in, Clock::time_point now);
  void Erase(const std::string& scopes) { tokens_.erase(scopes); }
  void Clear() { tokens_.clear(); }

 private:
  struct Token {
    std::string value;
    Clock::time_point expires;
  };
  std::map<std::string, Token> tokens_;
};

}  // namespace regfs
