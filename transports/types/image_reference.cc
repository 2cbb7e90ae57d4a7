#include "transports/types/image_reference.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "transports/types/transport_forms.h"
#include "transports/util/digest.h"

namespace regfs {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

Error Invalid(std::string_view ref, const std::string& why) {
  return MakeError(EINVAL, "invalid reference \"" + std::string(ref) + "\": " + why);
}

// Splits "host:port" into its parts; IPv6 literals come in brackets.
bool SplitHostPort(std::string_view registry, std::string_view* host, std::string_view* port) {
  if (!registry.empty() && registry.front() == '[') {
    size_t close = registry.find(']');
    if (close == std::string_view::npos) return false;
    *host = registry.substr(1, close - 1);
    std::string_view rest = registry.substr(close + 1);
    if (rest.empty()) {
      *port = {};
      return true;
    }
    if (rest.front() != ':') return false;
    *port = rest.substr(1);
    return true;
  }
  size_t colon = registry.find(':');
  *host = registry.substr(0, colon);
  *port = colon == std::string_view::npos ? std::string_view{} : registry.substr(colon + 1);
  return true;
}

}  // namespace

bool IsValidRegistryHost(std::string_view registry) {
  std::string_view host, port;
  if (registry.empty() || registry.size() > 255 || !SplitHostPort(registry, &host, &port)) {
    return false;
  }
  if (registry.front() == ':' ||
      (registry.find(':') != std::string_view::npos && registry.front() != '[' && port.empty())) {
    return false;
  }
  if (!port.empty() || registry.back() == ':') {
    if (port.empty() || port.size() > 5) return false;
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
  }
  if (registry.front() == '[') {
    in6_addr a;
    return inet_pton(AF_INET6, std::string(host).c_str(), &a) == 1;
  }
  if (host.empty()) return false;
  // Domain components: alphanumerics and inner hyphens, separated by dots.
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool IsValidRepositoryComponent(std::string_view c) {
  // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              std::all_of(sep.begin(), sep.end(), [](char ch) { return ch == '-'; });
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool IsValidTag(std::string_view tag) {
  // [\w][\w.-]{0,127}
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (tag.empty() || tag.size() > 128 || !word(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool IsLoopbackHost(std::string_view registry) {
  std::string_view host, port;
  if (!SplitHostPort(registry, &host, &port)) return false;
  if (host == "localhost") return true;
  std::string h(host);
  in6_addr a6;
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  in_addr a;
  if (inet_pton(AF_INET, h.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

std::string DockerReference::String() const {
  std::string s = Name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<DockerReference> ParseDockerReference(std::string_view ref) {
  std::string_view orig = ref;
  if (ref.substr(0, 2) == "//") ref.remove_prefix(2);
  if (ref.empty()) return Invalid(orig, "empty reference");
  DockerReference out;
  size_t at = ref.find('@');
  if (at != std::string_view::npos) {
    out.digest = std::string(ref.substr(at + 1));
    if (!IsSha256Digest(out.digest)) return Invalid(orig, "bad digest \"" + out.digest + "\"");
    ref = ref.substr(0, at);
  }
  // A tag follows the last ':' after the last '/'.
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    out.tag = std::string(ref.substr(colon + 1));
    if (!IsValidTag(out.tag)) return Invalid(orig, "bad tag \"" + out.tag + "\"");
    ref = ref.substr(0, colon);
  }
  std::string_view name = ref;
  size_t first = name.find('/');
  std::string_view head = name.substr(0, first);
  bool has_registry = first != std::string_view::npos &&
                      (head.find_first_of(".:[") != std::string_view::npos || head == "localhost" ||
                       std::any_of(head.begin(), head.end(), [](char c) {
                         return std::isupper(static_cast<unsigned char>(c));
                       }));
  std::string_view path = name;
  if (has_registry) {
    out.registry = std::string(head);
    path = name.substr(first + 1);
    if (!IsValidRegistryHost(out.registry)) {
      return Invalid(orig, "bad registry host \"" + out.registry + "\"");
    }
  } else {
    out.registry = "docker.io";
  }
  if (out.registry == "index.docker.io") out.registry = "docker.io";
  if (path.empty()) return Invalid(orig, "missing repository name");
  size_t start = 0;
  while (true) {
    size_t next = path.find('/', start);
    std::string_view comp =
        path.substr(start, next == std::string_view::npos ? next : next - start);
    if (!IsValidRepositoryComponent(comp)) {
      return Invalid(orig,
                     "repository name must be lowercase: components of [a-z0-9] separated by "
                     "'.', '_', '__' or '-' (got \"" +
                         std::string(comp) + "\")");
    }
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
  out.repository = std::string(path);
  if (out.registry == "docker.io" && out.repository.find('/') == std::string::npos) {
    out.repository = "library/" + out.repository;
  }
  if (out.repository.size() + out.registry.size() + 1 > 255) return Invalid(orig, "name too long");
  if (out.tag.empty() && out.digest.empty()) {
    out.tag = "latest";
    out.tag_defaulted = true;
  }
  return out;
}

std::string ImageReference::String() const {
  switch (transport) {
    case Transport::kDocker:
      return "docker://" + docker.String();
    case Transport::kDir:
      return "dir:" + path;
    case Transport::kOci:
      return "oci:" + path + (oci_ref.empty() ? "" : ":" + oci_ref);
    case Transport::kDockerDaemon: {
      if (!daemon_image_id.empty()) return "docker-daemon:" + daemon_image_id;
      // Familiar, as skopeo prints it — except where that would read back as a digest
      // ("docker.io/library/sha384:<96 hex>" is the repository sha384, "sha384:…" is not).
      std::string familiar = FamiliarString(docker);
      return "docker-daemon:" + (ParseDaemonReference(familiar).ok() ? familiar : docker.String());
    }
    case Transport::kOciArchive:
      return "oci-archive:" + path + (oci_ref.empty() ? "" : ":" + oci_ref);
    case Transport::kDockerArchive:
      if (archive_tag) return "docker-archive:" + path + ":" + archive_tag->String();
      if (archive_index >= 0)
        return "docker-archive:" + path + ":@" + std::to_string(archive_index);
      return "docker-archive:" + path;
  }
  return {};
}

std::string FamiliarString(const DockerReference& ref) {
  std::string name = ref.Name();
  if (ref.registry == "docker.io") {
    name = ref.repository;
    if (name.rfind("library/", 0) == 0 && name.find('/', 8) == std::string::npos) {
      name = name.substr(8);
    }
  }
  if (!ref.tag.empty()) name += ":" + ref.tag;
  if (!ref.digest.empty()) name += "@" + ref.digest;
  return name;
}

Result<ImageReference> ParseDaemonReference(std::string_view ref) {
  auto invalid = [&](const std::string& why) {
    return MakeError(EINVAL,
                     "invalid docker-daemon: reference \"" + std::string(ref) + "\": " + why);
  };
  auto is_hex = [](std::string_view h, size_t size) {
    return h.size() == size && std::all_of(h.begin(), h.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  };
  ImageReference out;
  out.transport = Transport::kDockerDaemon;
  // "algo:hex" reads as a digest first, as go-digest parses it; it is also a name:tag
  // (docker.io/library/algo:hex), which is why only sha256 digests are taken as IDs.
  size_t colon = ref.find(':');
  std::string_view algo = ref.substr(0, colon);
  std::string_view hex = colon == std::string_view::npos ? "" : ref.substr(colon + 1);
  if (algo == "sha256" && is_hex(hex, 64)) {
    out.daemon_image_id = std::string(ref);
    return out;
  }
  if ((algo == "sha384" && is_hex(hex, 96)) || (algo == "sha512" && is_hex(hex, 128))) {
    return invalid("only digest algorithm sha256 accepted");
  }
  if (is_hex(ref, 64)) return invalid("cannot specify 64-byte hexadecimal strings");
  if (ref.empty() || ref.front() == '/') {
    return invalid("expected NAME:TAG, NAME@DIGEST or an image ID (sha256:…)");
  }
  ASSIGN_OR_RETURN(out.docker, ParseDockerReference(ref));
  if (out.docker.registry == "docker.io" && out.docker.repository == "library/sha256") {
    return invalid("the sha256 repository name is reserved for (non-shortened) digest references");
  }
  if (out.docker.tag_defaulted) {
    DockerReference name = out.docker;
    name.tag.clear();
    return invalid(FamiliarString(name) + " has neither a tag nor a digest");
  }
  if (!out.docker.tag.empty() && !out.docker.digest.empty()) {
    return invalid("references with both a tag and a digest are not supported");
  }
  return out;
}

std::span<const TransportForm> TransportForms() {
  // A transport ParseImageReference learns is added here, and --help, the man pages and
  // shell completion know it.
  static constexpr TransportForm kForms[] = {
      {"docker://", "docker://HOST[:PORT]/REPO[:TAG|@DIGEST]",
       "an image in a registry (Docker Hub names are normalized as docker pull does)", false},
      {"dir:", "dir:PATH", "an image as files in a directory, as skopeo's dir: keeps it", true},
      {"oci:", "oci:PATH[:REF]",
       "an image in an OCI image layout; REF is its org.opencontainers.image.ref.name", true},
      {"oci-archive:", "oci-archive:PATH[:REF]", "an OCI image layout in a tar file", true},
      {"docker-archive:", "docker-archive:PATH[:REF|@N]",
       "an image in a tar file as docker save writes it; REF names a tag in it, @N the Nth "
       "image",
       true},
      {"docker-daemon:", "docker-daemon:NAME:TAG|NAME@DIGEST|IMAGE-ID",
       "an image in a Docker engine, read with docker save and written with docker load", false},
  };
  return kForms;
}

std::string TransportList(bool forms) {
  std::string out;
  for (const TransportForm& t : TransportForms()) {
    if (!out.empty()) out += ", ";
    out += forms ? t.form : t.prefix;
  }
  return out;
}

namespace {

// docker-archive:PATH[:REF|:@N], split at the first ':' as containers/image splits it.
Result<ImageReference> ParseDockerArchive(std::string_view ref, std::string_view rest) {
  ImageReference out;
  out.transport = Transport::kDockerArchive;
  size_t c = rest.find(':');
  out.path = std::string(rest.substr(0, c));
  if (out.path.empty()) return Invalid(ref, "docker-archive: needs a path");
  if (c == std::string_view::npos) return out;
  std::string_view sel = rest.substr(c + 1);
  if (!sel.empty() && sel.front() == '@') {
    std::string_view num = sel.substr(1);
    if (num.empty() || num.size() > 9 || num.find_first_not_of("0123456789") != std::string::npos)
      return Invalid(ref, "invalid source index \"" + std::string(sel) + "\": want @N, N >= 0");
    out.archive_index = std::stoi(std::string(num));
    return out;
  }
  if (sel.empty()) return Invalid(ref, "empty image reference after ':'");
  ASSIGN_OR_RETURN(DockerReference tag, ParseDockerReference(sel));
  if (!tag.digest.empty()) return Invalid(ref, "docker-archive doesn't support digest references");
  out.archive_tag = std::move(tag);
  return out;
}

}  // namespace

Result<ImageReference> ParseImageReference(std::string_view ref) {
  size_t colon = ref.find(':');
  if (colon == std::string_view::npos) {
    return Invalid(ref, "expected TRANSPORT:NAME (" + TransportList(false) + ")");
  }
  std::string_view transport = ref.substr(0, colon);
  std::string_view rest = ref.substr(colon + 1);
  ImageReference out;
  if (transport == "docker") {
    if (rest.substr(0, 2) != "//") return Invalid(ref, "docker references start with docker://");
    out.transport = Transport::kDocker;
    ASSIGN_OR_RETURN(out.docker, ParseDockerReference(rest));
    return out;
  }
  if (transport == "dir") {
    if (rest.empty()) return Invalid(ref, "dir: needs a path");
    out.transport = Transport::kDir;
    out.path = std::string(rest);
    return out;
  }
  if (transport == "oci" || transport == "oci-archive") {
    out.transport = transport == "oci" ? Transport::kOci : Transport::kOciArchive;
    size_t c = rest.find(':');
    out.path = std::string(rest.substr(0, c));
    if (c != std::string_view::npos) out.oci_ref = std::string(rest.substr(c + 1));
    if (out.path.empty()) return Invalid(ref, std::string(transport) + ": needs a path");
    if (c != std::string_view::npos && out.oci_ref.empty())
      return Invalid(ref, "empty image reference after ':'");
    return out;
  }
  if (transport == "docker-archive") return ParseDockerArchive(ref, rest);
  if (transport == "docker-daemon") return ParseDaemonReference(rest);
  return MakeError(EINVAL, "unknown transport \"" + std::string(transport) + "\" in \"" +
                               std::string(ref) + "\" (known: " + TransportList(false) + ")");
}

}  // namespace regfs
