// RegistryClient: the Docker Registry HTTP API v2 (OCI distribution) for one registry host.
//
// It owns the rules of talking to a registry: HTTPS with verification, or plain HTTP for a
// loopback (or insecure) host that does not speak TLS (DESIGN §1); the WWW-Authenticate
// handshake with Basic and Bearer tokens cached per scope until they expire; one retry policy
// around single attempts — backoff for 429 (honouring Retry-After), 502–504, connection
// resets and refused connections, and broken blob downloads resumed with Range (for as long as
// blob_retry_seconds allows, when set); redirects followed without carrying
// Authorization to another host; Link pagination; size limits on everything buffered. A
// host blocked in registries.conf is refused (EACCES) before any request.
//
// The endpoint (scheme, TLS material) is settled once, before the first request, and never
// changes after: a verified host that is not loopback is HTTPS without a request spent on it;
// a loopback or insecure host is probed once (GET /v2/ over TLS, then plain HTTP if it does
// not speak TLS), and the probe's challenge saves the first request its 401.
// Thread-safe: one client serves all threads of a copy.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/config/auth_file.h"
#include "transports/config/registries_conf.h"
#include "transports/config/registries_d.h"
#include "transports/docker/token_cache.h"
#include "transports/docker/www_authenticate.h"
#include "transports/http/http_client.h"
#include "transports/http/tls_config.h"
#include "transports/manifest/manifest.h"
#include "transports/registry/registry.h"
#include "transports/util/byte_sink.h"
#include "transports/util/keyed_locks.h"
#include "transports/util/result.h"

namespace regfs {

struct RegistryOptions {
  // false: no certificate verification, and plain HTTP is allowed (--tls-verify=false).
  bool tls_verify = true;
  // Whether tls_verify was chosen explicitly; if not, registries.conf may mark the host insecure.
  bool tls_verify_set = false;
  // --cert-dir: the only certs.d-style directory used; empty: containers-certs.d(5) lookup.
  std::string cert_dir;
  // [[registry]] entries: the client honours `insecure` and `blocked` for its host; mirrors
  // are its callers' (alltransports/). Null means none.
  std::shared_ptr<const RegistriesConf> registries_conf;
  std::optional<Credentials> creds;  // --creds; when absent, auth.json is searched
  std::string authfile;              // --authfile
  bool no_creds = false;             // --no-creds: anonymous, auth.json is not read
  std::string registry_token;        // --registry-token: sent as the Bearer token
  int retry_times = 3;
  // Blob reads only: a read that fails in a way worth retrying (a reset, a refused
  // connection, 429, 5xx) goes on being retried past retry_times until it has had no byte for
  // this many seconds; a registry restarted under a reader is waited for that long. 0: no
  // window, retry_times alone.
  int blob_retry_seconds = 0;
  // Debug log of requests (method, URL, status); never given header values.
  std::function<void(const std::string&)> log;
  std::shared_ptr<RegistryCounters> counters;  // optional
  // Requests in flight to this registry at once (0: no limit). Upload bodies do not count:
  // each is fed by a read that holds a place already, and counting both could deadlock.
  int max_requests = 0;
  // Where blobs were seen, across processes (mounts across repositories); null: not used.
  std::shared_ptr<BlobLocationCache> blob_locations;
  // Where signatures are stored (lookaside, sigstore attachments); null: attachments only.
  std::shared_ptr<const RegistriesD> registries_d;
  // --daemon-host: the Docker engine of docker-daemon: references; empty: $DOCKER_HOST, else
  // unix:///var/run/docker.sock (daemon/daemon_client.h). tls_verify applies to it too.
  std::string daemon_host;
};

class RegistryClient : public Registry {
 public:
  RegistryClient(std::string registry, RegistryOptions options, std::shared_ptr<HttpClient> http);

  const std::string& registry() const override { return registry_; }
  BlobLocationCache* blob_locations() const override { return options_.blob_locations.get(); }
  KeyedLocks& blob_locks() override { return blob_locks_; }

  Result<RawManifest> GetManifest(const std::string& repo, const std::string& ref) override;
  // HEAD of a manifest: its digest, without the bytes.
  Result<std::string> ResolveDigest(const std::string& repo, const std::string& ref) override;
  Status PutManifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                     const std::string& media_type) override;
  Status DeleteManifest(const std::string& repo, const std::string& ref) override;

  // Streams blob bytes [offset, size) to `sink`, resuming with Range after a broken transfer.
  // `size` is the descriptor's size (-1 if unknown). The bytes are not verified here.
  Status GetBlob(const std::string& repo, const std::string& digest, int64_t offset, int64_t size,
                 const ByteSink& sink);
  // Streams [offset, offset + length) of the blob (length -1: to the end), with resumption.
  Status GetBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                      int64_t length, int64_t size, const ByteSink& sink) override;
  Result<bool> BlobExists(const std::string& repo, const std::string& digest) override;
  // Cross-repository mount; false when the registry declined (the blob must be uploaded).
  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo) override;
  // Uploads `size` bytes pulled from `reader` as blob `digest` (POST, then one PUT; with size
  // -1, POST, a chunked PATCH until the reader ends, then PUT with the digest, which may be
  // known only then). The registry checks the digest.
  // Not retried: the reader can't be replayed.
  Status PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                 const std::function<size_t(char*, size_t)>& reader) override;

  Result<std::vector<std::string>> ListTags(const std::string& repo) override;

  // GET /v2/ through the authentication handshake (Basic, or a Bearer token for no scope)
  // with this client's credentials: what login checks before it writes them. EACCES when the
  // registry or its token service refuses them.
  Status CheckLogin();
  Result<std::vector<std::string>> Catalog(const std::function<bool()>& stop) override;

 private:
  // Where the registry is, settled once (see the top of this file).
  struct Endpoint {
    std::string origin;                    // "https://host:port" or "http://host:port"
    std::shared_ptr<const TlsConfig> tls;  // certs.d material, or null
  };
  // How Send() may repeat a request. Every repetition goes through this one policy.
  struct SendPolicy {
    // false: sent exactly once (an upload whose reader cannot be replayed): no retry after a
    // failure, a retryable status or a 401.
    bool replayable = true;
    // false: no Authorization, and a 401 is an answer (the endpoint probe).
    bool authenticate = true;
    // Called before every attempt, to bring the request up to date (a Range header, say).
    std::function<void(HttpRequest&)> before_attempt;
    // Bytes delivered so far: a broken attempt that made progress does not use up a retry.
    std::function<int64_t()> progress;
    // Past retry_times, retries go on while the last progress is less than this old
    // (RegistryOptions::blob_retry_seconds); 0: they stop at retry_times.
    std::chrono::seconds retry_for{0};
  };
  static const SendPolicy kSendOnce;

  Status GetSmallBlobRange(const std::string& repo, const std::string& digest, int64_t offset,
                           int64_t limit, int64_t size, const ByteSink& sink);
  // Whether repo:ref is the manifest `digest` now (false when that cannot be told).
  bool HoldsManifest(const std::string& repo, const std::string& ref, const std::string& digest);
  Result<Endpoint> GetEndpoint();
  Result<Endpoint> ProbeEndpoint(const std::shared_ptr<const TlsConfig>& tls);
  HttpResponse Perform(const HttpRequest& req);
  // What to do about a TLS failure, for the error message ("" when it was not one).
  std::string TlsFailureHint(const HttpResponse& resp,
                             const std::shared_ptr<const TlsConfig>& tls) const;
  // Sends a request (a path is relative to the endpoint) under `policy`.
  Result<HttpResponse> Send(HttpRequest req, const std::vector<std::string>& scopes,
                            const SendPolicy& policy);
  Result<HttpResponse> Send(HttpRequest req, const std::vector<std::string>& scopes) {
    return Send(std::move(req), scopes, SendPolicy());
  }
  Result<HttpResponse> SendTo(const Endpoint& endpoint, HttpRequest req,
                              const std::vector<std::string>& scopes, const SendPolicy& policy);
  Result<std::string> AuthorizationFor(const Endpoint& endpoint,
                                       const std::vector<std::string>& scopes);
  Result<std::string> FetchToken(const Endpoint& endpoint, const Challenge& bearer,
                                 const std::vector<std::string>& scopes,
                                 const std::optional<Credentials>& creds);
  Result<std::optional<Credentials>> CredentialsFor(const std::string& repo);
  void Learn(const HttpResponse& resp);
  std::chrono::milliseconds Backoff(int attempt, const HttpResponse* resp) const;
  std::string ResolveLocation(const std::string& base_url, const std::string& location) const;
  Error ErrorFromResponse(const HttpResponse& resp, const std::string& what) const;
  void Log(const std::string& line) const;

  const std::string registry_;
  const std::string host_;  // registry_, or the host that serves it (docker.io)
  const RegistryOptions options_;
  const std::shared_ptr<HttpClient> http_;
  const bool tls_verify_;  // options_.tls_verify, or false for a registries.conf insecure host

  // Lock order: endpoint_mu_, then mu_. No request runs under mu_.
  std::mutex endpoint_mu_;  // held while the endpoint is settled
  std::mutex mu_;
  std::shared_ptr<const Endpoint> endpoint_;                  // set once, guarded by mu_
  std::optional<Error> endpoint_error_;                       // guarded by mu_
  std::chrono::steady_clock::time_point endpoint_failed_at_;  // guarded by mu_
  std::optional<Challenge> challenge_;                        // guarded by mu_
  TokenCache tokens_;                                         // by scope list, guarded by mu_
  std::map<std::string, std::optional<Credentials>> creds_;   // by repository, guarded by mu_
  std::string auth_stamp_;  // AuthFilesStamp() creds_ was read at, guarded by mu_
  KeyedLocks blob_locks_;

  // Places for requests in flight (options_.max_requests).
  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  int slots_used_ = 0;  // guarded by slots_mu_
};

// Builds the registry error text "CODE: message" from an OCI distribution error body.
std::string RegistryErrorText(const std::string& body);

// The error codes of an OCI distribution error body ("MANIFEST_BLOB_UNKNOWN", …), in order.
std::vector<std::string> RegistryErrorCodes(const std::string& body);

// errno for an HTTP status, as DESIGN §1 maps them.
int ErrnoForStatus(long status);

}  // namespace regfs
