// DaemonClient: the few Docker Engine API calls regfs makes — `docker save`, `docker load` and
// `docker image inspect` — over the engine's unix socket or TCP, through the one HttpClient.
//
// Hosts are written as the docker CLI and skopeo take them: unix:///PATH; http://HOST:PORT
// (plain HTTP); tcp://HOST:PORT and https://HOST:PORT (TLS, verified unless tls_verify is
// false, as containers/image treats tcp://). The API version is negotiated once, on the first
// call, as the docker client does: the lower of the engine's (GET /_ping) and the one this
// client was written against.
//
// Every response body read into memory is bounded; the engine's errors are reported with its
// own message. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "transports/http/http_client.h"
#include "transports/util/byte_sink.h"
#include "transports/util/result.h"

namespace regfs {

inline constexpr char kDefaultDaemonHost[] = "unix:///var/run/docker.sock";

struct DaemonHost {
  std::string given;        // as written, for messages: "unix:///var/run/docker.sock"
  std::string base_url;     // "http://docker" for a unix socket, else "https://host:port"…
  std::string unix_socket;  // the socket's path for unix://, else empty
};

// EINVAL for a host that is none of the forms above.
Result<DaemonHost> ParseDaemonHost(std::string_view host);

// The engine to talk to: `flag` (--daemon-host) when given, else $DOCKER_HOST when set, else
// unix:///var/run/docker.sock.
std::string DaemonHostFrom(const std::string& flag);

class DaemonClient {
 public:
  DaemonClient(DaemonHost host, std::shared_ptr<HttpClient> http, bool tls_verify = true);

  const DaemonHost& host() const { return host_; }

  // Whether the engine answers (and the API version, negotiated now if it wasn't yet).
  Status Ping();

  // `docker save NAME`: streams the engine's tar of the one image NAME (a name:tag, a
  // name@digest or an image ID) to `sink`. ENOENT when the engine has no such image.
  Status SaveImage(const std::string& name, const ByteSink& sink);

  // `docker load`: sends the tar `reader` produces as a chunked body until it returns 0, and
  // reads the engine's progress messages for an error. A reader that returns
  // HttpRequest::kAbortUpload breaks the upload off before the tar ends: the engine sees a
  // truncated body and loads nothing.
  Status LoadImage(const std::function<size_t(char*, size_t)>& reader);

  // `docker image inspect NAME`: the engine's JSON. ENOENT when it has no such image.
  Result<std::string> InspectImage(const std::string& name);

 private:
  // "/v1.41": the API version prefix of every path, negotiated on first use.
  Result<std::string> ApiPrefix();
  HttpRequest Request(const std::string& method, const std::string& path) const;
  // The error of a failed response: a transport failure, or the engine's message.
  Error ResponseError(const HttpResponse& resp, const std::string& what) const;

  const DaemonHost host_;
  const std::shared_ptr<HttpClient> http_;
  const bool tls_verify_;
  std::mutex mu_;
  std::string api_prefix_;  // guarded by mu_; empty until negotiated
};

}  // namespace regfs
