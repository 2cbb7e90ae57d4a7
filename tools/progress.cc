#include "tools/progress.h"

#include <algorithm>
#include <atomic>
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

void ProgressDisplay::BlobFinished(const std::string& id, bool skipped, const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  active_.erase(id);
  order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
  ++finished_;
  if (skipped) ++skipped_;
  EraseLocked();
  std::fprintf(out_, "Copying blob %s %s\n", ShortDigest(digest.empty() ? id : digest).c_str(),
               skipped ? "skipped: already exists" : "done");
  DrawLocked(true);
}

void ProgressDisplay::BlobAbandoned(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_.erase(id)) return;
  order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
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

namespace {

class ProgressWriter final : public BlobWriter {
 public:
  ProgressWriter(std::unique_ptr<BlobWriter> inner, ProgressDisplay& display, std::string id)
      : inner_(std::move(inner)), display_(display), id_(std::move(id)) {}
  ~ProgressWriter() override {
    if (!committed_) display_.BlobAbandoned(id_);
  }
  Status Write(const char* data, size_t n) override {
    RETURN_IF_ERROR(inner_->Write(data, n));
    display_.BlobAdvanced(id_, static_cast<int64_t>(n));
    return Ok();
  }
  Status Commit(const BlobInfo& blob) override {
    RETURN_IF_ERROR(inner_->Commit(blob));
    committed_ = true;
    display_.BlobFinished(id_, false, blob.digest);
    return Ok();
  }

 private:
  const std::unique_ptr<BlobWriter> inner_;
  ProgressDisplay& display_;
  const std::string id_;
  bool committed_ = false;
};

class ProgressDestination final : public ImageDestination {
 public:
  ProgressDestination(ImageDestination& inner, ProgressDisplay& display)
      : inner_(inner), display_(display) {}
  std::string Describe() const override { return inner_.Describe(); }
  std::shared_ptr<void> LockBlob(const BlobInfo& blob) override { return inner_.LockBlob(blob); }
  Result<bool> TryReuseBlob(const BlobInfo& blob, const DockerReference* source) override {
    ASSIGN_OR_RETURN(bool reused, inner_.TryReuseBlob(blob, source));
    if (reused) display_.BlobFinished(blob.digest, true);
    return reused;
  }
  Result<std::unique_ptr<BlobWriter>> NewBlobWriter(const BlobInfo& blob) override {
    ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, inner_.NewBlobWriter(blob));
    // A re-encoded blob has no digest yet: it is shown under a name of its own until then.
    std::string id = blob.digest;
    if (id.empty()) id = "layer " + std::to_string(++unnamed_);
    display_.BlobStarted(id, blob.size);
    return std::unique_ptr<BlobWriter>(new ProgressWriter(std::move(writer), display_, id));
  }
  LayerCompression DesiredLayerCompression() const override {
    return inner_.DesiredLayerCompression();
  }
  bool SerialBlobs() const override { return inner_.SerialBlobs(); }
  Status PutManifest(const RawManifest& m, bool is_instance) override {
    return inner_.PutManifest(m, is_instance);
  }
  Status CanStoreSignatures(const std::vector<Signature>& sigs) override {
    return inner_.CanStoreSignatures(sigs);
  }
  Status PutSignatures(const std::string& manifest_digest, bool is_instance,
                       const std::vector<Signature>& sigs) override {
    return inner_.PutSignatures(manifest_digest, is_instance, sigs);
  }
  Status Commit() override { return inner_.Commit(); }

 private:
  ImageDestination& inner_;
  ProgressDisplay& display_;
  std::atomic<int> unnamed_{0};
};

}  // namespace

std::unique_ptr<ImageDestination> WithProgress(ImageDestination& inner, ProgressDisplay& display) {
  return std::make_unique<ProgressDestination>(inner, display);
}

}  // namespace regfs::cli
