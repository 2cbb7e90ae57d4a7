#include "transports/http_client.h"

#include <cctype>
#include <cstdlib>

#include "transports/curl_transport.h"
#include "transports/plain_http.h"

namespace regfs {
namespace {

// libcurl sends plain HTTP through a proxy named by these (it ignores HTTP_PROXY for http://).
bool ProxyConfigured() {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

}  // namespace

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

HttpClient::HttpClient(Options options)
    : options_(std::move(options)),
      proxied_(ProxyConfigured()),
      plain_(std::make_unique<PlainHttpTransport>(options_)) {}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::Perform(const HttpRequest& req) {
  if (!proxied_ && req.url.rfind("http://", 0) == 0) return plain_->Perform(req);
  std::call_once(curl_once_, [this] {
    auto created = CurlTransport::Create(options_);
    if (created.ok()) {
      curl_ = std::move(created).value();
    } else {
      curl_unavailable_ = created.error().message;
    }
  });
  if (!curl_) {
    HttpResponse resp;
    resp.failure = HttpFailure::kOther;
    resp.error = curl_unavailable_;
    return resp;
  }
  return curl_->Perform(req);
}

bool IsRetryable(HttpFailure failure) {
  return failure == HttpFailure::kReset || failure == HttpFailure::kPartial;
}

}  // namespace regfs
