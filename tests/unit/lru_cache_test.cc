#include "fs/lru_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace regfs {
namespace {

using Cache = LruCache<std::string, int>;
using Entries = std::vector<Cache::Entry>;

TEST(LruCacheTest, PuttingIntoAFullCacheEvictsTheLeastRecentlyUsed) {
  Cache c(2);
  EXPECT_TRUE(c.Put("a", 1).empty());
  EXPECT_TRUE(c.Put("b", 2).empty());
  EXPECT_EQ(c.Put("c", 3), (Entries{{"a", 1}}));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.Peek("a"), nullptr);
  ASSERT_NE(c.Peek("b"), nullptr);
  EXPECT_EQ(*c.Peek("c"), 3);
}

TEST(LruCacheTest, FindMakesAnEntryTheMostRecentlyUsedAndPeekDoesNot) {
  Cache c(2);
  c.Put("a", 1);
  c.Put("b", 2);
  ASSERT_NE(c.Find("a"), nullptr);
  EXPECT_EQ(c.Put("c", 3), (Entries{{"b", 2}}));  // "a" was used since
  ASSERT_NE(c.Peek("a"), nullptr);
  EXPECT_EQ(c.Put("d", 4), (Entries{{"a", 1}}));  // Peek did not save it
}

TEST(LruCacheTest, PuttingAKeyAgainReplacesItsValueWithoutEvicting) {
  Cache c(2);
  c.Put("a", 1);
  c.Put("b", 2);
  EXPECT_TRUE(c.Put("a", 10).empty());
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(*c.Peek("a"), 10);
  EXPECT_EQ(c.Put("c", 3), (Entries{{"b", 2}}));  // "a" became the most recent
}

TEST(LruCacheTest, EraseRemovesOneEntry) {
  Cache c(3);
  c.Put("a", 1);
  c.Put("b", 2);
  EXPECT_TRUE(c.Erase("a"));
  EXPECT_FALSE(c.Erase("a"));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.Peek("a"), nullptr);
  c.Put("c", 3);
  c.Put("d", 4);
  EXPECT_EQ(c.Put("e", 5), (Entries{{"b", 2}}));
}

TEST(LruCacheTest, EvictWhileStopsAtTheFirstEntryThatDoesNotMatch) {
  Cache c(5);
  c.Put("a", 1);
  c.Put("b", 2);
  c.Put("c", 30);
  c.Put("d", 4);
  EXPECT_EQ(c.EvictWhile([](const std::string&, int v) { return v < 10; }),
            (Entries{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(c.size(), 2u);  // "d" matches, but is newer than "c"
  EXPECT_NE(c.Peek("d"), nullptr);
}

struct Expiring {
  std::chrono::steady_clock::time_point expires;
  int value = 0;
};

TEST(LruCacheTest, ExpiredEntriesAreDroppedWhenReadAndWhenAnotherIsPut) {
  LruCache<std::string, Expiring> c(10);
  auto past = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto future = std::chrono::steady_clock::now() + std::chrono::hours(1);
  c.Put("old1", {past, 1});
  c.Put("old2", {past, 2});
  c.Put("old3", {past, 3});
  EXPECT_EQ(PeekUnexpired(c, "old3"), nullptr);
  EXPECT_EQ(c.size(), 2u);
  PutExpiring(c, "new", {future, 4});
  EXPECT_EQ(c.size(), 1u);
  ASSERT_NE(PeekUnexpired(c, "new"), nullptr);
  EXPECT_EQ(PeekUnexpired(c, "new")->value, 4);
}

}  // namespace
}  // namespace regfs
