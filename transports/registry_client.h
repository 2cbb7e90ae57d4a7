// RegistryClient: the Docker Registry HTTP API v2 (OCI distribution) for one registry host.
//
// It owns the rules of talking to a registry: HTTPS with verification, or plain HTTP for a
// loopback host that does not speak TLS (DESIGN §1); the WWW-Authenticate handshake with Basic
// and Bearer tokens cached per scope until they expire; retries with backoff for 429 (honouring
// Retry-After), 502–504 and connection resets; resumption of broken blob downloads with Range;
// redirects followed without carrying Authorization to another host; Link pagination; size
// limits on everything buffered. Thread-safe: one client serves all threads of a copy.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transports/auth_file.h"
#include "transports/byte_sink.h"
#include "transports/http_client.h"
#include "transports/manifest.h"
#include "transports/registries_conf.h"
#include "transports/result.h"
#include "transports/tls_config.h"
#include "transports/token_cache.h"
#include "transports/www_authenticate.h"

namespace regfs {

// Request accounting, shared by the clients of a mount (its .regfs/stats).
struct RegistryCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> blob_bytes{0};
};

struct RegistryOptions {
  // false: no certificate verification, and plain HTTP is allowed (--tls-verify=false).
  bool tls_verify = true;
  // Whether tls_verify was chosen explicitly; if not, registries.conf may mark the host insecure.
  bool tls_verify_set = false;
  // --cert-dir: the only certs.d-style directory used; empty: containers-certs.d(5) lookup.
  std::string cert_dir;
  // [[registry]] entries (insecure hosts, mirrors); null means none.
  std::shared_ptr<const RegistriesConf> registries_conf;
  std::optional<Credentials> creds;  // --creds; when absent, auth.json is searched
  std::string authfile;              // --authfile
  int retry_times = 3;
  // Debug log of requests (method, URL, status); never given header values.
  std::function<void(const std::string&)> log;
  std::shared_ptr<RegistryCounters> counters;  // optional
};

class RegistryClient {
 public:
  RegistryClient(std::string registry, RegistryOptions options, std::shared_ptr<HttpClient> http);

  const std::string& registry() const { return registry_; }

  Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref);
  // HEAD of a manifest: its digest, without the bytes.
  Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref);
  Status PutManifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                     const std::string& media_type);
  Status DeleteManifest(const std::string& repo, const std::string& ref);

  // Streams blob bytes [offset, size) to `sink`, resuming with Range after a broken transfer.
  // `size` is the descriptor's size (-1 if unknown). The bytes are not verified here.
  Status GetBlob(const std::string& repo, const std::string& digest, int64_t offset, int64_t size,
                 const ByteSink& sink);
  // Streams [offset, offset + length) of the blob (length -1: to the end), with resumption.
  Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                      int64_t length, int64_t size, const ByteSink& sink);
  Result<bool> BlobExists(const std::string& repo, const std::string& digest);
  // Cross-repository mount; false when the registry declined (the blob must be uploaded).
  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo);
  // Uploads `size` bytes pulled from `reader` as blob `digest` (POST, then one PUT; with size
  // -1, POST, a chunked PATCH until the reader ends, then PUT). The registry checks the digest.
  // Not retried: the reader can't be replayed.
  Status PutBlob(const std::string& repo, const std::string& digest, int64_t size,
                 const std::function<size_t(char*, size_t)>& reader);

  Result<std::vector<std::string>> ListTags(const std::string& repo);

  // GET /v2/ through the authentication handshake (Basic, or a Bearer token for no scope)
  // with this client's credentials: what login checks before it writes them. EACCES when the
  // registry or its token service refuses them.
  Status CheckLogin();
  Result<std::vector<std::string>> Catalog();

 private:
  enum class Retry { kAll, kStatusOnly, kNone };

  Status EnsurePinged();
  Status PingOnce();  // REQUIRES: ping_mu_ held
  // A loopback registry is taken to speak plain HTTP until a response says (see PingOnce):
  // false when `resp` shows it does not.
  bool ConfirmPlainHttp(const HttpResponse& resp);
  Status Repinged();
  HttpResponse Perform(const HttpRequest& req);
  HttpResponse Ping(const std::string& origin, const std::shared_ptr<const TlsConfig>& tls);
  // What to do about a TLS failure, for the error message ("" when it was not one).
  std::string TlsFailureHint(const HttpResponse& resp,
                             const std::shared_ptr<const TlsConfig>& tls) const;
  Result<HttpResponse> Send(HttpRequest req, const std::vector<std::string>& scopes, Retry retry);
  Result<std::string> AuthorizationFor(const std::vector<std::string>& scopes);
  Result<std::string> FetchToken(const Challenge& bearer, const std::vector<std::string>& scopes,
                                 const std::optional<Credentials>& creds);
  Result<std::optional<Credentials>> CredentialsFor(const std::string& repo);
  void Learn(const HttpResponse& resp);
  std::chrono::milliseconds Backoff(int attempt, const HttpResponse* resp) const;
  std::string Url(const std::string& path) const;
  std::string ResolveLocation(const std::string& base_url, const std::string& location) const;
  Error ErrorFromResponse(const HttpResponse& resp, const std::string& what) const;
  void Log(const std::string& line) const;

  const std::string registry_;
  const RegistryOptions options_;
  const std::shared_ptr<HttpClient> http_;
  const bool tls_verify_;  // options_.tls_verify, or false for a registries.conf insecure host

  std::mutex ping_mu_;                                    // held while pinging; taken before mu_
  std::optional<Error> ping_error_;                       // guarded by mu_
  std::chrono::steady_clock::time_point ping_failed_at_;  // guarded by mu_
  std::mutex mu_;
  bool pinged_ = false;                   // guarded by mu_
  bool unconfirmed_ = false;              // guarded by mu_
  bool tried_plain_ = false;              // guarded by mu_
  std::string origin_;                    // "https://host:port", guarded by mu_ until pinged
  std::shared_ptr<const TlsConfig> tls_;  // certs.d material, set with origin_
  std::optional<Challenge> challenge_;    // guarded by mu_
  TokenCache tokens_;                     // by scope list, guarded by mu_
  std::map<std::string, std::optional<Credentials>> creds_;  // by repository, guarded by mu_
  std::string auth_stamp_;  // AuthFilesStamp() creds_ was read at, guarded by mu_
};

// Builds the registry error text "CODE: message" from an OCI distribution error body.
std::string RegistryErrorText(const std::string& body);

// errno for an HTTP status, as DESIGN §1 maps them.
int ErrnoForStatus(long status);

// "https://host/path?x" → "https://host"; used to compare hosts before sending credentials.
std::string UrlOrigin(const std::string& url);

}  // namespace regfs
