// LruCache: a map bounded to a number of entries. Putting an entry into a full cache evicts
// the least recently used one, so a long-lived mount over a busy registry keeps what it uses
// and forgets the rest (DESIGN §4: long-lived maps are bounded).
//
// Find() makes an entry the most recently used; Peek() does not, so a cache read only with
// Peek() keeps its entries in the order they were put — for entries that all live for one
// TTL, the order in which they expire, which EvictWhile() relies on to drop expired ones.
//
// Evicting returns the entries dropped: whoever filled the cache may have to undo what an
// entry contributed elsewhere, and may want their values destroyed outside a lock.
//
// Not thread-safe; its owner locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace regfs {

template <class K, class V>
class LruCache {
 public:
  using Entry = std::pair<K, V>;

  // REQUIRES: capacity > 0.
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  // The value of `key`, made the most recently used; null when absent. The pointer stays
  // valid until the entry is erased or evicted.
  V* Find(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // The value of `key` without touching its recency; null when absent.
  V* Peek(const K& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  const V* Peek(const K& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }

  // Sets `key` to `value` as the most recently used entry. Returns the entries evicted to
  // stay within the capacity (the replaced value of `key` is not among them).
  std::vector<Entry> Put(const K& key, V value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return {};
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    std::vector<Entry> evicted;
    while (order_.size() > capacity_) evicted.push_back(PopOldest());
    return evicted;
  }

  // Removes `key`; returns whether it was there.
  bool Erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Evicts least recently used entries for as long as `pred(key, value)` holds for the
  // least recently used one; returns them.
  template <class Pred>
  std::vector<Entry> EvictWhile(Pred pred) {
    std::vector<Entry> evicted;
    while (!order_.empty() && pred(order_.back().first, order_.back().second)) {
      evicted.push_back(PopOldest());
    }
    return evicted;
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  Entry PopOldest() {
    Entry e = std::move(order_.back());
    index_.erase(e.first);
    order_.pop_back();
    return e;
  }

  const size_t capacity_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<K, typename std::list<Entry>::iterator> index_;
};

// Caches whose values expire: V has a `std::chrono::steady_clock::time_point expires`.

// The value of `key` unless it has expired — then it is dropped. Null when there is none.
// Does not touch recency.
template <class K, class V>
V* PeekUnexpired(LruCache<K, V>& cache, const std::type_identity_t<K>& key) {
  V* v = cache.Peek(key);
  if (v && v->expires <= std::chrono::steady_clock::now()) {
    cache.Erase(key);
    return nullptr;
  }
  return v;
}

// Puts `value` into `cache` having dropped the entries that expired. A cache read only with
// Peek()/PeekUnexpired() holds its entries in the order they were put; when every entry lives
// for the same TTL that is the order they expire in, so all the expired ones go.
template <class K, class V>
void PutExpiring(LruCache<K, V>& cache, const std::type_identity_t<K>& key,
                 std::type_identity_t<V> value) {
  auto now = std::chrono::steady_clock::now();
  cache.EvictWhile([now](const K&, const V& v) { return v.expires <= now; });
  cache.Put(key, std::move(value));
}

}  // namespace regfs
