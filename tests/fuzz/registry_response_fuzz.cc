// libFuzzer target: the small responses of a registry, as RegistryClient reads them — a token
// server's JSON (then kept in the TokenCache for its expires_in), tag-list and catalog pages,
// Link headers, and error bodies. The first byte chooses which.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "transports/docker/registry_client.h"
#include "transports/docker/registry_responses.h"
#include "transports/docker/token_cache.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  switch (fuzz::TakeSelector(&text, 5)) {
    case 0: {
      auto t = ParseTokenResponse(text);
      if (!t.ok()) break;
      REGFS_FUZZ_CHECK(!t->token.empty());
      TokenCache cache;
      auto now = TokenCache::Clock::now();
      cache.Put("repository:a:pull ", t->token, t->expires_in, now);
      // Every token is good for the request in flight (at least 60 s less the margin).
      auto got = cache.Get("repository:a:pull ", now);
      REGFS_FUZZ_CHECK(got && *got == t->token);
      break;
    }
    case 1:
      (void)ParseTagListPage(text);
      break;
    case 2:
      (void)ParseCatalogPage(text);
      break;
    case 3: {
      // One header value a line, as libcurl hands them over.
      std::vector<std::string> headers;
      size_t start = 0;
      while (start <= text.size() && headers.size() < 64) {
        size_t nl = text.find('\n', start);
        headers.emplace_back(text.substr(start, nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 1;
      }
      std::string next = NextLinkTarget(headers);
      REGFS_FUZZ_CHECK(next.find('>') == std::string::npos);
      break;
    }
    case 4: {
      std::string body(text);
      (void)RegistryErrorText(body);
      REGFS_FUZZ_CHECK(RegistryErrorCodes(body).size() <= 16);
      break;
    }
  }
  return 0;
}
