#include "transports/daemon/daemon_client.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "transports/util/json_util.h"

namespace regfs {
namespace {

// The Engine API this client was written against (Docker 20.10); older engines are spoken to
// in their own version, as the docker client negotiates.
constexpr int kClientApiMajor = 1, kClientApiMinor = 41;
// What the docker client assumes of an engine whose /_ping names no version.
constexpr char kFallbackApiVersion[] = "1.24";
// Error bodies and `docker load`'s progress messages (quiet: one line per image loaded).
constexpr int64_t kMaxErrorBody = 64 << 10;
constexpr int64_t kMaxLoadResponse = 1 << 20;
// `docker image inspect` of one image; its config's labels and history can be long.
constexpr int64_t kMaxInspectBody = 4 << 20;
constexpr long kPingTimeoutS = 30;

// "1.41" → {1, 41}; false for anything else.
bool ParseApiVersion(std::string_view v, int* major, int* minor) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size() || v.size() > 12) {
    return false;
  }
  auto number = [](std::string_view s, int* out) {
    if (s.find_first_not_of("0123456789") != std::string_view::npos) return false;
    *out = std::stoi(std::string(s));
    return true;
  };
  return number(v.substr(0, dot), major) && number(v.substr(dot + 1), minor);
}

int ErrnoOfStatus(long status) {
  switch (status) {
    case 400:
      return EINVAL;
    case 401:
    case 403:
      return EACCES;
    case 404:
      return ENOENT;
    case 409:
      return EEXIST;
    default:
      return EIO;
  }
}

}  // namespace

Result<DaemonHost> ParseDaemonHost(std::string_view host) {
  auto invalid = [&](const std::string& why) {
    return MakeError(EINVAL, "invalid daemon host \"" + std::string(host) + "\": " + why +
                                 " (expected unix:///PATH, tcp://HOST:PORT, http://HOST:PORT "
                                 "or https://HOST:PORT)");
  };
  DaemonHost out;
  out.given = std::string(host);
  size_t scheme_end = host.find("://");
  if (scheme_end == std::string_view::npos) return invalid("no scheme");
  std::string_view scheme = host.substr(0, scheme_end);
  std::string_view rest = host.substr(scheme_end + 3);
  if (scheme == "unix") {
    if (rest.empty() || rest.front() != '/') return invalid("the socket path must be absolute");
    // sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
    if (rest.size() > 107) return invalid("the socket path is too long");
    out.unix_socket = std::string(rest);
    out.base_url = "http://docker";
    return out;
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return invalid("no host");
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return invalid("only a host and port may follow the scheme");
  }
  if (scheme == "http") {
    out.base_url = "http://" + std::string(rest);
  } else if (scheme == "tcp" || scheme == "https") {
    out.base_url = "https://" + std::string(rest);
  } else {
    return invalid("unsupported scheme \"" + std::string(scheme) + "\"");
  }
  return out;
}

std::string DaemonHostFrom(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("DOCKER_HOST");
  if (env && *env) return env;
  return kDefaultDaemonHost;
}

DaemonClient::DaemonClient(DaemonHost host, std::shared_ptr<HttpClient> http, bool tls_verify)
    : host_(std::move(host)), http_(std::move(http)), tls_verify_(tls_verify) {}

HttpRequest DaemonClient::Request(const std::string& method, const std::string& path) const {
  HttpRequest req;
  req.method = method;
  req.url = host_.base_url + path;
  req.unix_socket = host_.unix_socket;
  req.tls_verify = tls_verify_;
  req.max_body = kMaxErrorBody;
  return req;
}

Error DaemonClient::ResponseError(const HttpResponse& resp, const std::string& what) const {
  if (!resp.transport_ok()) {
    if (resp.failure == HttpFailure::kConnect || resp.failure == HttpFailure::kResolve) {
      return MakeError(EIO, "cannot connect to the Docker daemon at " + host_.given + ": " +
                                resp.error + ". Is the docker daemon running?");
    }
    // Also a transfer that broke after its status line: the status says nothing then.
    return MakeError(EIO, what + ": " + host_.given + ": " + resp.error);
  }
  // The engine's errors are JSON, {"message": "…"}; anything else is quoted as it came.
  std::string message;
  auto body = nlohmann::json::parse(resp.body, nullptr, false);
  message = JsonString(body, "message");
  if (message.empty()) {
    message = resp.body.substr(0, 512);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  if (message.empty()) message = "HTTP status " + std::to_string(resp.status);
  return MakeError(ErrnoOfStatus(resp.status), what + ": Error response from daemon: " + message);
}

Result<std::string> DaemonClient::ApiPrefix() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!api_prefix_.empty()) return api_prefix_;
  HttpRequest req = Request("GET", "/_ping");
  req.timeout_s = kPingTimeoutS;
  HttpResponse resp = http_->Perform(req);
  if (!resp.transport_ok() || resp.status / 100 != 2) {
    return ResponseError(resp, "pinging the Docker daemon");
  }
  std::string version = resp.Header("api-version");
  if (version.empty()) version = kFallbackApiVersion;
  int major = 0, minor = 0;
  if (!ParseApiVersion(version, &major, &minor)) {
    return MakeError(EIO, "the Docker daemon at " + host_.given +
                              " answered with an unreadable API version \"" + version + "\"");
  }
  if (major > kClientApiMajor || (major == kClientApiMajor && minor > kClientApiMinor)) {
    major = kClientApiMajor;
    minor = kClientApiMinor;
  }
  api_prefix_ = "/v" + std::to_string(major) + "." + std::to_string(minor);
  return api_prefix_;
}

Status DaemonClient::Ping() {
  RETURN_IF_ERROR(ApiPrefix());
  return Ok();
}

Status DaemonClient::SaveImage(const std::string& name, const ByteSink& sink) {
  ASSIGN_OR_RETURN(std::string prefix, ApiPrefix());
  HttpRequest req = Request("GET", prefix + "/images/get?names=" + UrlEscape(name));
  Status sunk = Ok();
  req.on_body = [&](long, const char* data, size_t n) {
    sunk = sink(data, n);
    return sunk.ok();
  };
  HttpResponse resp = http_->Perform(req);
  if (!sunk.ok()) return sunk;
  const std::string what = "saving " + name + " from the Docker daemon";
  if (!resp.transport_ok() || resp.status / 100 != 2) return ResponseError(resp, what);
  return Ok();
}

Status DaemonClient::LoadImage(const std::function<size_t(char*, size_t)>& reader) {
  ASSIGN_OR_RETURN(std::string prefix, ApiPrefix());
  HttpRequest req = Request("POST", prefix + "/images/load?quiet=1");
  req.headers.push_back("Content-Type: application/x-tar");
  req.body_reader = reader;
  req.body_size = -1;  // chunked: the tar's size is known only at its end
  req.max_body = kMaxLoadResponse;
  HttpResponse resp = http_->Perform(req);
  const std::string what = "loading the image into the Docker daemon";
  if (!resp.transport_ok() || resp.status / 100 != 2) return ResponseError(resp, what);
  // The answer is a stream of JSON messages, one a line; a failure after the status line is
  // one with an errorDetail (the docker CLI's jsonmessage).
  size_t start = 0;
  while (start < resp.body.size()) {
    size_t end = resp.body.find('\n', start);
    if (end == std::string::npos) end = resp.body.size();
    std::string_view line(resp.body.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto msg = nlohmann::json::parse(line, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
      return MakeError(EIO, what + ": unreadable progress message from the daemon: " +
                                std::string(line.substr(0, 200)));
    }
    auto detail = msg.find("errorDetail");
    if (detail != msg.end()) {
      std::string message = JsonString(*detail, "message");
      if (message.empty()) message = JsonString(msg, "error");
      return MakeError(EIO, what + ": the daemon reported: " + message);
    }
    if (std::string error = JsonString(msg, "error"); !error.empty()) {
      return MakeError(EIO, what + ": the daemon reported: " + error);
    }
  }
  return Ok();
}

Result<std::string> DaemonClient::InspectImage(const std::string& name) {
  ASSIGN_OR_RETURN(std::string prefix, ApiPrefix());
  HttpRequest req = Request("GET", prefix + "/images/" + UrlEscape(name) + "/json");
  req.max_body = kMaxInspectBody;
  HttpResponse resp = http_->Perform(req);
  if (resp.body_too_large) {
    return MakeError(EFBIG, "inspecting " + name + " in the Docker daemon: the answer is over " +
                                std::to_string(kMaxInspectBody) + " bytes");
  }
  if (!resp.transport_ok() || resp.status / 100 != 2) {
    return ResponseError(resp, "inspecting " + name + " in the Docker daemon");
  }
  return std::move(resp.body);
}

}  // namespace regfs
