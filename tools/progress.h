// Live progress of a copy on a terminal, as skopeo shows it: a line per blob in flight with its
// bytes, total and rate, and an overall line, redrawn in place; a finished blob leaves a
// permanent line ("Copying blob 1a2b3c4d5e6f done"). Only for a terminal: the commands use it
// when stderr is one and -q is not given.
//
// Thread-safe: the copy pipeline reports from its blob threads. Redraws are throttled, so a
// fast copy writes a few lines a second, not one per buffer.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "transports/types/image_destination.h"

namespace regfs::cli {

// 1536 → "1.5KiB", as skopeo's bars print sizes.
std::string HumanBytes(double bytes);

class ProgressDisplay {
 public:
  using Clock = std::chrono::steady_clock;

  // `now` is for tests; the display reads the clock itself otherwise.
  explicit ProgressDisplay(FILE* out, std::function<Clock::time_point()> now = Clock::now);
  ~ProgressDisplay();  // clears the live lines

  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // A permanent line, printed above the live ones ("Writing manifest to image destination").
  void Message(const std::string& line);
  // What the overall line starts with ("Copying", "Syncing image 3/10:"), redrawn at once.
  void SetLabel(const std::string& label);

  // A blob's transfer, by an id (its digest, or a name until it has one): `total` is -1 when
  // unknown; `bytes` more were moved; finished (shown as `digest`, when the id was not), or
  // skipped because the destination had it; abandoned (failed: no line stays).
  void BlobStarted(const std::string& id, int64_t total);
  void BlobAdvanced(const std::string& id, int64_t bytes);
  void BlobFinished(const std::string& id, bool skipped, const std::string& digest = "");
  void BlobAbandoned(const std::string& id);

 private:
  struct Blob {
    int64_t total = -1;
    int64_t done = 0;
    Clock::time_point start;
  };
  void DrawLocked(bool force);
  void EraseLocked();
  std::string BlobLine(const std::string& digest, const Blob& b, Clock::time_point now) const;
  std::string OverallLine(Clock::time_point now) const;

  FILE* const out_;
  const std::function<Clock::time_point()> now_;
  std::mutex mu_;
  std::map<std::string, Blob> active_;  // guarded by mu_
  std::vector<std::string> order_;      // digests in the order started, guarded by mu_
  std::string label_ = "Copying";       // guarded by mu_
  int finished_ = 0, skipped_ = 0;      // guarded by mu_
  int64_t bytes_ = 0;                   // moved in all, guarded by mu_
  Clock::time_point start_;
  Clock::time_point last_draw_{};  // guarded by mu_
  int drawn_ = 0;                  // live lines on the screen now, guarded by mu_
};

// `inner`, reporting each blob's transfer to `display`: started when its writer is made, its
// bytes as they are written (after any re-encoding), finished at the writer's Commit() or
// skipped when the destination had it. `inner` and `display` outlive the result.
std::unique_ptr<ImageDestination> WithProgress(ImageDestination& inner, ProgressDisplay& display);

}  // namespace regfs::cli
