#include "transports/docker/token_cache.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace regfs {
namespace {

using std::chrono::seconds;

TEST(TokenCacheTest, ReusedUntilShortlyBeforeItExpires) {
  TokenCache cache;
  const auto t0 = TokenCache::Clock::now();
  cache.Put("repository:a:pull ", "tok", 300, t0);
  EXPECT_EQ(cache.Get("repository:a:pull ", t0), "tok");
  EXPECT_EQ(cache.Get("repository:a:pull ", t0 + seconds(289)), "tok");
  EXPECT_EQ(cache.Get("repository:a:pull ", t0 + seconds(290)), std::nullopt);
  EXPECT_EQ(cache.Get("repository:b:pull ", t0), std::nullopt);  // other scopes, other tokens
}

TEST(TokenCacheTest, ShortLifetimesCountAsSixtySeconds) {
  TokenCache cache;
  const auto t0 = TokenCache::Clock::now();
  cache.Put("s", "tok", 5, t0);
  EXPECT_EQ(cache.Get("s", t0 + seconds(49)), "tok");
  EXPECT_EQ(cache.Get("s", t0 + seconds(50)), std::nullopt);
  cache.Put("s", "tok2", -1, t0);
  EXPECT_EQ(cache.Get("s", t0 + seconds(10)), "tok2");
}

// A token server may say anything: expires_in near INT64_MAX once overflowed the clock's
// arithmetic (undefined behaviour; in practice a token expired before it was used).
TEST(TokenCacheTest, HugeLifetimesAreCappedAtADay) {
  TokenCache cache;
  const auto t0 = TokenCache::Clock::now();
  cache.Put("s", "tok", INT64_MAX, t0);
  EXPECT_EQ(cache.Get("s", t0), "tok");
  EXPECT_EQ(cache.Get("s", t0 + seconds(86389)), "tok");
  EXPECT_EQ(cache.Get("s", t0 + seconds(86390)), std::nullopt);
}

TEST(TokenCacheTest, EraseAndClear) {
  TokenCache cache;
  const auto t0 = TokenCache::Clock::now();
  cache.Put("a", "1", 300, t0);
  cache.Put("b", "2", 300, t0);
  cache.Erase("a");
  EXPECT_EQ(cache.Get("a", t0), std::nullopt);
  EXPECT_EQ(cache.Get("b", t0), "2");
  cache.Clear();
  EXPECT_EQ(cache.Get("b", t0), std::nullopt);
}

}  // namespace
}  // namespace regfs
