#include "tools/progress.h"

#include <algorithm>
#include <cinttypes>

namespace regfs::cli {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
constexpr int kBarWidth = 24;
// Blobs drawn at most: more in flight than this are summed up in the overall line.
constexpr size_t kMaxBlobLines = 8;

std::string ShortDigest(const std::string& digest) {
  size_t colon = digest.find(':');
  std::string hex = colon == std::string::npos ? digest : digest.substr(colon + 1);
  return hex.substr(0, 12);
}

double Seconds(ProgressDisplay::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string Rate(double bytes, double seconds) {
  return seconds > 0 ? HumanBytes(bytes / seconds) + "/s" : "-";
}

}  // namespace

std::string HumanBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%.0f%s", bytes, kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", bytes, kUnits[unit]);
  }
  return buf;
}

ProgressDisplay::ProgressDisplay(FILE* out, std::function<Clock::time_point()> now)
    : out_(out), now_(std::move(now)), start_(now_()) {}

ProgressDisplay::~ProgressDisplay() {
  std::lock_guard<std::mutex> lock(mu_);
  EraseLocked();
  std::fflush(out_);
}

void ProgressDisplay::Message(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  EraseLocked();
  std::fprintf(out_, "%s\n", line.c_str());
  DrawLocked(true);
}

void ProgressDisplay::SetLabel(const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  label_ = label;
  DrawLocked(true);
}

void ProgressDisplay::BlobStarted(const std::string& digest, int64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_.count(digest)) return;
  active_[digest] = Blob{total, 0, now_()};
  order_.push_back(digest);
  DrawLocked(true);
}

void ProgressDisplay::BlobAdvanced(const std::string& digest, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(digest);
  if (it == active_.end()) return;
  it->second.done += bytes;
  bytes_ += bytes;
  DrawLocked(false);
}

void ProgressDisplay::BlobFinished(const std::string& digest, bool skipped) {
  std::lock_guard<std::mutex> lock(mu_);
  active_.erase(digest);
  order_.erase(std::remove(order_.begin(), order_.end(), digest), order_.end());
  ++finished_;
  if (skipped) ++skipped_;
  EraseLocked();
  std::fprintf(out_, "Copying blob %s %s\n", ShortDigest(digest).c_str(),
               skipped ? "skipped: already exists" : "done");
  DrawLocked(true);
}

std::string ProgressDisplay::BlobLine(const std::string& digest, const Blob& b,
                                      Clock::time_point now) const {
  std::string line = "Copying blob " + ShortDigest(digest) + " ";
  if (b.total > 0) {
    int filled = static_cast<int>(std::min<int64_t>(b.done, b.total) * kBarWidth / b.total);
    line += "[" + std::string(filled, '=') + (filled < kBarWidth ? ">" : "") +
            std::string(std::max(0, kBarWidth - filled - 1), '-') + "] ";
    line +=
        HumanBytes(static_cast<double>(b.done)) + " / " + HumanBytes(static_cast<double>(b.total));
  } else {
    line += HumanBytes(static_cast<double>(b.done));
  }
  return line + " | " + Rate(static_cast<double>(b.done), Seconds(now - b.start));
}

std::string ProgressDisplay::OverallLine(Clock::time_point now) const {
  int in_flight = static_cast<int>(active_.size());
  std::string line = label_ + " " + std::to_string(finished_) + " blobs done";
  if (skipped_) line += " (" + std::to_string(skipped_) + " skipped)";
  if (in_flight) line += ", " + std::to_string(in_flight) + " in flight";
  return line + ", " + HumanBytes(static_cast<double>(bytes_)) + " | " +
         Rate(static_cast<double>(bytes_), Seconds(now - start_));
}

void ProgressDisplay::EraseLocked() {
  if (drawn_ == 0) return;
  // Up to the first live line, then clear from there to the end of the screen.
  std::fprintf(out_, "\x1b[%dA\r\x1b[J", drawn_);
  drawn_ = 0;
}

void ProgressDisplay::DrawLocked(bool force) {
  Clock::time_point now = now_();
  if (!force && drawn_ > 0 && now - last_draw_ < kRedrawEvery) return;
  EraseLocked();
  size_t shown = 0;
  for (const std::string& digest : order_) {
    if (shown == kMaxBlobLines) break;
    std::fprintf(out_, "%s\n", BlobLine(digest, active_.at(digest), now).c_str());
    ++shown;
  }
  std::fprintf(out_, "%s\n", OverallLine(now).c_str());
  drawn_ = static_cast<int>(shown) + 1;
  last_draw_ = now;
  std::fflush(out_);
}

}  // namespace regfs::cli
