// libFuzzer target: containers-registries.conf(5) files (TOML) — RegistriesConf::Merge, then
// the lookups the clients make on what was merged (PullSources, CheckNotBlocked, IsInsecure).
// Every place to pull from is a docker reference that parses.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.h"
#include "transports/config/registries_conf.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RegistriesConf conf;
  if (!conf.Merge(fuzz::AsText(data, size), "registries.conf").ok()) return 0;
  static const char* kRefs[] = {
      "docker.io/library/busybox:latest",
      "example.com/ns/repo:1",
      "127.0.0.1:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "registry.example.com:5000/x",
  };
  for (const char* text : kRefs) {
    auto ref = ParseDockerReference(text);
    REGFS_FUZZ_CHECK(ref.ok());
    (void)conf.CheckNotBlocked(ref->registry);
    (void)conf.CheckNotBlocked(ref->Name());
    (void)conf.IsInsecure(ref->registry);
    auto sources = conf.PullSources(*ref);
    if (!sources.ok()) continue;
    REGFS_FUZZ_CHECK(!sources->empty());
    for (const PullSource& s : *sources)
      REGFS_FUZZ_CHECK(ParseDockerReference(s.ref.String()).ok());
  }
  return 0;
}
