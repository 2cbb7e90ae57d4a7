#include "transports/docker/mirrored_source.h"

#include <mutex>
#include <type_traits>

namespace regfs {
namespace {

class MirroredSource final : public ImageSource {
 public:
  MirroredSource(std::vector<std::unique_ptr<ImageSource>> candidates,
                 std::function<void(const std::string&)> log)
      : candidates_(std::move(candidates)), log_(std::move(log)) {}

  // The origin's name: what the user asked for.
  std::string Describe() const override { return candidates_.back()->Describe(); }

  Result<RawManifest> GetManifest(const std::string& instance_digest) override {
    if (ImageSource* chosen = Chosen()) return chosen->GetManifest(instance_digest);
    return FirstThat([&](ImageSource& s) { return s.GetManifest(instance_digest); });
  }

  Status GetBlob(const BlobInfo& blob, const ByteSink& sink) override {
    if (ImageSource* chosen = Chosen()) return chosen->GetBlob(blob, sink);
    return FirstThat([&](ImageSource& s) { return s.GetBlob(blob, sink); });
  }

  const DockerReference* RegistryLocation() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return (chosen_ ? chosen_ : candidates_.back().get())->RegistryLocation();
  }

 private:
  ImageSource* Chosen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return chosen_;
  }

  // Tries the candidates in order; the first that succeeds is chosen for good. On failure of
  // all, the origin's error.
  template <class F>
  std::invoke_result_t<F, ImageSource&> FirstThat(F&& attempt) {
    for (size_t i = 0;; ++i) {
      ImageSource& candidate = *candidates_[i];
      auto result = attempt(candidate);
      if (result.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!chosen_) chosen_ = &candidate;
        return result;
      }
      if (i + 1 == candidates_.size()) return result;
      if (log_) {
        log_("pulling from " + candidate.Describe() +
             " failed, trying the next source: " + result.error().message);
      }
    }
  }

  const std::vector<std::unique_ptr<ImageSource>> candidates_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  ImageSource* chosen_ = nullptr;  // guarded by mu_
};

}  // namespace

std::unique_ptr<ImageSource> NewMirroredSource(std::vector<std::unique_ptr<ImageSource>> candidates,
                                               std::function<void(const std::string&)> log) {
  return std::make_unique<MirroredSource>(std::move(candidates), std::move(log));
}

}  // namespace regfs
