#include "transports/registry_client.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "transports/base64.h"
#include "transports/digest.h"
#include "transports/image_reference.h"
#include "transports/json_util.h"
#include "transports/manifest.h"

namespace regfs {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kMaxTokenResponse = 1 << 20;
constexpr int64_t kMaxErrorBody = 64 << 10;
constexpr int64_t kMaxTagListPage = 8 << 20;
constexpr long kSmallRequestTimeout = 120;
constexpr int kMaxRedirects = 5;
constexpr int kMaxPages = 10000;

std::string UrlEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

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

// The "next" target of a Link header: `</v2/_catalog?last=x&n=100>; rel="next"`.
std::string NextLink(const HttpResponse& resp) {
  for (const std::string& link : resp.Headers("link")) {
    if (link.find("rel=\"next\"") == std::string::npos &&
        link.find("rel=next") == std::string::npos) {
      continue;
    }
    size_t open = link.find('<');
    size_t close = link.find('>', open);
    if (open != std::string::npos && close != std::string::npos) {
      return link.substr(open + 1, close - open - 1);
    }
  }
  return {};
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

std::string UrlOrigin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  size_t end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

RegistryClient::RegistryClient(std::string registry, RegistryOptions options,
                               std::shared_ptr<HttpClient> http)
    : registry_(std::move(registry)),
      options_(std::move(options)),
      http_(std::move(http)),
      tls_verify_(options_.tls_verify && (options_.tls_verify_set || !options_.registries_conf ||
                                          !options_.registries_conf->IsInsecure(registry_))) {}

HttpResponse RegistryClient::Perform(const HttpRequest& req) {
  if (options_.counters) ++options_.counters->requests;
  return http_->Perform(req);
}

void RegistryClient::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::string RegistryClient::Url(const std::string& path) const { return origin_ + path; }

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
  return MakeError(ErrnoForStatus(resp.status), what + ": " + text);
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

// One GET /v2/ against `origin`, retried for 429/5xx and resets.
HttpResponse RegistryClient::Ping(const std::string& origin,
                                  const std::shared_ptr<const TlsConfig>& tls) {
  HttpResponse resp;
  std::string alert;  // the server's TLS alert, clearer than what a retry may end with
  for (int attempt = 0;; ++attempt) {
    HttpRequest req;
    req.url = origin + "/v2/";
    req.tls_verify = tls_verify_;
    req.tls = tls;
    req.timeout_s = 30;
    req.max_body = kMaxErrorBody;
    resp = Perform(req);
    Log("GET " + req.url + " -> " +
        (resp.transport_ok() ? std::to_string(resp.status) : resp.error));
    if (!resp.transport_ok() && IsTlsAlert(resp.error)) alert = resp.error;
    bool retry = (resp.transport_ok() && IsRetryableStatus(resp.status)) ||
                 (!resp.transport_ok() && IsRetryable(resp.failure));
    if (!retry || attempt >= options_.retry_times) {
      if (!resp.transport_ok() && !alert.empty()) resp.error = alert;
      return resp;
    }
    std::this_thread::sleep_for(Backoff(attempt, &resp));
  }
}

Status RegistryClient::EnsurePinged() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pinged_) return Ok();
  }
  // One ping at a time: the threads that wait take its result (a failure for a moment, so
  // that a dead registry is not pinged once per waiting thread, one timeout after another).
  std::lock_guard<std::mutex> ping_lock(ping_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pinged_) return Ok();
    if (ping_error_ &&
        std::chrono::steady_clock::now() - ping_failed_at_ < std::chrono::seconds(1)) {
      return *ping_error_;
    }
  }
  Status pinged = PingOnce();
  std::lock_guard<std::mutex> lock(mu_);
  if (pinged.ok()) {
    ping_error_.reset();
  } else {
    ping_error_ = pinged.error();
    ping_failed_at_ = std::chrono::steady_clock::now();
  }
  return pinged;
}

bool RegistryClient::ConfirmPlainHttp(const HttpResponse& resp) {
  bool plain = resp.transport_ok() ? resp.status != 400
                                   : resp.failure == HttpFailure::kConnect;  // nobody there
  std::lock_guard<std::mutex> lock(mu_);
  if (plain && resp.transport_ok()) unconfirmed_ = false;
  return plain;
}

Status RegistryClient::Repinged() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unconfirmed_) {  // the first thread to see it: the next EnsurePinged() pings for real
      unconfirmed_ = false;
      pinged_ = false;
      tried_plain_ = true;
    }
  }
  return EnsurePinged();  // one ping; the other threads share its result
}

Status RegistryClient::PingOnce() {
  std::string host = registry_ == "docker.io" ? "registry-1.docker.io" : registry_;
  auto loaded = LoadTlsConfigFor(options_.cert_dir, registry_);
  if (!loaded.ok()) return Annotate(loaded.error(), "TLS certificates for " + registry_);
  const std::shared_ptr<const TlsConfig> tls = *loaded;
  auto is_registry = [](const HttpResponse& r) {
    return r.transport_ok() && (r.status == 200 || r.status == 401);
  };
  std::string origin = "https://" + host;
  HttpResponse resp;
  bool try_plain = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    try_plain = IsLoopbackHost(registry_) && !tried_plain_;
  }
  if (try_plain) {
    // A loopback registry is first taken to speak plain HTTP, and the first real request
    // tells (Send): no request is spent on /v2/. When its answer leaves doubt (no HTTP, a 400
    // as a TLS server gives a plain request), the registry is pinged below.
    std::lock_guard<std::mutex> lock(mu_);
    origin_ = "http://" + host;
    tls_ = tls;
    pinged_ = true;
    unconfirmed_ = true;
    return Ok();
  }
  if (IsLoopbackHost(registry_)) {
    // A loopback registry that answers /v2/ in plain HTTP is used so; a TLS server can't
    // answer a plain request with a registry's 200 or 401, so it is then tried with TLS.
    resp = Ping("http://" + host, tls);
    if (is_registry(resp)) origin = "http://" + host;
  }
  if (origin.rfind("https://", 0) == 0) {
    resp = Ping(origin, tls);
    if (!resp.transport_ok() && resp.failure == HttpFailure::kTlsHandshake && !tls_verify_) {
      origin = "http://" + host;  // insecure: plain HTTP is allowed
      resp = Ping(origin, tls);
    }
  }
  if (!is_registry(resp)) {
    Error e = ErrorFromResponse(resp, "pinging registry " + registry_);
    e.message += TlsFailureHint(resp, tls);
    return e;
  }
  Learn(resp);
  std::lock_guard<std::mutex> lock(mu_);
  origin_ = origin;
  tls_ = tls;
  pinged_ = true;
  return Ok();
}

Result<std::optional<Credentials>> RegistryClient::CredentialsFor(const std::string& repo) {
  if (options_.creds) return options_.creds;
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

Result<std::string> RegistryClient::FetchToken(const Challenge& bearer,
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
                        origin_.rfind("http://", 0) == 0 && IsLoopbackHost(registry_))) {
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
  req.tls = tls_;
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
  json j = json::parse(resp.body, nullptr, false);
  if (!j.is_object()) return MakeError(EACCES, "token response is not JSON");
  std::string token = JsonString(j, "token");
  if (token.empty()) token = JsonString(j, "access_token");
  if (token.empty()) return MakeError(EACCES, "token response holds no token");
  int64_t expires_in = JsonInt(j, "expires_in").value_or(60);
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.Put(ScopeKey(scopes), token, expires_in, std::chrono::steady_clock::now());
  return token;
}

Result<std::string> RegistryClient::AuthorizationFor(const std::vector<std::string>& scopes) {
  std::optional<Challenge> challenge;
  {
    std::lock_guard<std::mutex> lock(mu_);
    challenge = challenge_;
  }
  if (!challenge) return std::string();
  // Scopes look like "repository:NAME:ACTIONS"; credentials come from the first repository.
  std::string repo;
  if (!scopes.empty()) {
    size_t a = scopes[0].find(':'), b = scopes[0].rfind(':');
    if (a != std::string::npos && b > a) repo = scopes[0].substr(a + 1, b - a - 1);
  }
  ASSIGN_OR_RETURN(std::optional<Credentials> creds, CredentialsFor(repo));
  if (challenge->scheme == "basic") {
    if (!creds || creds->username.empty()) return std::string();
    if (origin_.rfind("http://", 0) == 0 && !IsLoopbackHost(registry_)) {
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
  ASSIGN_OR_RETURN(std::string token, FetchToken(*challenge, scopes, creds));
  return "Bearer " + token;
}

Result<HttpResponse> RegistryClient::Send(HttpRequest req, const std::vector<std::string>& scopes,
                                          Retry retry) {
  RETURN_IF_ERROR(EnsurePinged());
  if (!req.url.empty() && req.url.front() == '/') req.url = origin_ + req.url;
  req.tls_verify = tls_verify_;
  req.tls = tls_;
  const std::vector<std::string> base_headers = req.headers;
  bool auth_retried = false;
  bool challenge_learned = false;
  int redirects = 0;
  for (int attempt = 0;;) {
    req.headers = base_headers;
    // Credentials go only to the registry itself, never to a host it redirects us to.
    if (UrlOrigin(req.url) == origin_) {
      ASSIGN_OR_RETURN(std::string auth, AuthorizationFor(scopes));
      if (!auth.empty()) req.headers.push_back("Authorization: " + auth);
    }
    const std::string sent_origin = UrlOrigin(req.url);
    HttpResponse resp = Perform(req);
    Log(req.method + " " + req.url + " -> " +
        (resp.transport_ok() ? std::to_string(resp.status) : resp.error));
    if (sent_origin.rfind("http://", 0) == 0 && !ConfirmPlainHttp(resp)) {
      // A loopback registry taken for plain HTTP that is not: ping it properly (once, whichever
      // thread notices first) and send the request again to where it is.
      if (req.body_reader) return MakeError(EIO, registry_ + " does not speak plain HTTP");
      RETURN_IF_ERROR(Repinged());
      std::lock_guard<std::mutex> lock(mu_);
      if (origin_ != sent_origin) {
        req.url = origin_ + req.url.substr(sent_origin.size());
        req.tls = tls_;
        continue;
      }
    }
    if (!resp.transport_ok()) {
      if (retry == Retry::kAll && IsRetryable(resp.failure) && attempt < options_.retry_times) {
        std::this_thread::sleep_for(Backoff(attempt++, nullptr));
        continue;
      }
      return resp;  // the caller reports or resumes
    }
    bool sent_auth = false;
    for (const auto& h : req.headers) sent_auth |= h.rfind("Authorization:", 0) == 0;
    if (resp.status == 401 && !sent_auth && !challenge_learned && retry != Retry::kNone &&
        UrlOrigin(req.url) == origin_) {
      // The first request to a registry not pinged: its challenge says how to authenticate.
      challenge_learned = true;
      Learn(resp);
      continue;
    }
    if (resp.status == 401 && !auth_retried && retry != Retry::kNone &&
        UrlOrigin(req.url) == origin_) {
      // The token may have expired or lacked a scope (insufficient_scope): learn and retry once.
      auth_retried = true;
      Learn(resp);
      std::lock_guard<std::mutex> lock(mu_);
      tokens_.Erase(ScopeKey(scopes));
      continue;
    }
    if (IsRetryableStatus(resp.status) && retry != Retry::kNone && attempt < options_.retry_times) {
      std::this_thread::sleep_for(Backoff(attempt++, &resp));
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
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, Retry::kAll));
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
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, Retry::kAll));
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
  ASSIGN_OR_RETURN(HttpResponse resp,
                   Send(req, {"repository:" + repo + ":pull,push"}, Retry::kAll));
  if (!resp.transport_ok() || (resp.status != 201 && resp.status != 200)) {
    return ErrorFromResponse(resp, "writing manifest " + ref + " to " + registry_ + "/" + repo);
  }
  return Ok();
}

Status RegistryClient::DeleteManifest(const std::string& repo, const std::string& ref) {
  HttpRequest req;
  req.method = "DELETE";
  req.url = "/v2/" + repo + "/manifests/" + ref;
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":*"}, Retry::kAll));
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
  int64_t pos = offset;
  int failures = 0;
  while (true) {
    HttpRequest req;
    req.url = "/v2/" + repo + "/blobs/" + digest;
    if (pos > 0 || (limit >= 0 && limit != size)) {
      req.headers.push_back("Range: bytes=" + std::to_string(pos) + "-" +
                            (limit >= 0 ? std::to_string(limit - 1) : ""));
    }
    req.max_body = kMaxErrorBody;
    Status sink_status = Ok();
    bool complete = false;
    const int64_t start = pos;
    int64_t skip = -1;  // set at the first chunk: bytes to drop if the server ignored Range
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
    ASSIGN_OR_RETURN(HttpResponse resp,
                     Send(req, {"repository:" + repo + ":pull"}, Retry::kStatusOnly));
    if (!sink_status.ok()) return sink_status;
    if (complete) return Ok();
    if (resp.transport_ok()) {
      if (resp.status == 200 || resp.status == 206) {
        if (limit < 0 || pos == limit) return Ok();
        return MakeError(EIO, what + ": short body (" + std::to_string(pos - offset) + " of " +
                                  std::to_string(limit - offset) + " bytes)");
      }
      return ErrorFromResponse(resp, what);
    }
    if (!IsRetryable(resp.failure)) return ErrorFromResponse(resp, what);
    // Broken mid-body: resume from where we are. Progress resets the failure count.
    failures = pos > start ? 0 : failures + 1;
    if (failures > options_.retry_times) return ErrorFromResponse(resp, what);
    Log("resuming " + digest + " at byte " + std::to_string(pos));
    std::this_thread::sleep_for(Backoff(failures, nullptr));
  }
}

Result<bool> RegistryClient::BlobExists(const std::string& repo, const std::string& digest) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = "/v2/" + repo + "/blobs/" + digest;
  req.timeout_s = kSmallRequestTimeout;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, Retry::kAll));
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
  ASSIGN_OR_RETURN(
      HttpResponse resp,
      Send(req, {"repository:" + repo + ":pull,push", "repository:" + from_repo + ":pull"},
           Retry::kAll));
  if (!resp.transport_ok()) return ErrorFromResponse(resp, "mounting blob " + digest);
  if (resp.status == 201) return true;
  if (resp.status == 202) {
    // The registry opened an upload session instead; close it, the caller uploads.
    std::string location = resp.Header("location");
    if (!location.empty()) {
      HttpRequest del;
      del.method = "DELETE";
      del.url = ResolveLocation(Url(req.url), location);
      del.timeout_s = 30;
      (void)Send(del, {"repository:" + repo + ":pull,push"}, Retry::kNone);
    }
    return false;
  }
  return ErrorFromResponse(resp, "mounting blob " + digest + " from " + from_repo);
}

Status RegistryClient::PutBlob(const std::string& repo, const std::string& digest, int64_t size,
                               const std::function<size_t(char*, size_t)>& reader) {
  const std::vector<std::string> scopes = {"repository:" + repo + ":pull,push"};
  const std::string what = "uploading blob " + digest + " to " + registry_ + "/" + repo;
  HttpRequest start;
  start.method = "POST";
  start.url = "/v2/" + repo + "/blobs/uploads/";
  start.timeout_s = kSmallRequestTimeout;
  start.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse started, Send(start, scopes, Retry::kAll));
  if (!started.transport_ok() || started.status != 202) return ErrorFromResponse(started, what);
  std::string location = started.Header("location");
  if (location.empty()) return MakeError(EIO, what + ": registry gave no upload location");
  std::string url = ResolveLocation(Url(start.url), location);
  if (UrlOrigin(url) != origin_) {
    return MakeError(EIO, what + ": upload location points at another host");
  }
  auto with_digest = [&](std::string u) {
    return u + (u.find('?') == std::string::npos ? "?" : "&") + "digest=" + UrlEscape(digest);
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
    ASSIGN_OR_RETURN(HttpResponse patched, Send(patch, scopes, Retry::kNone));
    if (!patched.transport_ok() || patched.status != 202) return ErrorFromResponse(patched, what);
    if (std::string next = patched.Header("location"); !next.empty()) {
      url = ResolveLocation(url, next);
      if (UrlOrigin(url) != origin_)
        return MakeError(EIO, what + ": upload location points at another host");
    }
    put.url = with_digest(url);
    put.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse done, Send(put, scopes, Retry::kAll));
    if (!done.transport_ok() || done.status != 201) return ErrorFromResponse(done, what);
    return Ok();
  }
  put.url = with_digest(url);
  put.body_reader = reader;
  put.body_size = size;
  ASSIGN_OR_RETURN(HttpResponse done, Send(put, scopes, Retry::kNone));
  if (!done.transport_ok() || done.status != 201) return ErrorFromResponse(done, what);
  return Ok();
}

Status RegistryClient::CheckLogin() {
  HttpRequest req;
  req.url = "/v2/";
  req.timeout_s = kSmallRequestTimeout;
  req.max_body = kMaxErrorBody;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {}, Retry::kAll));
  if (!resp.transport_ok() || resp.status != 200) {
    return ErrorFromResponse(resp, "checking credentials with " + registry_);
  }
  return Ok();
}

Result<std::vector<std::string>> RegistryClient::ListTags(const std::string& repo) {
  std::vector<std::string> tags;
  RETURN_IF_ERROR(EnsurePinged());
  std::string url = Url("/v2/" + repo + "/tags/list");
  for (int page = 0; page < kMaxPages && !url.empty(); ++page) {
    HttpRequest req;
    req.url = url;
    req.max_body = kMaxTagListPage;
    req.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"repository:" + repo + ":pull"}, Retry::kAll));
    std::string what = "listing tags of " + registry_ + "/" + repo;
    if (!resp.transport_ok() || resp.status != 200) return ErrorFromResponse(resp, what);
    json j = json::parse(resp.body, nullptr, false);
    if (!j.is_object()) return MakeError(EIO, what + ": response is not JSON");
    if (j.contains("tags") && j["tags"].is_array()) {
      for (const auto& t : j["tags"]) {
        if (t.is_string()) tags.push_back(t.get<std::string>());
      }
    }
    std::string next = NextLink(resp);
    url = next.empty() ? "" : ResolveLocation(url, next);
  }
  return tags;
}

Result<std::vector<std::string>> RegistryClient::Catalog() {
  std::vector<std::string> repos;
  RETURN_IF_ERROR(EnsurePinged());
  std::string url = Url("/v2/_catalog");
  for (int page = 0; page < kMaxPages && !url.empty(); ++page) {
    HttpRequest req;
    req.url = url;
    req.max_body = kMaxTagListPage;
    req.timeout_s = kSmallRequestTimeout;
    ASSIGN_OR_RETURN(HttpResponse resp, Send(req, {"registry:catalog:*"}, Retry::kAll));
    if (!resp.transport_ok() || resp.status != 200) {
      return ErrorFromResponse(resp, "listing the catalog of " + registry_);
    }
    json j = json::parse(resp.body, nullptr, false);
    if (j.is_object() && j.contains("repositories") && j["repositories"].is_array()) {
      for (const auto& r : j["repositories"]) {
        if (r.is_string()) repos.push_back(r.get<std::string>());
      }
    }
    std::string next = NextLink(resp);
    url = next.empty() ? "" : ResolveLocation(url, next);
  }
  return repos;
}

}  // namespace regfs
