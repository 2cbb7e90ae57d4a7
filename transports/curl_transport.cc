#include "transports/curl_transport.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>

namespace regfs {

// The libcurl functions regfs calls, resolved from the library loaded at run time.
struct CurlApi {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  void (*easy_reset)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  CURLcode (*easy_perform)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

namespace {

// Loads libcurl once for the process: the library stays loaded and the table never changes.
const Result<CurlApi>& LoadCurl() {
  static const Result<CurlApi> loaded = []() -> Result<CurlApi> {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      return MakeError(ENOSYS, std::string("cannot load libcurl for HTTPS: ") +
                                   (why ? why : "libcurl.so.4 not found"));
    }
    CurlApi api{};
    bool ok = true;
    auto bind = [&](auto& fn, const char* name) {
      void* sym = dlsym(lib, name);
      ok &= sym != nullptr;
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(sym);
    };
    bind(api.global_init, "curl_global_init");
    bind(api.easy_init, "curl_easy_init");
    bind(api.easy_cleanup, "curl_easy_cleanup");
    bind(api.easy_reset, "curl_easy_reset");
    bind(api.easy_setopt, "curl_easy_setopt");
    bind(api.easy_getinfo, "curl_easy_getinfo");
    bind(api.easy_perform, "curl_easy_perform");
    bind(api.easy_strerror, "curl_easy_strerror");
    bind(api.slist_append, "curl_slist_append");
    bind(api.slist_free_all, "curl_slist_free_all");
    if (!ok) return MakeError(ENOSYS, "cannot load libcurl for HTTPS: a function is missing");
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      return MakeError(ENOSYS, "cannot initialise libcurl");
    }
    return api;
  }();
  return loaded;
}

HttpFailure FailureOf(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return HttpFailure::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return HttpFailure::kResolve;
    case CURLE_COULDNT_CONNECT:
      return HttpFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return HttpFailure::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return HttpFailure::kReset;
    case CURLE_PARTIAL_FILE:
      return HttpFailure::kPartial;
    case CURLE_SSL_CONNECT_ERROR:
      return HttpFailure::kTlsHandshake;
    case CURLE_PEER_FAILED_VERIFICATION:
      return HttpFailure::kTlsVerify;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return HttpFailure::kProtocol;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      return HttpFailure::kAborted;
    default:
      return HttpFailure::kOther;
  }
}

struct Transfer {
  const CurlApi* api;
  const HttpRequest* request;
  HttpResponse* response;
  CURL* handle;
  size_t body_offset = 0;  // for string bodies sent by the read callback
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    t->response->headers.clear();  // a new response (after 100 Continue, say)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  t->response->headers.emplace_back(LowerHeaderName(line.substr(0, colon)), std::string(value));
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = 0;
  t->api->easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300 && t->request->on_body) {
    if (!t->request->on_body(status, data, len)) return 0;  // aborts with CURLE_WRITE_ERROR
    t->response->streamed += static_cast<int64_t>(len);
    return len;
  }
  if (static_cast<int64_t>(t->response->body.size() + len) > t->request->max_body) {
    t->response->body_too_large = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->request->body_reader) {
    size_t got = t->request->body_reader(buf, len);
    return got == HttpRequest::kAbortUpload ? CURL_READFUNC_ABORT : got;
  }
  const std::string& body = t->request->body;
  size_t take = std::min(len, body.size() - t->body_offset);
  std::memcpy(buf, body.data() + t->body_offset, take);
  t->body_offset += take;
  return take;
}

// libcurl's CURLOPT_SSL_CTX_FUNCTION: runs before each new TLS connection's handshake.
CURLcode ApplyTlsConfig(CURL*, void* ssl_ctx, void* config) {
  bool ok = static_cast<const TlsConfig*>(config)->Apply(static_cast<SSL_CTX*>(ssl_ctx));
  return ok ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

}  // namespace

Result<std::unique_ptr<CurlTransport>> CurlTransport::Create(HttpOptions options) {
  const Result<CurlApi>& api = LoadCurl();
  if (!api.ok()) return api.error();
  return std::unique_ptr<CurlTransport>(new CurlTransport(*api, std::move(options)));
}

CurlTransport::~CurlTransport() {
  for (void* h : idle_) api_.easy_cleanup(static_cast<CURL*>(h));
}

void* CurlTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return api_.easy_init();
}

void CurlTransport::Release(void* handle) {
  api_.easy_reset(static_cast<CURL*>(handle));  // keeps the handle's connection cache
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(handle);
}

HttpResponse CurlTransport::Perform(const HttpRequest& req) {
  const CurlApi& api = api_;
  HttpResponse resp;
  auto* h = static_cast<CURL*>(Acquire());
  if (!h) {
    resp.failure = HttpFailure::kOther;
    resp.error = "cannot create a curl handle";
    return resp;
  }
  Transfer t{&api, &req, &resp, h};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& hd : req.headers) headers = api.slist_append(headers, hd.c_str());
  headers = api.slist_append(headers, "Expect:");
  if (req.body_reader && req.body_size < 0) {
    headers = api.slist_append(headers, "Transfer-Encoding: chunked");
  }

  // Through a function pointer, curl_easy_setopt has no type checks: longs are passed as long,
  // sizes as curl_off_t, callbacks as their exact function types.
  api.easy_setopt(h, CURLOPT_URL, req.url.c_str());
  api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  api.easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  api.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  api.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  api.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  api.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  api.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  if (req.timeout_s > 0) api.easy_setopt(h, CURLOPT_TIMEOUT, req.timeout_s);
  api.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, req.tls_verify ? 1L : 0L);
  api.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, req.tls_verify ? 2L : 0L);
  if (req.tls) {
    curl_ssl_ctx_callback apply = ApplyTlsConfig;
    api.easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, apply);
    api.easy_setopt(h, CURLOPT_SSL_CTX_DATA, const_cast<TlsConfig*>(req.tls.get()));
  }
  api.easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  api.easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_write_callback on_header = OnHeader, on_write = OnWrite;
  api.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  api.easy_setopt(h, CURLOPT_HEADERDATA, &t);
  api.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  api.easy_setopt(h, CURLOPT_WRITEDATA, &t);

  bool has_body = req.body_reader || !req.body.empty();
  if (req.method == "HEAD") {
    api.easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST" && !req.body_reader) {
    api.easy_setopt(h, CURLOPT_POST, 1L);
    api.easy_setopt(h, CURLOPT_POSTFIELDS, req.body.c_str());
    api.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "PUT" || req.method == "PATCH" || (req.method == "POST" && has_body)) {
    curl_read_callback on_read = OnRead;
    api.easy_setopt(h, CURLOPT_UPLOAD, 1L);
    api.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    api.easy_setopt(h, CURLOPT_READDATA, &t);
    int64_t size = req.body_reader ? req.body_size : static_cast<int64_t>(req.body.size());
    api.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (req.method != "PUT") api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method != "GET") {
    api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  CURLcode code = api.easy_perform(h);
  api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  resp.failure = FailureOf(code);
  if (code != CURLE_OK) {
    resp.error = errbuf[0] ? errbuf : api.easy_strerror(code);
    if (resp.body_too_large) resp.error = "response body over the size limit";
  }
  api.slist_free_all(headers);
  Release(h);
  return resp;
}

}  // namespace regfs
