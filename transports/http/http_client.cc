#include "transports/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace regfs {
namespace {

// Idle easy handles kept for streamed transfers; more are closed as they come back.
constexpr size_t kMaxIdleHandles = 16;

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
    // A kept connection that broke before any answer: libcurl tries the request again on a
    // new one, and gives this when it cannot rewind the request body for that.
    case CURLE_SEND_FAIL_REWIND:
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

// libcurl's global state, set up once per process before the first handle.
void InitCurlOnce() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

struct CurlEasyFree {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyFree>;

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;

// DNS answers and TLS sessions shared by every handle of a client, so that a new connection
// resumes its TLS session instead of a full handshake.
class CurlShare {
 public:
  CurlShare() : share_(curl_share_init()) {
    if (!share_) return;
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlShare::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlShare::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~CurlShare() {
    if (share_) curl_share_cleanup(share_);
  }
  CurlShare(const CurlShare&) = delete;
  CurlShare& operator=(const CurlShare&) = delete;

  CURLSH* get() const { return share_; }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<CurlShare*>(self)->MutexFor(data).lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<CurlShare*>(self)->MutexFor(data).unlock();
  }
  std::mutex& MutexFor(curl_lock_data data) {
    return locks_[static_cast<size_t>(data) % std::size(locks_)];
  }

  CURLSH* share_;
  std::mutex locks_[CURL_LOCK_DATA_LAST];  // one per kind of shared data
};

// One request's state, seen by libcurl's callbacks.
struct Transfer {
  Transfer(const HttpRequest* req, HttpResponse* resp, CURL* h)
      : request(req), response(resp), handle(h) {}
  const HttpRequest* request;
  HttpResponse* response;
  CURL* handle;
  size_t body_offset = 0;  // for string bodies sent by the read callback
  char errbuf[CURL_ERROR_SIZE] = {0};
  SlistPtr headers;
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

// libcurl's CURLOPT_SSL_CTX_FUNCTION: runs before each new TLS connection's handshake, after
// libcurl set the context up (with no CA file or directory of its own: see Configure()).
CURLcode ApplyTls(CURL*, void* ssl_ctx, void* config) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  bool ok = config ? static_cast<const TlsConfig*>(config)->Apply(ctx) : ApplySystemTrust(ctx);
  return ok ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

// Whether a request can run on the shared multi handle: its callbacks would run on the
// multi's thread, so only requests without any.
bool IsBuffered(const HttpRequest& req) { return !req.on_body && !req.body_reader; }

// Sets every option of one request on `h` (a fresh or reset handle).
void Configure(CURL* h, Transfer* t, const HttpOptions& options, CURLSH* share) {
  const HttpRequest& req = *t->request;
  curl_slist* headers = nullptr;
  for (const auto& hd : req.headers) headers = curl_slist_append(headers, hd.c_str());
  headers = curl_slist_append(headers, "Expect:");
  if (req.body_reader && req.body_size < 0) {
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  }
  t->headers.reset(headers);

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, options.min_rate);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  if (req.timeout_s > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, req.timeout_s);
  if (share) curl_easy_setopt(h, CURLOPT_SHARE, share);
  if (!req.unix_socket.empty()) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str());
  }
  // Trust comes from ApplyTls alone: libcurl must not parse its default CA bundle for every
  // new connection.
  curl_easy_setopt(h, CURLOPT_CAINFO, nullptr);
  curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, req.tls_verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, req.tls_verify ? 2L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, &ApplyTls);
  curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, const_cast<TlsConfig*>(req.tls.get()));
  if (IsBuffered(req)) {
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);  // wait to multiplex rather than connect anew
  } else {
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
  }
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, t);

  bool has_body = req.body_reader || !req.body.empty();
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST" && !req.body_reader) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "PUT" || req.method == "PATCH" || (req.method == "POST" && has_body)) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, t);
    int64_t size = req.body_reader ? req.body_size : static_cast<int64_t>(req.body.size());
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (req.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
}

void Finish(Transfer* t, CURLcode code) {
  HttpResponse& resp = *t->response;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &resp.status);
  resp.failure = FailureOf(code);
  if (code != CURLE_OK) {
    resp.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
    if (resp.body_too_large) resp.error = "response body over the size limit";
  }
}

// The multi handle of buffered requests and the thread that drives it. Callers hand it a
// configured easy handle and block until it is done; the thread starts with the first one.
class MultiDriver {
 public:
  MultiDriver() = default;
  ~MultiDriver() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (multi_) curl_multi_wakeup(multi_);
    }
    if (thread_.joinable()) thread_.join();
    for (CURL* h : idle_) curl_easy_cleanup(h);
    if (multi_) curl_multi_cleanup(multi_);
  }
  MultiDriver(const MultiDriver&) = delete;
  MultiDriver& operator=(const MultiDriver&) = delete;

  // A handle for the next request: the multi keeps connections, so any idle handle will do.
  CURL* Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
    return curl_easy_init();
  }

  // Runs `h` to completion on the multi handle; Release() it after reading its results. False
  // when the multi could not be set up.
  bool Run(CURL* h, CURLcode* result) {
    Job job{h};
    std::unique_lock<std::mutex> lock(mu_);
    if (!multi_) {
      multi_ = curl_multi_init();
      if (!multi_) return false;
      thread_ = std::thread([this] { Loop(); });
    }
    queue_.push_back(&job);
    curl_multi_wakeup(multi_);
    done_.wait(lock, [&] { return job.done; });
    *result = job.result;
    return true;
  }

  // Takes back a handle after its request (and the reading of its results).
  void Release(CURL* h) {
    curl_easy_reset(h);
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }

 private:
  struct Job {
    CURL* handle;
    CURLcode result = CURLE_OK;
    bool done = false;
  };

  void Loop() {
    std::vector<Job*> adding;
    int running = 0;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_ && running == 0 && queue_.empty()) return;
        adding.assign(queue_.begin(), queue_.end());
        queue_.clear();
      }
      for (Job* job : adding) {
        curl_easy_setopt(job->handle, CURLOPT_PRIVATE, job);
        if (CURLMcode rc = curl_multi_add_handle(multi_, job->handle); rc != CURLM_OK) {
          Complete(job, CURLE_OUT_OF_MEMORY);
        }
      }
      curl_multi_perform(multi_, &running);
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Job* job = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &job);
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(multi_, msg->easy_handle);
        Complete(job, result);
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
  }

  void Complete(Job* job, CURLcode result) {
    std::lock_guard<std::mutex> lock(mu_);
    job->result = result;
    job->done = true;
    done_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable done_;
  CURLM* multi_ = nullptr;   // set once, under mu_; then used by the thread alone
  std::deque<Job*> queue_;   // guarded by mu_
  std::vector<CURL*> idle_;  // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  std::thread thread_;
};

// Easy handles for streamed transfers, each keeping the connection of its last transfer.
class HandlePool {
 public:
  ~HandlePool() = default;

  // An idle handle that last talked to `origin`, else any idle one, else a new one.
  CurlEasyPtr Acquire(const std::string& origin) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it =
        std::find_if(idle_.begin(), idle_.end(), [&](const Idle& i) { return i.origin == origin; });
    if (it == idle_.end() && !idle_.empty()) it = idle_.begin();
    if (it == idle_.end()) return CurlEasyPtr(curl_easy_init());
    CurlEasyPtr h = std::move(it->handle);
    idle_.erase(it);
    return h;
  }

  void Release(CurlEasyPtr h, std::string origin) {
    curl_easy_reset(h.get());  // keeps the handle's connection cache
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() >= kMaxIdleHandles) idle_.erase(idle_.begin());  // the oldest
    idle_.push_back(Idle{std::move(h), std::move(origin)});
  }

 private:
  struct Idle {
    CurlEasyPtr handle;
    std::string origin;
  };
  std::mutex mu_;
  std::vector<Idle> idle_;  // guarded by mu_, oldest first
};

}  // namespace

class HttpClient::Impl {
 public:
  explicit Impl(HttpOptions options) : options_(std::move(options)) {}

  HttpResponse Perform(const HttpRequest& req) {
    HttpResponse resp;
    resp.url = req.url;
    if (IsBuffered(req)) {
      CURL* h = multi_.Acquire();
      if (!h) return Failed("cannot create a curl handle");
      Transfer t(&req, &resp, h);
      Configure(h, &t, options_, share_.get());
      CURLcode code = CURLE_OK;
      if (!multi_.Run(h, &code)) {
        curl_easy_cleanup(h);
        return Failed("cannot create a curl multi handle");
      }
      Finish(&t, code);
      multi_.Release(h);
      return resp;
    }
    // A unix socket is its own origin: a handle's kept connection is to one socket.
    std::string origin = req.unix_socket.empty() ? UrlOrigin(req.url) : "unix:" + req.unix_socket;
    CurlEasyPtr h = pool_.Acquire(origin);
    if (!h) return Failed("cannot create a curl handle");
    Transfer t(&req, &resp, h.get());
    Configure(h.get(), &t, options_, share_.get());
    CURLcode code = curl_easy_perform(h.get());
    Finish(&t, code);
    pool_.Release(std::move(h), std::move(origin));
    return resp;
  }

 private:
  static HttpResponse Failed(std::string why) {
    HttpResponse resp;
    resp.failure = HttpFailure::kOther;
    resp.error = std::move(why);
    return resp;
  }

  const HttpOptions options_;
  CurlShare share_;
  // Declared after share_: both pools' handles use it, so they go first.
  HandlePool pool_;
  MultiDriver multi_;
};

std::string UrlOrigin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  size_t end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

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

std::string LowerHeaderName(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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

HttpClient::HttpClient(Options options) {
  InitCurlOnce();
  impl_ = std::make_unique<Impl>(std::move(options));
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::Perform(const HttpRequest& req) { return impl_->Perform(req); }

bool IsRetryable(HttpFailure failure) {
  return failure == HttpFailure::kReset || failure == HttpFailure::kPartial ||
         failure == HttpFailure::kConnect;
}

}  // namespace regfs
