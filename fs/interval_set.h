// IntervalSet: a set of disjoint half-open byte ranges [start, end), merged on insert.
// Not thread-safe; its owner locks.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace regfs {

class IntervalSet {
 public:
  void Insert(int64_t start, int64_t end);
  // True when [start, end) is wholly inside the set.
  bool Contains(int64_t start, int64_t end) const;
  // The parts of [start, end) not in the set, in order.
  std::vector<std::pair<int64_t, int64_t>> Missing(int64_t start, int64_t end) const;
  // The end of the run that starts at or covers `pos` (pos itself when none does).
  int64_t ContiguousEnd(int64_t pos) const;
  void Erase(int64_t start, int64_t end);
  void Clear() { ranges_.clear(); }
  bool empty() const { return ranges_.empty(); }

 private:
  std::map<int64_t, int64_t> ranges_;  // start → end
};

}  // namespace regfs
