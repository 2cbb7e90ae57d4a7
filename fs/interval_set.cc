#include "fs/interval_set.h"

#include <algorithm>

namespace regfs {

void IntervalSet::Insert(int64_t start, int64_t end) {
  if (start >= end) return;
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) {
      start = prev->first;
      end = std::max(end, prev->second);
      it = ranges_.erase(prev);
    }
  }
  while (it != ranges_.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_[start] = end;
}

bool IntervalSet::Contains(int64_t start, int64_t end) const {
  if (start >= end) return true;
  auto it = ranges_.upper_bound(start);
  if (it == ranges_.begin()) return false;
  --it;
  return it->first <= start && it->second >= end;
}

std::vector<std::pair<int64_t, int64_t>> IntervalSet::Missing(int64_t start, int64_t end) const {
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t pos = start;
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && pos < end; ++it) {
    if (it->second <= pos) continue;
    if (it->first >= end) break;
    if (it->first > pos) out.emplace_back(pos, it->first);
    pos = std::max(pos, it->second);
  }
  if (pos < end) out.emplace_back(pos, end);
  return out;
}

int64_t IntervalSet::ContiguousEnd(int64_t pos) const {
  auto it = ranges_.upper_bound(pos);
  if (it == ranges_.begin()) return pos;
  --it;
  return it->second >= pos ? it->second : pos;
}

void IntervalSet::Erase(int64_t start, int64_t end) {
  if (start >= end) return;
  std::vector<std::pair<int64_t, int64_t>> keep;
  for (auto it = ranges_.begin(); it != ranges_.end();) {
    if (it->second <= start || it->first >= end) {
      ++it;
      continue;
    }
    if (it->first < start) keep.emplace_back(it->first, start);
    if (it->second > end) keep.emplace_back(end, it->second);
    it = ranges_.erase(it);
  }
  for (auto& [s, e] : keep) ranges_[s] = e;
}

}  // namespace regfs
