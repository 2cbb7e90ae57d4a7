#include "transports/docker/registry_client.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "transports/docker/registry_responses.h"
#include "transports/manifest/manifest.h"
#include "transports/types/image_reference.h"
#include "transports/util/base64.h"
#include "transports/util/digest.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kMaxTokenResponse = 1 << 20;
constexpr int64_t kMaxErrorBody = 64 << 10;
constexpr int64_t kMaxTagListPage = 8 << 20;
constexpr long kSmallRequestTimeout = 120;
constexpr int kMaxRedirects = 5;
// The longest wait between the retries of a request with a retry window (SendPolicy).
constexpr milliseconds kMaxWindowBackoff{2000};
// 429s with Retry-After waited out per request before it counts as failed (each wait <= 60 s).
constexpr int kMaxRateLimitWaits = 20;
constexpr int kMaxPages = 1000;
// Blob ranges up to this size (configs, small layers, a mount's chunks) are read as buffered
// requests, which share the registry's HTTP/2 connection; larger ones stream on their own.
constexpr int64_t kMaxBufferedBlobRange = 1 << 20;

// A TLS alert from the server, such as a refused or missing client certificate.
bool IsTlsAlert(const std::string& error) { return error.find(" alert ") != std::string::npos; }

bool IsRetryableStatus(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

std::string ScopeKey(const std::vector<std::string>& scopes) {
  std::string key;
  for (const auto& s : scopes) key += s + " ";
  return key;
}

Error TooManyPages(const std::string& what) {
  return MakeError(
      EFBIG, what + " goes on for more than " + std::to_string(kMaxPages) + " pages; giving up");
}

}  // namespace

std::string RegistryClient::TlsFailureHint(const HttpResponse& resp,
                                           const std::shared_ptr<const TlsConfig>& tls) const {
  std::string where = tls ? tls->dir()
                          : (options_.cert_dir.empty() ? "/etc/containers/certs.d/" + registry_ +
                                                             "/ (containers-certs.d(5))"
                                                       : options_.cert_dir);
  if (resp.failure == HttpFailure::kTlsVerify) {
    return " (the registry's certificate is not trusted: put its CA certificate as a *.crt file "
           "in " +
           where + ", or pass --cert-dir; --tls-verify=false skips verification)";
  }
  if (IsTlsAlert(resp.error)) {
    if (tls && tls->has_client_certificate()) {
      return " (the registry refused the TLS connection; is the client certificate in " + where +
             " one it accepts?)";
    }
    return " (the registry may require a client certificate: put a *.cert/*.key pair in " + where +
           ")";
  }
  return "";
}

std::string RegistryErrorText(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string out;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      std::string code = JsonString(e, "code");
      std::string message = JsonString(e, "message");
      out += code.empty() ? message : code + ": " + message;
      if (e.contains("detail") && !e["detail"].is_null()) {
        std::string detail =
            e["detail"].is_string() ? e["detail"].get<std::string>() : e["detail"].dump();
        if (detail.size() > 300) detail = detail.substr(0, 300) + "…";
        out += " (" + detail + ")";
      }
    }
  }
  return out;
}

std::vector<std::string> RegistryErrorCodes(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> codes;
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return codes;
  for (const auto& e : j["errors"]) {
    if (e.is_object() && codes.size() < 16) codes.push_back(JsonString(e, "code"));
  }
  return codes;
}

int ErrnoForStatus(long status) {
  switch (status) {
    case 400:
      return EINVAL;
    case 401:
    case 403:
      return EACCES;
    case 404:
      return ENOENT;
    case 405:
    case 501:
      return EOPNOTSUPP;
    case 413:
      return EFBIG;
    case 429:
      return EAGAIN;
    default:
      return EIO;
  }
}

RegistryClient::RegistryClient(std::string registry, RegistryOptions options,
                               std::shared_ptr<HttpClient> http)
    : registry_(std::move(registry)),
      host_(registry_ == "docker.io" ? "registry-1.docker.io" : registry_),
      options_(std::move(options)),
      http_(std::move(http)),
      tls_verify_(options_.tls_verify && (options_.tls_verify_set || !options_.registries_conf ||
                                          !options_.registries_conf->IsInsecure(registry_))) {}

HttpResponse RegistryClient::Perform(const HttpRequest& req) {
  if (options_.counters) ++options_.counters->requests;
  const bool limited = options_.max_requests > 0 && !req.body_reader;
  if (limited) {
    std::unique_lock<std::mutex> lock(slots_mu_);
    slots_cv_.wait(lock, [&] { return slots_used_ < options_.max_requests; });
    ++slots_used_;
  }
  HttpResponse resp = http_->Perform(req);
  if (limited) {
    std::lock_guard<std::mutex> lock(slots_mu_);
    --slots_used_;
    slots_cv_.notify_one();
  }
  return resp;
}

void RegistryClient::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::string RegistryClient::ResolveLocation(const std::string& base_url,
                                            const std::string& location) const {
  if (location.find("://") != std::string::npos) return location;
  if (!location.empty() && location.front() == '/') return UrlOrigin(base_url) + location;
  std::string base = base_url.substr(0, base_url.find('?'));
  return base.substr(0, base.rfind('/') + 1) + location;
}

Error RegistryClient::ErrorFromResponse(const HttpResponse& resp, const std::string& what) const {
  if (!resp.transport_ok()) {
    int e = resp.failure == HttpFailure::kTimeout ? ETIMEDOUT : EIO;
    if (resp.failure == HttpFailure::kConnect || resp.failure == HttpFailure::kResolve) {
      e = EHOSTUNREACH;
    }
    return MakeError(e, what + ": " + registry_ + ": " + resp.error);
  }
  std::string text = RegistryErrorText(resp.body);
  if (text.empty())
    text = "HTTP " + std::to_string(resp.status);
  else
    text = "HTTP " + std::to_string(resp.status) + " " + text;
  Error e = MakeError(ErrnoForStatus(resp.status), what + ": " + text);
  e.registry_codes = RegistryErrorCodes(resp.body);
  return e;
}

milliseconds RegistryClient::Backoff(int attempt, const HttpResponse* resp) const {
  if (resp) {
    std::string ra = resp->Header("retry-after");
    if (!ra.empty() && std::all_of(ra.begin(), ra.end(), ::isdigit) && ra.size() < 6) {
      return milliseconds(std::min<long>(std::stol(ra), 60) * 1000);
    }
  }
  return milliseconds(std::min(250L << std::min(attempt, 6), 10000L));
}

void RegistryClient::Learn(const HttpResponse& resp) {
  for (const std::string& h : resp.Headers("www-authenticate")) {
    for (Challenge& c : ParseWwwAuthenticate(h)) {
      if (c.scheme == "bearer" || c.scheme == "basic") {
        std::lock_guard<std::mutex> lock(mu_);
        if (!challenge_ || challenge_->scheme != "bearer" || c.scheme == "bearer") challenge_ = c;
      }
    }
  }
}

Result<RegistryClient::Endpoint> RegistryClient::GetEndpoint() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (endpoint_) return *endpoint_;
  }
  // One thread settles it; the others wait and take its result (a failure for a second, so
  // that a dead registry is not probed once per waiting thread, one timeout after another).
  std::lock_guard<std::mutex> settling(endpoint_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (endpoint_) return *endpoint_;
    if (endpoint_error_ &&
        std::chrono::steady_clock::now() - endpoint_failed_at_ < std::chrono::seconds(1)) {
      return *endpoint_error_;
    }
  }
  Result<Endpoint> settled = [&]() -> Result<Endpoint> {
    // Every request needs the endpoint: a blocked registry is never contacted, whatever asks
    // (containers/image refuses to make a client for it).
    if (options_.registries_conf)
      RETURN_IF_ERROR(options_.registries_conf->CheckNotBlocked(registry_));
    auto loaded = LoadTlsConfigFor(options_.cert_dir, registry_);
    if (!loaded.ok()) return Annotate(loaded.error(), "TLS certificates for " + registry_);
    // A verified registry that is not loopback can only be HTTPS: nothing to probe.
    if (tls_verify_ && !IsLoopbackHost(registry_)) return Endpoint{"https://" + host_, *loaded};
    return ProbeEndpoint(*loaded);
  }();
  std::lock_guard<std::mutex> lock(mu_);
  if (!settled.ok()) {
    endpoint_error_ = settled.error();
    endpoint_failed_at_ = std::chrono::steady_clock::now();
    return settled;
  }
  endpoint_ = std::make_shared<const Endpoint>(*settled);
  endpoint_error_.reset();
  return settled;
}

Result<RegistryClient::Endpoint> RegistryClient::ProbeEndpoint(
    const std::shared_ptr<const TlsConfig>& tls) {
  // TLS first, as skopeo does; plain HTTP only from a server that does not speak TLS. A
  // loopback server that speaks TLS is verified like any other.
  auto is_registry = [](const HttpResponse& r) {
    return r.transport_ok() && (r.status == 200 || r.status == 401);
  };
  auto probe = [&](const Endpoint& e) -> Result<HttpResponse> {
    HttpRequest req;
    req.url = e.origin + "/v2/";
    req.timeout_s = 30;
    req.max_body = kMaxErrorBody;
    SendPolicy policy;
    policy.authenticate = false;
    return SendTo(e, req, {}, policy);
  };
  Endpoint https{"https://" + host_, tls};
  ASSIGN_OR_RETURN(HttpResponse resp, probe(https));
  Endpoint chosen = https;
  if (resp.failure == HttpFailure::kTlsHandshake && !IsTlsAlert(resp.error)) {
    Endpoint plain{"http://" + host_, tls};
    ASSIGN_OR_RETURN(HttpResponse plain_resp, probe(plain));
    // A plain answer that is no registry's (a TLS server's 400) leaves the TLS failure as
    // the better explanation; a plain request that failed (a proxy, say) says why itself.
    if (is_registry(plain_resp) || !plain_resp.transport_ok()) {
      resp = std::move(plain_resp);
      chosen = plain;
    }
  }
  if (!is_registry(resp)) {
    Error e = ErrorFromResponse(resp, "pinging registry " + registry_);
    e.message += TlsFailureHint(resp, tls);
    return e;
  }
  Learn(resp);
  return chosen;
}

Result<std::optional<Credentials>> RegistryClient::CredentialsFor(const std::string& repo) {
  if (options_.creds) return options_.creds;
  if (options_.no_creds) return std::optional<Credentials>();
  // A few stat()s per request: a long-lived client (a mount) sees a login or logout at once.
  std::string stamp = AuthFilesStamp(options_.authfile);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stamp != auth_stamp_) {
      auth_stamp_ = stamp;
      creds_.clear();
      tokens_.Clear();  // they were granted to the old credentials
    }
    if (auto it = creds_.find(repo); it != creds_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::optional<Credentials> found,
                   LookupCredentials(options_.authfile, registry_, repo));
  std::lock_guard<std::mutex> lock(mu_);
  creds_[repo] = found;
  return found;
}

Result<std::string> RegistryClient::FetchToken(const Endpoint& endpoint, const Challenge& bearer,
                                               const std::vector<std::string>& scopes,
                                               const std::optional<Credentials>& creds) {
  auto realm_it = bearer.params.find("realm");
  if (realm_it == bearer.params.end() || realm_it->second.empty()) {
    return MakeError(EACCES, "registry " + registry_ + " asked for a Bearer token without a realm");
  }
  const std::string& realm = realm_it->second;
  // Plain HTTP only between loopback hosts, and only for a registry spoken to in plain HTTP.
  bool realm_https = realm.rfind("https://", 0) == 0;
  bool realm_http = realm.rfind("http://", 0) == 0;
  if (!realm_https && !(realm_http && IsLoopbackHost(UrlOrigin(realm).substr(7)) &&
                        endpoint.origin.rfind("http://", 0) == 0 && IsLoopbackHost(registry_))) {
    return MakeError(EACCES, "refusing token realm \"" + realm +
                                 "\": it must be HTTPS (plain HTTP only for a loopback registry)");
  }
  // Query (GET) or form (POST) parameters.
  std::string params;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!params.empty()) params += "&";
    params += k + "=" + UrlEscape(v);
  };
  if (auto s = bearer.params.find("service"); s != bearer.params.end()) add("service", s->second);
  for (const auto& scope : scopes) add("scope", scope);
  HttpRequest req;
  req.tls_verify = tls_verify_;
  req.tls = endpoint.tls;
  req.timeout_s = 60;
  req.max_body = kMaxTokenResponse;
  const bool refresh = creds && !creds->identity_token.empty();
  if (refresh) {
    // OAuth2 refresh-token grant: the identity token never travels in a URL.
    add("grant_type", "refresh_token");
    add("client_id", "regfs");
    add("refresh_token", creds->identity_token);
    req.method = "POST";
    req.url = realm;
    req.body = params;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    if (creds && !creds->username.empty()) {
      add("account", creds->username);
      req.headers.push_back("Authorization: Basic " +
                            Base64Encode(creds->username + ":" + creds->password));
    }
    req.url =
        realm + (params.empty() ? "" : (realm.find('?') == std::string::npos ? "?" : "&") + params);
  }
  HttpResponse resp = Perform(req);
  Log(req.method + " " + realm + (refresh ? " (token, refresh grant) -> " : " (token) -> ") +
      std::to_string(resp.status));
  if (resp.body_too_large) return MakeError(EFBIG, "token response over the 1 MiB limit");
  if (!resp.transport_ok() || resp.status != 200) {
    return ErrorFromResponse(resp, "getting a token from " + UrlOrigin(realm));
  }
  ASSIGN_OR_RETURN(TokenResponse token, ParseTokenResponse(resp.body));
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.Put(ScopeKey(scopes), token.token, token.expires_in, std::chrono::steady_clock::now());
  return token.token;
}

Result<std::string> RegistryClient::AuthorizationFor(const Endpoint& endpoint,
                                                     const std::vector<std::string>& scopes) {
  std::optional<Challenge> challenge;
  {
    std::lock_guard<std::mutex> lock(mu_);
    challenge = challenge_;
  }
  if (!challenge) return std::string();
  if (!options_.registry_token.empty()) {
    if (endpoint.origin.rfind("http://", 0) == 0 && !IsLoopbackHost(registry_)) {
      return MakeError(EACCES,
                       "refusing to send a registry token to " + registry_ + " over plain HTTP");
    }
    return "Bearer " + options_.registry_token;
  }
  // Scopes look like "repository:NAME:ACTIONS"; credentials come from the first repository.
  std::string repo;
  if (!scopes.empty()) {
    size_t a = scopes[0].find(':'), b = scopes[0].rfind(':');
    if (a != std::string::npos && b > a) repo = scopes[0].substr(a + 1, b - a - 1);
  }
  ASSIGN_OR_RETURN(std::optional<Credentials> creds, CredentialsFor(repo));
  if (challenge->scheme == "basic") {
    if (!creds || creds->username.empty()) return std::string();
    if (endpoint.origin.rfind("http://", 0) == 0 && !IsLoopbackHost(registry_)) {
      return MakeError(EACCES, "refusing to send credentials to " + registry_ + " over plain HTTP");
    }
    return "Basic " + Base64Encode(creds->username + ":" + creds->password);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto cached = tokens_.Get(ScopeKey(scopes), std::chrono::steady_clock::now())) {
      return "Bearer " + *cached;
    }
  }
  ASSIGN_OR_RETURN(std::string token, FetchToken(endpoint, *challenge, scopes, creds));
  return "Bearer " + token;
}

const RegistryClient::SendPolicy RegistryClient::kSendOnce = [] {
  SendPolicy once;
  once.replayable = false;
  return once;
}();

Result<HttpResponse> RegistryClient::Send(HttpRequest req, const std::vector<std::string>& scopes,
                                          const SendPolicy& policy) {
  ASSIGN_OR_RETURN(Endpoint endpoint, GetEndpoint());
  if (!req.url.empty() && req.url.front() == '/') req.url = endpoint.origin + req.url;
  return SendTo(endpoint, std::move(req), scopes, policy);
}

Result<HttpResponse> RegistryClient::SendTo(const Endpoint& endpoint, HttpRequest req,
                                            const std::vector<std::string>& scopes,
                                            const SendPolicy& policy) {
  req.tls_verify = tls_verify_;
  req.tls = endpoint.tls;
  const std::string first_url = req.url;
  const std::vector<std::string> base_headers = req.headers;
  auto progress = [&] { return policy.progress ? policy.progress() : int64_t{0}; };
  bool auth_retried = false;
  bool challenge_learned = false;
  int redirects = 0;
  int failures = 0;      // retries used: broken transfers without progress, retryable statuses
  int rate_limited = 0;  // 429s with Retry-After waited out; they are not failures
  int64_t progressed = progress();
  auto progressed_at = std::chrono::steady_clock::now();  // when `progressed` was last seen
  for (;;) {
    req.headers = base_headers;
    if (policy.before_attempt) policy.before_attempt(req);
    // Credentials go only to the registry itself, never to a host it redirects us to.
    const bool to_registry = UrlOrigin(req.url) == endpoint.origin;
    bool sent_auth = false;
    if (to_registry && policy.authenticate) {
      ASSIGN_OR_RETURN(std::string auth, AuthorizationFor(endpoint, scopes));
      if (!auth.empty()) req.headers.push_back("Authorization: " + auth);
      sent_auth = !auth.empty();
    }
    HttpResponse resp = Perform(req);
    Log(req.method + " " + req.url + " -> " +
        (resp.transport_ok() ? std::to_string(resp.status) : resp.error));
    auto retry_later = [&](const HttpResponse* r) {
      if (!policy.replayable) return false;
      const auto now = std::chrono::steady_clock::now();
      if (int64_t delivered = progress(); delivered > progressed) {
        progressed = delivered;
        progressed_at = now;
        failures = 0;  // it moved: the next failure starts the count anew
      }
      milliseconds wait = Backoff(failures, r);
      if (failures >= options_.retry_times) {
        // Past the count, only a request with a window goes on, briskly, until it has made no
        // progress for the whole window (a restarting registry refuses connections meanwhile);
        // the last attempt is made as the window ends.
        const auto deadline = progressed_at + policy.retry_for;
        if (now >= deadline) return false;
        wait = std::min(
            {wait, kMaxWindowBackoff, std::chrono::duration_cast<milliseconds>(deadline - now)});
      }
      ++failures;
      if (!r) Log("retrying " + first_url + " (" + resp.error + ")");
      std::this_thread::sleep_for(wait);
      req.url = first_url;  // a redirect target may not outlive the attempt
      return true;
    };
    if (!resp.transport_ok()) {
      // A TLS alert is the server's answer (a client certificate refused, say), not bad luck.
      if (IsRetryable(resp.failure) && !IsTlsAlert(resp.error) && retry_later(nullptr)) continue;
      return resp;  // the caller reports it
    }
    if (resp.status == 401 && to_registry && policy.authenticate && policy.replayable) {
      if (!sent_auth && !challenge_learned) {
        // The first request to a registry not probed: its challenge says how to authenticate.
        challenge_learned = true;
        Learn(resp);
        continue;
      }
      if (sent_auth && !auth_retried) {
        // The token may have expired or lacked a scope (insufficient_scope): learn, retry once.
        auth_retried = true;
        Learn(resp);
        std::lock_guard<std::mutex> lock(mu_);
        tokens_.Erase(ScopeKey(scopes));
        continue;
      }
    }
    // A registry that says when to come back is rate limiting, not failing: wait as told.
    if (resp.status == 429 && policy.replayable && !resp.Header("retry-after").empty() &&
        rate_limited < kMaxRateLimitWaits) {
      ++rate_limited;
      Log("rate limited by " + registry_ + ": waiting as Retry-After says");
      std::this_thread::sleep_for(Backoff(0, &resp));
      req.url = first_url;
      continue;
    }
    // A 500 to a read is retried too: docker-registry answers one while a concurrent push
    // rewrites the blob link it reads.
    const bool read = req.method == "GET" || req.method == "HEAD";
    if ((IsRetryableStatus(resp.status) || (resp.status == 500 && read)) && retry_later(&resp)) {
      continue;
    }
    if ((resp.status == 301 || resp.status == 302 || resp.status == 303 || resp.status == 307 ||
         resp.status == 308) &&
        (req.method == "GET" || req.method == "HEAD")) {
      std::string location = resp.Header("location");
      if (location.empty() || ++redirects > kMaxRedirects) return resp;
      req.url = ResolveLocation(req.url, location);
      if (req.url.rfind("https://", 0) != 0 && req.url.rfind("http://", 0) != 0) return resp;
      continue;
    }
    return resp;
  }
}

Result<RawManifest> RegistryClient::GetManifest(const std::string& repo, const std::string& ref) {
  HttpRequest req;
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.headers.push_back("Accept: " + std::string(media::kAcceptManifests));
  req.max_body = kMaxManifestSize;
  req.timeout_s = kSmallRequestTimeout;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}));
  std::string what = "reading manifest " + ref + " in " + registry_ + "/" + repo;
  if (resp.body_too_large) return MakeError(EFBIG, what + ": manifest over the 4 MiB limit");
  if (!resp.transport_ok() || resp.status != 200) return ErrorFromResponse(resp, what);
  RawManifest out;
  out.digest = DigestOf(resp.body);
  if (IsSha256Digest(ref) && out.digest != ref) {
    return MakeError(EIO, what + ": registry served bytes with digest " + out.digest);
  }
  std::string content_type = resp.Header("content-type");
  content_type = content_type.substr(0, content_type.find(';'));
  out.media_type = GuessManifestMediaType(resp.body, content_type);
  out.bytes = std::move(resp.body);
  return out;
}

Result<std::string> RegistryClient::ResolveDigest(const std::string& repo, const std::string& ref) {
  if (IsSha256Digest(ref)) return ref;
  HttpRequest req;
  req.method = "HEAD";
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.headers.push_back("Accept: " + std::string(media::kAcceptManifests));
  req.timeout_s = kSmallRequestTimeout;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}));
  std::string what = "resolving " + registry_ + "/" + repo + ":" + ref;
  if (!resp.transport_ok() || resp.status != 200) return ErrorFromResponse(resp, what);
  std::string digest = resp.Header("docker-content-digest");
  if (IsSha256Digest(digest)) return digest;
  // No digest header: fall back to the bytes.
  ASSIGN_OR_RETURN(RawManifest m, GetManifest(repo, ref));
  return m.digest;
}

Status RegistryClient::PutManifest(const std::string& repo, const std::string& ref,
                                   const std::string& bytes, const std::string& media_type) {
  HttpRequest req;
  req.method = "PUT";
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.headers.push_back("Content-Type: " + media_type);
  req.body = bytes;
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull,push"}));
  if (!resp.transport_ok() || (resp.status != 201 && resp.status != 200)) {
    // A broken connection, a server error or a 429 may come after the registry stored the
    // manifest (an answer lost on the way, then retries that met the same or were turned
    // away): what it holds now says whether the push happened, so that a push is not
    // reported failed while its tag is there.
    bool retried = !resp.transport_ok() || resp.status >= 500 || resp.status == 429;
    if (retried && HoldsManifest(repo, ref, DigestOf(bytes))) {
      Log("writing manifest " + ref + " to " + registry_ + "/" + repo + ": " +
          (resp.transport_ok() ? "HTTP " + std::to_string(resp.status) : resp.error) +
          ", but the registry holds it");
      return Ok();
    }
    return ErrorFromResponse(resp, "writing manifest " + ref + " to " + registry_ + "/" + repo);
  }
  return Ok();
}

bool RegistryClient::HoldsManifest(const std::string& repo, const std::string& ref,
                                   const std::string& digest) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.headers.push_back("Accept: " + std::string(media::kAcceptManifests));
  req.timeout_s = kSmallRequestTimeout;
  Result<HttpResponse> resp = Send(req, {"repository:" + repo + ":pull"});
  if (!resp.ok() || !resp->transport_ok() || resp->status != 200) return false;
  const std::string served = resp->Header("docker-content-digest");
  if (!served.empty()) return served == digest;
  if (IsSha256Digest(ref)) return ref == digest;   // addressed by its digest: it is there
  Result<RawManifest> m = GetManifest(repo, ref);  // no digest header: the bytes say
  return m.ok() && m->digest == digest;
}

Status RegistryClient::DeleteManifest(const std::string& repo, const std::string& ref) {
  HttpRequest req;
  req.method = "DELETE";
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":*"}));
  if (!resp.transport_ok() || (resp.status != 202 && resp.status != 200)) {
    return ErrorFromResponse(
        resp, "deleting " + registry_ + "/" + repo + (IsSha256Digest(ref) ? "@" : ":") + ref);
  }
  return Ok();
}

Status RegistryClient::GetBlob(const std::string& repo, const std::string& digest, int64_t offset,
                               int64_t size, const ByteSink& sink) {
  return GetBlobRange(repo, digest, offset, -1, size, sink);
}

Status RegistryClient::GetBlobRange(const std::string& repo, const std::string& digest,
                                    int64_t offset, int64_t length, int64_t size,
                                    const ByteSink& sink) {
  const std::string what = "reading blob " + digest + " from " + registry_ + "/" + repo;
  // [pos, limit) is what is still to come; limit is -1 when the size is unknown.
  const int64_t limit = length >= 0 ? offset + length : size;
  if (limit >= 0 && limit - offset <= kMaxBufferedBlobRange) {
    return GetSmallBlobRange(repo, digest, offset, limit, size, sink);
  }
  int64_t pos = offset;
  int64_t start = pos;  // where the current attempt began
  int64_t skip = -1;    // set at an attempt's first chunk: bytes to drop if Range was ignored
  Status sink_status = Ok();
  bool complete = false;
  HttpRequest req;
  req.url = "/v2/" + repo + "/blobs/" + digest;
  req.max_body = kMaxErrorBody;
  req.on_body = [&](long status, const char* data, size_t n) {
    if (skip < 0) skip = (status == 200) ? start : 0;
    if (skip > 0) {
      size_t drop = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(n)));
      data += drop;
      n -= drop;
      skip -= static_cast<int64_t>(drop);
      if (n == 0) return true;
    }
    if (limit >= 0 && pos + static_cast<int64_t>(n) > limit) {
      if (limit != size || status == 206) {
        // A server ignoring the end of our Range: take what we asked for and stop.
        n = static_cast<size_t>(limit - pos);
        complete = true;
      } else {
        sink_status = MakeError(EIO, what + ": registry sent more than the " +
                                         std::to_string(size) + " bytes the descriptor names");
        return false;
      }
    }
    if (n > 0) {
      if (options_.counters) options_.counters->blob_bytes += n;
      sink_status = sink(data, n);
      if (!sink_status.ok()) return false;
      pos += static_cast<int64_t>(n);
    }
    return !complete;
  };
  SendPolicy policy;
  // A broken transfer resumes from where it got to.
  policy.before_attempt = [&](HttpRequest& r) {
    if (pos > start) Log("resuming " + digest + " at byte " + std::to_string(pos));
    start = pos;
    skip = -1;
    if (pos > 0 || (limit >= 0 && limit != size)) {
      r.headers.push_back("Range: bytes=" + std::to_string(pos) + "-" +
                          (limit >= 0 ? std::to_string(limit - 1) : ""));
    }
  };
  policy.progress = [&] { return pos; };
  policy.retry_for = std::chrono::seconds(options_.blob_retry_seconds);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, policy));
  if (!sink_status.ok()) return sink_status;
  if (complete) return Ok();
  if (!resp.transport_ok() || (resp.status != 200 && resp.status != 206)) {
    return ErrorFromResponse(resp, what);
  }
  if (limit >= 0 && pos != limit) {
    return MakeError(EIO, what + ": short body (" + std::to_string(pos - offset) + " of " +
                              std::to_string(limit - offset) + " bytes)");
  }
  return Ok();
}

Status RegistryClient::GetSmallBlobRange(const std::string& repo, const std::string& digest,
                                         int64_t offset, int64_t limit, int64_t size,
                                         const ByteSink& sink) {
  const std::string what = "reading blob " + digest + " from " + registry_ + "/" + repo;
  HttpRequest req;
  req.url = "/v2/" + repo + "/blobs/" + digest;
  if (offset > 0 || limit != size) {
    req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-" +
                          std::to_string(limit - 1));
  }
  // A server that ignores Range sends the whole blob, which is no bigger than `size`.
  req.max_body = std::max<int64_t>(size, limit) + 1;
  req.timeout_s = kSmallRequestTimeout;
  SendPolicy policy;
  policy.retry_for = std::chrono::seconds(options_.blob_retry_seconds);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, policy));
  if (resp.body_too_large) {
    return MakeError(EIO, what + ": registry sent more than the " + std::to_string(size) +
                              " bytes the descriptor names");
  }
  if (!resp.transport_ok() || (resp.status != 200 && resp.status != 206)) {
    return ErrorFromResponse(resp, what);
  }
  std::string_view body = resp.body;
  if (resp.status == 200 && offset > 0) body.remove_prefix(std::min<size_t>(offset, body.size()));
  if (static_cast<int64_t>(body.size()) > limit - offset && (resp.status == 206 || limit != size)) {
    body = body.substr(0, static_cast<size_t>(limit - offset));
  }
  if (static_cast<int64_t>(body.size()) != limit - offset) {
    return MakeError(EIO, what + ": " + std::to_string(body.size()) + " bytes, not " +
                              std::to_string(limit - offset));
  }
  if (options_.counters) options_.counters->blob_bytes += body.size();
  return body.empty() ? Ok() : sink(body.data(), body.size());
}

Result<bool> RegistryClient::BlobExists(const std::string& repo, const std::string& digest) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = "/v2/" + repo + "/blobs/" + digest;
  req.timeout_s = kSmallRequestTimeout;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}));
  if (!resp.transport_ok()) return ErrorFromResponse(resp, "checking blob " + digest);
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  if (resp.status == 401 || resp.status == 403) return false;  // push will tell
  return ErrorFromResponse(resp, "checking blob " + digest + " in " + registry_ + "/" + repo);
}

Result<bool> RegistryClient::MountBlob(const std::string& repo, const std::string& digest,
                                       const std::string& from_repo) {
  HttpRequest req;
  req.method = "POST";
  req.url = std::string("/v2/" + repo + "/blobs/uploads/?mount=" + UrlEscape(digest) +
                        "&from=" + UrlEscape(from_repo));
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull,push",
                                                 "repository:" + from_repo + ":pull"}));
  if (!resp.transport_ok()) return ErrorFromResponse(resp, "mounting blob " + digest);
  if (resp.status == 201) return true;
  if (resp.status == 202) {
    // The registry opened an upload session instead; close it, the caller uploads.
    std::string location = resp.Header("location");
    if (!location.empty()) {
      HttpRequest del;
      del.method = "DELETE";
      del.url = ResolveLocation(resp.url, location);
      del.timeout_s = 30;
      (void)Send(del, {"repository:" + repo + ":pull,push"}, kSendOnce);
    }
    return false;
  }
  return ErrorFromResponse(resp, "mounting blob " + digest + " from " + from_repo);
}

Status RegistryClient::PutBlob(const std::string& repo, const UploadDigest& digest, int64_t size,
                               const std::function<size_t(char*, size_t)>& reader) {
  const std::vector<std::string> scopes = {"repository:" + repo + ":pull,push"};
  std::string what = "uploading blob " + digest.Describe() + " to " + registry_ + "/" + repo;
  if (size >= 0 && !digest.known()) {
    return MakeError(EINVAL, what + ": a digest known only at the end needs an unknown size");
  }
  HttpRequest start;
  start.method = "POST";
  start.url = "/v2/" + repo + "/blobs/uploads/";
  start.timeout_s = kSmallRequestTimeout;
  start.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse started, Send(start, scopes));
  if (!started.transport_ok() || started.status != 202) return ErrorFromResponse(started, what);
  std::string location = started.Header("location");
  if (location.empty()) return MakeError(EIO, what + ": registry gave no upload location");
  std::string url = ResolveLocation(started.url, location);
  const std::string origin = UrlOrigin(started.url);
  if (UrlOrigin(url) != origin) {
    return MakeError(EIO, what + ": upload location points at another host");
  }
  auto with_digest = [&](std::string u) {
    return u + (u.find('?') == std::string::npos ? "?" : "&") + "digest=" + UrlEscape(digest.Get());
  };
  HttpRequest put;
  put.method = "PUT";
  put.headers.push_back("Content-Type: application/octet-stream");
  put.max_body = kMaxErrorBody;
  if (size < 0) {
    // Size unknown until the writer is done: stream a chunked PATCH, then close with a PUT.
    HttpRequest patch;
    patch.method = "PATCH";
    patch.url = url;
    patch.headers.push_back("Content-Type: application/octet-stream");
    patch.body_reader = reader;
    patch.body_size = -1;
    patch.max_body = kMaxErrorBody;
    ASSIGN_OR_RETURN(HttpResponse patched, Send(patch, scopes, kSendOnce));
    if (!patched.transport_ok() || patched.status != 202) return ErrorFromResponse(patched, what);
    if (std::string next = patched.Header("location"); !next.empty()) {
      url = ResolveLocation(url, next);
      if (UrlOrigin(url) != origin)
        return MakeError(EIO, what + ": upload location points at another host");
    }
    put.url = with_digest(url);
    what = "uploading blob " + digest.Get() + " to " + registry_ + "/" + repo;
    put.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse done, Send(put, scopes));
    if (!done.transport_ok() || done.status != 201) return ErrorFromResponse(done, what);
    return Ok();
  }
  put.url = with_digest(url);
  put.body_reader = reader;
  put.body_size = size;
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, scopes, kSendOnce));
  if (!done.transport_ok() || done.status != 201) return ErrorFromResponse(done, what);
  return Ok();
}

Status RegistryClient::CheckLogin() {
  HttpRequest req;
  req.url = "/v2/";
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {}));
  if (!resp.transport_ok() || resp.status != 200) {
    return ErrorFromResponse(resp, "checking credentials with " + registry_);
  }
  return Ok();
}

Result<std::vector<std::string>> RegistryClient::ListTags(const std::string& repo) {
  std::vector<std::string> tags;
  std::string url = "/v2/" + repo + "/tags/list";
  for (int page = 0; page < kMaxPages && !url.empty(); ++page) {
    HttpRequest req;
    req.url = url;
    req.max_body = kMaxTagListPage;
    req.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}));
    std::string what = "listing tags of " + registry_ + "/" + repo;
    if (!resp.transport_ok() || resp.status != 200) return ErrorFromResponse(resp, what);
    auto page_tags = ParseTagListPage(resp.body);
    if (!page_tags) return MakeError(EIO, what + ": response is not JSON");
    tags.insert(tags.end(), page_tags->begin(), page_tags->end());
    std::string next = NextLinkTarget(resp.Headers("link"));
    url = next.empty() ? "" : ResolveLocation(url, next);
  }
  // A list cut short would pass for the whole one (sync would prune what it did not see).
  if (!url.empty()) return TooManyPages("the tag list of " + registry_ + "/" + repo);
  return tags;
}

Result<std::vector<std::string>> RegistryClient::Catalog(const std::function<bool()>& stop) {
  std::vector<std::string> repos;
  std::string url = "/v2/_catalog";
  for (int page = 0; page < kMaxPages && !url.empty(); ++page) {
    if (stop && stop()) {
      return MakeError(ECANCELED, "listing the catalog of " + registry_ + ": stopped");
    }
    HttpRequest req;
    req.url = url;
    req.max_body = kMaxTagListPage;
    req.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"registry:catalog:*"}));
    if (!resp.transport_ok() || resp.status != 200) {
      return ErrorFromResponse(resp, "listing the catalog of " + registry_);
    }
    if (auto names = ParseCatalogPage(resp.body)) {
      repos.insert(repos.end(), names->begin(), names->end());
    }
    std::string next = NextLinkTarget(resp.Headers("link"));
    url = next.empty() ? "" : ResolveLocation(url, next);
  }
  if (!url.empty()) return TooManyPages("the catalog of " + registry_);
  return repos;
}

}  // namespace regfs
