// The order of containers-registries.conf(5) pulls, for an image (mirrored_source) and for
// each call of a registry (mirrored_registry): the places are tried in turn, the first that
// succeeds answers, and a failure passes the request on to the next place.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>

namespace regfs {

// attempt(i) for i = 0, 1, … n-1 (n > 0) until one succeeds: that result, or the last place's
// failure (the origin's, when it is last). `log` (optional) hears why a place was passed
// over, naming it with describe(i).
template <class F>
std::invoke_result_t<F, size_t> TryInOrder(size_t n, F&& attempt,
                                           const std::function<std::string(size_t)>& describe,
                                           const std::function<void(const std::string&)>& log) {
  for (size_t i = 0;; ++i) {
    auto result = attempt(i);
    if (result.ok() || i + 1 == n) return result;
    if (log) {
      log("pulling from " + describe(i) +
          " failed, trying the next source: " + result.error().message);
    }
  }
}

}  // namespace regfs
