#include "transports/docker/mirrored_source.h"

#include <mutex>
#include <type_traits>

#include "transports/docker/try_in_order.h"

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

  Result<std::vector<Signature>> GetSignatures(const std::string& manifest_digest,
                                               bool is_instance) override {
    if (ImageSource* chosen = Chosen()) return chosen->GetSignatures(manifest_digest, is_instance);
    return FirstThat([&](ImageSource& s) { return s.GetSignatures(manifest_digest, is_instance); });
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

  // Tries the candidates in order; the first that succeeds is chosen for good.
  template <class F>
  std::invoke_result_t<F, ImageSource&> FirstThat(F&& attempt) {
    return TryInOrder(
        candidates_.size(),
        [&](size_t i) {
          auto result = attempt(*candidates_[i]);
          if (result.ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!chosen_) chosen_ = candidates_[i].get();
          }
          return result;
        },
        [&](size_t i) { return candidates_[i]->Describe(); }, log_);
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
