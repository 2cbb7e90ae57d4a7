// FetchPool: a fixed set of threads that run blob range downloads for the mount. Jobs must end
// in bounded time (requests time out); the destructor waits for the running ones and drops
// the queued ones.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace regfs {

class FetchPool {
 public:
  explicit FetchPool(int threads);
  ~FetchPool();
  FetchPool(const FetchPool&) = delete;
  FetchPool& operator=(const FetchPool&) = delete;

  void Submit(std::function<void()> job);

 private:
  void Loop();

  std::mutex mu_;  // last in the lock order: jobs run without it
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace regfs
