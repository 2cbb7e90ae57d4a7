#include "transports/http_client.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace regfs {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Transfer {
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
  t->response->headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
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
  if (t->request->body_reader) return t->request->body_reader(buf, len);
  const std::string& body = t->request->body;
  size_t take = std::min(len, body.size() - t->body_offset);
  std::memcpy(buf, body.data() + t->body_offset, take);
  t->body_offset += take;
  return take;
}

std::once_flag g_curl_init;

// libcurl's CURLOPT_SSL_CTX_FUNCTION: runs before each new TLS connection's handshake.
CURLcode ApplyTlsConfig(CURL*, void* ssl_ctx, void* config) {
  bool ok = static_cast<const TlsConfig*>(config)->Apply(static_cast<SSL_CTX*>(ssl_ctx));
  return ok ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

std::vector<std::string> HttpResponse::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

HttpClient::HttpClient() : HttpClient(Options{}) {}

HttpClient::HttpClient(Options options) : options_(std::move(options)) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpClient::~HttpClient() {
  for (CURL* h : idle_) curl_easy_cleanup(h);
}

CURL* HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::Release(CURL* handle) {
  curl_easy_reset(handle);  // keeps the handle's connection cache
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(handle);
}

HttpResponse HttpClient::Perform(const HttpRequest& req) {
  HttpResponse resp;
  CURL* h = Acquire();
  if (!h) {
    resp.curl_code = CURLE_OUT_OF_MEMORY;
    resp.curl_error = "cannot create a curl handle";
    return resp;
  }
  Transfer t{&req, &resp, h};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& hd : req.headers) headers = curl_slist_append(headers, hd.c_str());
  headers = curl_slist_append(headers, "Expect:");
  if (req.body_reader && req.body_size < 0) {
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  }

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  if (req.timeout_s > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, req.timeout_s);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, req.tls_verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, req.tls_verify ? 2L : 0L);
  if (req.tls) {
    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ApplyTlsConfig);
    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, const_cast<TlsConfig*>(req.tls.get()));
  }
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);

  bool has_body = req.body_reader || !req.body.empty();
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST" && !req.body_reader) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "PUT" || req.method == "PATCH" || (req.method == "POST" && has_body)) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    int64_t size = req.body_reader ? req.body_size : static_cast<int64_t>(req.body.size());
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (req.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  resp.curl_code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  if (resp.curl_code != CURLE_OK) {
    resp.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(resp.curl_code);
    if (resp.body_too_large) resp.curl_error = "response body over the size limit";
  }
  curl_slist_free_all(headers);
  Release(h);
  return resp;
}

bool IsRetryableCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool IsTlsHandshakeFailure(CURLcode code) { return code == CURLE_SSL_CONNECT_ERROR; }

}  // namespace regfs
