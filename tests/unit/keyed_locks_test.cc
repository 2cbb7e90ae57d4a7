#include "transports/util/keyed_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace regfs {
namespace {

TEST(KeyedLocksTest, OneHolderAtATimePerKey) {
  KeyedLocks locks;
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 200; ++j) {
        auto guard = locks.Lock("repo@sha256:a");
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(most.load(), 1);
}

TEST(KeyedLocksTest, DifferentKeysDoNotWaitForEachOther) {
  KeyedLocks locks;
  auto a = locks.Lock("a");
  std::atomic<bool> got_b{false};
  std::thread t([&] {
    auto b = locks.Lock("b");
    got_b = true;
  });
  t.join();  // would hang if "b" waited for "a"
  EXPECT_TRUE(got_b.load());
}

TEST(KeyedLocksTest, AReleasedKeyCanBeTakenAgain) {
  KeyedLocks locks;
  { auto g = locks.Lock("k"); }
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto g = locks.Lock("k");
    got = true;
  });
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(KeyedLocksTest, AMovedGuardReleasesOnce) {
  KeyedLocks locks;
  {
    auto g = locks.Lock("k");
    auto moved = std::move(g);
  }
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto again = locks.Lock("k");  // hangs if the move kept it held, crashes on a double unlock
    got = true;
  });
  t.join();
  EXPECT_TRUE(got.load());
}

}  // namespace
}  // namespace regfs
