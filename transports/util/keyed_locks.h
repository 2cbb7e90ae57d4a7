// KeyedLocks: one mutex per key, for the keys in use only.
//
// Lock(key) blocks while another holder has the same key and returns a guard that releases
// it when destroyed; a key's entry is dropped when its last holder and waiter are gone, so the
// table holds only keys in use. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace regfs {

class KeyedLocks {
 public:
  class Guard {
   public:
    Guard(Guard&& other) noexcept : owner_(other.owner_), key_(std::move(other.key_)) {
      other.owner_ = nullptr;
    }
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (owner_) owner_->Unlock(key_);
    }

   private:
    friend class KeyedLocks;
    Guard(KeyedLocks* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    KeyedLocks* owner_;
    std::string key_;
  };

  Guard Lock(const std::string& key) {
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      ++slot->users;
      entry = slot;
    }
    entry->mu.lock();
    return Guard(this, key);
  }

 private:
  struct Entry {
    std::mutex mu;
    int users = 0;  // holders and waiters, guarded by KeyedLocks::mu_
  };

  void Unlock(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    it->second->mu.unlock();
    if (--it->second->users == 0) entries_.erase(it);
  }

  std::mutex mu_;  // never held while waiting for an Entry's mutex
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
};

}  // namespace regfs
