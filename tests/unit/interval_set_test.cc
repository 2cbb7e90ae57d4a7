#include "fs/interval_set.h"

#include <gtest/gtest.h>

namespace regfs {
namespace {

using Ranges = std::vector<std::pair<int64_t, int64_t>>;

TEST(IntervalSetTest, InsertMergesOverlappingAndTouchingRanges) {
  IntervalSet s;
  s.Insert(10, 20);
  s.Insert(30, 40);
  EXPECT_EQ(s.Missing(0, 50), (Ranges{{0, 10}, {20, 30}, {40, 50}}));
  s.Insert(20, 30);  // touches both neighbours
  EXPECT_TRUE(s.Contains(10, 40));
  EXPECT_EQ(s.Missing(0, 50), (Ranges{{0, 10}, {40, 50}}));
  s.Insert(5, 45);
  EXPECT_EQ(s.Missing(0, 50), (Ranges{{0, 5}, {45, 50}}));
}

TEST(IntervalSetTest, EmptyRangesAreIgnored) {
  IntervalSet s;
  s.Insert(7, 7);
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.Contains(3, 3));
  EXPECT_FALSE(s.Contains(3, 4));
}

TEST(IntervalSetTest, ContainsNeedsOneRun) {
  IntervalSet s;
  s.Insert(0, 10);
  s.Insert(11, 20);
  EXPECT_TRUE(s.Contains(0, 10));
  EXPECT_FALSE(s.Contains(5, 15));
  EXPECT_FALSE(s.Contains(20, 21));
}

TEST(IntervalSetTest, ContiguousEnd) {
  IntervalSet s;
  s.Insert(0, 100);
  s.Insert(200, 300);
  EXPECT_EQ(s.ContiguousEnd(0), 100);
  EXPECT_EQ(s.ContiguousEnd(50), 100);
  EXPECT_EQ(s.ContiguousEnd(100), 100);  // the end of a run is not in it
  EXPECT_EQ(s.ContiguousEnd(150), 150);
  EXPECT_EQ(s.ContiguousEnd(250), 300);
}

TEST(IntervalSetTest, EraseSplitsRanges) {
  IntervalSet s;
  s.Insert(0, 100);
  s.Erase(40, 60);
  EXPECT_EQ(s.Missing(0, 100), (Ranges{{40, 60}}));
  s.Erase(0, 100);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace regfs
