#include "transports/docker/lookaside.h"

#include <unistd.h>

#include <cerrno>

#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The local path of a file:// URL: what follows the authority, percent-decoded (as Go's
// url.URL.Path, which containers/image uses, ignoring any host).
Result<std::string> FilePath(const std::string& url) {
  std::string_view rest = std::string_view(url).substr(7);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return MakeError(EINVAL, "no path in " + url);
  rest = rest.substr(slash);
  rest = rest.substr(0, rest.find_first_of("?#"));
  std::string out;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      out += rest[i];
      continue;
    }
    int hi = i + 2 < rest.size() ? HexValue(rest[i + 1]) : -1;
    int lo = i + 2 < rest.size() ? HexValue(rest[i + 2]) : -1;
    if (hi < 0 || lo < 0) return MakeError(EINVAL, "invalid percent-encoding in " + url);
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool IsFile(const std::string& url) { return url.starts_with("file://"); }
bool IsHttp(const std::string& url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

Status CheckDigest(const std::string& manifest_digest) {
  // The digest becomes a path component: only a valid one, never "../".
  Status s = ValidateDigest(manifest_digest);
  if (!s.ok()) return Annotate(std::move(s).error(), "lookaside signatures");
  return Ok();
}

// One signature; ENOENT when there is none at `url`.
Result<std::string> ReadOne(HttpClient& http, const std::string& url) {
  if (IsFile(url)) {
    ASSIGN_OR_RETURN(std::string path, FilePath(url));
    return ReadFileBounded(path, kMaxSignatureSize);
  }
  HttpRequest req;
  req.url = url;
  req.max_body = kMaxSignatureSize;
  req.timeout_s = 300;
  req.tls_verify = true;
  HttpResponse res = http.Perform(req);
  if (res.body_too_large) {
    return MakeError(EFBIG, "reading signature from " + url + ": over the " +
                                std::to_string(kMaxSignatureSize) + "-byte limit");
  }
  if (!res.transport_ok())
    return MakeError(EIO, "reading signature from " + url + ": " + res.error);
  if (res.status == 404) return MakeError(ENOENT, url + ": no such signature");
  if (res.status != 200) {
    return MakeError(EIO, "reading signature from " + url + ": unexpected HTTP status " +
                              std::to_string(res.status));
  }
  return std::move(res.body);
}

}  // namespace

Result<std::vector<Signature>> ReadLookasideSignatures(HttpClient& http, const std::string& base,
                                                       const DockerReference& ref,
                                                       const std::string& manifest_digest) {
  if (!IsFile(base) && !IsHttp(base)) {
    return MakeError(EOPNOTSUPP, "unsupported scheme when reading signatures from " + base);
  }
  RETURN_IF_ERROR(CheckDigest(manifest_digest));
  std::vector<Signature> out;
  for (size_t i = 0;; ++i) {
    const std::string url = LookasideSignatureUrl(base, ref, manifest_digest, i);
    if (i == kMaxLookasideSignatures) {
      return MakeError(
          EFBIG, "more than " + std::to_string(kMaxLookasideSignatures) + " signatures at " + url);
    }
    auto blob = ReadOne(http, url);
    if (!blob.ok()) {
      if (blob.error().errnum == ENOENT) break;
      return std::move(blob).error();
    }
    auto sig = SignatureFromBlob(*blob);
    if (!sig.ok()) return Annotate(std::move(sig).error(), "parsing signature " + url);
    out.push_back(std::move(*sig));
  }
  return out;
}

Status WriteLookasideSignatures(const std::string& base, const DockerReference& ref,
                                const std::string& manifest_digest,
                                const std::vector<Signature>& sigs) {
  if (IsHttp(base)) {
    return MakeError(EOPNOTSUPP, "writing directly to the lookaside " + base +
                                     " is not supported: configure a lookaside-staging "
                                     "file:// location");
  }
  if (!IsFile(base)) {
    return MakeError(EOPNOTSUPP, "unsupported scheme when writing signatures to " + base);
  }
  if (sigs.empty()) return Ok();
  RETURN_IF_ERROR(CheckDigest(manifest_digest));
  for (size_t i = 0; i < sigs.size(); ++i) {
    ASSIGN_OR_RETURN(std::string path,
                     FilePath(LookasideSignatureUrl(base, ref, manifest_digest, i)));
    RETURN_IF_ERROR(MakeDirs(DirName(path), 0755));
    RETURN_IF_ERROR(WriteFileAtomic(path, SignatureBlob(sigs[i]), 0644));
  }
  // What an earlier, longer list left: readers stop at the first missing file, so removing
  // up to the first one missing is enough.
  for (size_t i = sigs.size();; ++i) {
    ASSIGN_OR_RETURN(std::string path,
                     FilePath(LookasideSignatureUrl(base, ref, manifest_digest, i)));
    if (unlink(path.c_str()) != 0) {
      if (errno == ENOENT) break;
      return SysError("removing", path);
    }
  }
  return Ok();
}

}  // namespace regfs
