#include "transports/config/registries_d.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <utility>

#include "transports/config/yaml_util.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr int64_t kMaxRegistriesDFileSize = int64_t{4} << 20;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Error Bad(const std::string& origin, const std::string& message, const YAML::Node& at) {
  return YamlError("parsing " + origin, message, at);
}

// A scalar as its text; null is "".
Result<std::string> ScalarString(const YAML::Node& n, const std::string& origin,
                                 const std::string& what) {
  if (n.IsNull()) return std::string();
  if (!n.IsScalar()) return Bad(origin, what + " must be a string", n);
  return n.Scalar();
}

Result<std::optional<bool>> ScalarBool(const YAML::Node& n, const std::string& origin,
                                       const std::string& what) {
  return YamlBool(n, "parsing " + origin, what + " must be true or false");
}

// The home directory, as containers/storage's homedir.Get() finds it.
std::string HomeDir() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : "/";
}

}  // namespace

std::string RegistriesD::Namespace::TopLevel(bool write) const {
  if (write) {
    if (!lookaside_staging.empty()) return lookaside_staging;
    if (!sigstore_staging.empty()) return sigstore_staging;
  }
  if (!lookaside.empty()) return lookaside;
  return sigstore;
}

Status RegistriesD::Merge(std::string_view yaml, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return MakeError(EINVAL, "parsing " + origin + ": " + e.what());
  } catch (const std::exception& e) {
    return MakeError(EINVAL, "parsing " + origin + ": " + e.what());
  }
  if (root.IsNull()) return Ok();
  if (!root.IsMap()) return Bad(origin, "the document must be a mapping", root);

  // Every key of a mapping once; other keys are ignored, as yaml.v3 ignores unknown fields.
  auto parse_ns = [&](const YAML::Node& n, const std::string& what) -> Result<Namespace> {
    Namespace ns;
    if (n.IsNull()) return ns;
    if (!n.IsMap()) return Bad(origin, what + " must be a mapping", n);
    std::map<std::string, bool> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) return Bad(origin, "a key of " + what + " is not a string", n);
      const std::string& key = kv.first.Scalar();
      if (seen[key]) return Bad(origin, "key " + Quote(key) + " appears twice", kv.first);
      seen[key] = true;
      std::string* field = key == "lookaside"           ? &ns.lookaside
                           : key == "lookaside-staging" ? &ns.lookaside_staging
                           : key == "sigstore"          ? &ns.sigstore
                           : key == "sigstore-staging"  ? &ns.sigstore_staging
                                                        : nullptr;
      if (field) {
        ASSIGN_OR_RETURN(*field, ScalarString(kv.second, origin, what + " " + key));
      } else if (key == "use-sigstore-attachments") {
        ASSIGN_OR_RETURN(ns.use_sigstore_attachments,
                         ScalarBool(kv.second, origin, what + " " + key));
      }
    }
    return ns;
  };

  std::optional<Namespace> default_docker;
  std::vector<std::pair<std::string, Namespace>> docker;
  std::map<std::string, bool> seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return Bad(origin, "a top-level key is not a string", root);
    const std::string& key = kv.first.Scalar();
    if (seen[key]) return Bad(origin, "key " + Quote(key) + " appears twice", kv.first);
    seen[key] = true;
    if (key == "default-docker") {
      // A null default-docker is no default-docker, as a nil pointer in yaml.v3.
      if (kv.second.IsNull()) continue;
      ASSIGN_OR_RETURN(default_docker, parse_ns(kv.second, "default-docker"));
    } else if (key == "docker") {
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap()) return Bad(origin, "docker must be a mapping", kv.second);
      std::map<std::string, bool> scopes;
      for (const auto& scope : kv.second) {
        if (!scope.first.IsScalar())
          return Bad(origin, "a docker scope is not a string", scope.first);
        const std::string& name = scope.first.Scalar();
        if (scopes[name])
          return Bad(origin, "docker scope " + Quote(name) + " appears twice", scope.first);
        scopes[name] = true;
        ASSIGN_OR_RETURN(Namespace ns, parse_ns(scope.second, "docker scope " + Quote(name)));
        docker.emplace_back(name, std::move(ns));
      }
    }
  }

  if (default_docker) {
    if (default_docker_) {
      return MakeError(EINVAL,
                       "signature storage configuration: \"default-docker\" defined both in " +
                           Quote(default_docker_from_) + " and " + Quote(origin));
    }
  }
  for (const auto& [name, ns] : docker) {
    auto it = docker_from_.find(name);
    if (it != docker_from_.end()) {
      return MakeError(EINVAL, "signature storage configuration: \"docker\" namespace " +
                                   Quote(name) + " defined both in " + Quote(it->second) + " and " +
                                   Quote(origin));
    }
  }
  if (default_docker) {
    default_docker_ = std::move(default_docker);
    default_docker_from_ = origin;
  }
  for (auto& [name, ns] : docker) {
    docker_from_[name] = origin;
    docker_[name] = std::move(ns);
  }
  return Ok();
}

Result<RegistriesD> RegistriesD::Load(const std::string& dir) {
  std::string path = dir;
  if (path.empty()) {
    std::string user = HomeDir() + "/.config/containers/registries.d";
    path = PathExists(user) ? user : "/etc/containers/registries.d";
  }
  RegistriesD config;
  if (!PathExists(path)) return config;
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
  for (const std::string& name : names) {
    if (!name.ends_with(".yaml")) continue;
    const std::string file = path + "/" + name;
    auto text = ReadFileBounded(file, kMaxRegistriesDFileSize);
    if (!text.ok()) {
      if (text.error().errnum == ENOENT) continue;  // removed since the listing
      return std::move(text).error();
    }
    RETURN_IF_ERROR(config.Merge(*text, file));
  }
  return config;
}

std::vector<std::string> RegistriesDScopes(const DockerReference& ref) {
  std::vector<std::string> out;
  const std::string name = ref.Name();
  if (!ref.tag.empty()) {
    out.push_back(name + ":" + ref.tag);
  } else if (!ref.digest.empty()) {
    out.push_back(name + "@" + ref.digest);
  }
  std::string n = name;
  for (;;) {
    out.push_back(n);
    size_t slash = n.rfind('/');
    if (slash == std::string::npos) break;
    n.resize(slash);
  }
  // The host without its port, then its parent domains as wildcards.
  size_t colon = n.find(':');
  if (colon != std::string::npos) n.resize(colon);
  for (;;) {
    size_t dot = n.find('.');
    if (dot == std::string::npos) break;
    n = n.substr(dot + 1);
    out.push_back("*." + n);
  }
  return out;
}

std::vector<const RegistriesD::Namespace*> RegistriesD::Scopes(const DockerReference& ref) const {
  std::vector<const Namespace*> out;
  for (const std::string& scope : RegistriesDScopes(ref)) {
    auto it = docker_.find(scope);
    if (it != docker_.end()) out.push_back(&it->second);
  }
  if (default_docker_) out.push_back(&*default_docker_);
  return out;
}

SignatureStorage RegistriesD::For(const DockerReference& ref) const {
  SignatureStorage out;
  std::string write;
  for (const Namespace* ns : Scopes(ref)) {
    if (out.lookaside.empty()) out.lookaside = ns->TopLevel(false);
    if (write.empty()) write = ns->TopLevel(true);
    if (!out.use_sigstore_attachments) out.use_sigstore_attachments = ns->use_sigstore_attachments;
  }
  const std::string builtin = geteuid() == 0
                                  ? std::string("file:///var/lib/containers/sigstore")
                                  : "file://" + HomeDir() + "/.local/share/containers/sigstore";
  if (out.lookaside.empty()) out.lookaside = builtin;
  if (write.empty()) write = builtin;
  if (write != out.lookaside) out.lookaside_staging = write;
  return out;
}

std::string LookasideSignatureUrl(const std::string& base, const DockerReference& ref,
                                  const std::string& manifest_digest, size_t index) {
  // The path part of the URL gets the repository; a query or fragment stays after it.
  size_t scheme = base.find("://");
  size_t tail = base.find_first_of("?#", scheme == std::string::npos ? 0 : scheme + 3);
  std::string head = base.substr(0, tail);
  std::string rest = tail == std::string::npos ? "" : base.substr(tail);
  std::string digest = manifest_digest;
  size_t colon = digest.find(':');
  if (colon != std::string::npos) digest[colon] = '=';
  return head + "/" + ref.repository + "@" + digest + "/signature-" + std::to_string(index + 1) +
         rest;
}

}  // namespace regfs
