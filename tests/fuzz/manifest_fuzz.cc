// libFuzzer target: manifest bytes as a registry, a layout or an archive serves them —
// GuessManifestMediaType and ParseManifest with the Content-Type a server may send, then what
// the copy does with an index (ChooseInstance, ReduceIndex). An index reduced by ReduceIndex
// is an index that parses again with the instances chosen. Also ParsePlatform (--platform,
// sync's platforms), whose PlatformString parses to the same platform.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/manifest/manifest.h"
#include "transports/util/digest.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  if (auto p = ParsePlatform(text); p.ok()) {
    auto again = ParsePlatform(PlatformString(*p));
    REGFS_FUZZ_CHECK(again.ok() && again->os == p->os && again->architecture == p->architecture &&
                     again->variant == p->variant);
  }
  static constexpr std::string_view kHints[] = {"",
                                                media::kOciManifest,
                                                media::kOciIndex,
                                                media::kDockerV2S2,
                                                media::kDockerList,
                                                media::kDockerV1,
                                                media::kDockerV1Signed,
                                                "application/json"};
  std::string_view hint = kHints[fuzz::TakeSelector(&text, std::size(kHints))];
  RawManifest raw;
  raw.bytes = std::string(text);
  raw.media_type = GuessManifestMediaType(text, hint);
  raw.digest = DigestOf(text);
  auto m = ParseManifest(text, hint);
  if (!m.ok() || !m->is_index) return 0;
  for (const Descriptor& d : m->manifests) REGFS_FUZZ_CHECK(IsSha256Digest(d.digest));
  Platform want = HostPlatform();
  if (!ChooseInstance(*m, want).ok()) return 0;
  auto reduced = ReduceIndex(raw, *m, {want});
  if (!reduced.ok()) return 0;
  REGFS_FUZZ_CHECK(reduced->digest == DigestOf(reduced->bytes));
  auto again = ParseManifest(reduced->bytes, reduced->media_type);
  REGFS_FUZZ_CHECK(again.ok() && again->is_index && !again->manifests.empty());
  return 0;
}
