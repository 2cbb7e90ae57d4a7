#include "transports/auth_file.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "transports/file_util.h"
#include "transports/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<std::string> Base64Decode(std::string_view in) {
  std::string s(in);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.size() % 4 != 0) return MakeError(EINVAL, "invalid base64 in \"auth\"");
  std::string out(s.size() / 4 * 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return MakeError(EINVAL, "invalid base64 in \"auth\"");
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// Legacy keys such as "https://index.docker.io/v1/" name a host: strip scheme and path.
std::string NormalizeKey(std::string key) {
  bool had_scheme = false;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.rfind(scheme, 0) == 0) {
      key.erase(0, scheme.size());
      had_scheme = true;
    }
  }
  if (had_scheme) key = key.substr(0, key.find('/'));
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

Result<Credentials> EntryCredentials(const json& entry) {
  Credentials c;
  if (!entry.is_object()) return MakeError(EINVAL, "credential entry is not an object");
  c.identity_token = JsonString(entry, "identitytoken");
  std::string auth = JsonString(entry, "auth");
  if (auth.empty()) {
    if (c.identity_token.empty()) return MakeError(EINVAL, "credential entry has no \"auth\"");
    return c;
  }
  ASSIGN_OR_RETURN(std::string decoded, Base64Decode(auth));
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return MakeError(EINVAL, "\"auth\" does not hold user:password");
  c.username = decoded.substr(0, colon);
  c.password = decoded.substr(colon + 1);
  return c;
}

}  // namespace

Result<Credentials> ParseCredsFlag(std::string_view creds) {
  size_t colon = creds.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return MakeError(EINVAL, "credentials must be USERNAME:PASSWORD");
  }
  return Credentials{std::string(creds.substr(0, colon)), std::string(creds.substr(colon + 1)), ""};
}

std::vector<std::string> AuthFileSearchPath(const std::string& authfile) {
  if (!authfile.empty()) return {authfile};
  if (std::string f = Env("REGISTRY_AUTH_FILE"); !f.empty()) return {f};
  std::vector<std::string> out;
  if (std::string rt = Env("XDG_RUNTIME_DIR"); !rt.empty())
    out.push_back(rt + "/containers/auth.json");
  std::string home = Env("HOME");
  std::string config = Env("XDG_CONFIG_HOME");
  if (config.empty() && !home.empty()) config = home + "/.config";
  if (!config.empty()) out.push_back(config + "/containers/auth.json");
  if (!home.empty()) {
    out.push_back(home + "/.docker/config.json");
    out.push_back(home + "/.dockercfg");
  }
  return out;
}

Result<std::optional<Credentials>> LookupCredentialsIn(std::string_view contents,
                                                       std::string_view registry,
                                                       std::string_view repository) {
  json j = json::parse(contents, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return MakeError(EINVAL, "not a JSON object");
  // auth.json keeps entries under "auths"; the legacy .dockercfg is the map itself.
  const json* auths = &j;
  if (auto it = j.find("auths"); it != j.end()) {
    if (!it->is_object()) return MakeError(EINVAL, "\"auths\" is not an object");
    auths = &*it;
  }
  std::map<std::string, const json*> entries;
  for (auto& [key, entry] : auths->items()) entries.emplace(NormalizeKey(key), &entry);
  // Most specific first: registry/a/b/c, registry/a/b, registry/a, registry.
  std::string candidate = std::string(registry) + "/" + std::string(repository);
  while (true) {
    auto it = entries.find(candidate);
    // An empty entry is a credential helper's marker ("credsStore"): no credentials here.
    if (it != entries.end() && !(it->second->is_object() && it->second->empty())) {
      auto c = EntryCredentials(*it->second);
      if (!c.ok()) return Annotate(c.error(), "entry \"" + candidate + "\"");
      return std::optional<Credentials>(std::move(c).value());
    }
    size_t slash = candidate.rfind('/');
    if (slash == std::string::npos || candidate.size() <= registry.size()) break;
    candidate.resize(slash);
  }
  return std::optional<Credentials>();
}

Result<std::optional<Credentials>> LookupCredentials(const std::string& authfile,
                                                     std::string_view registry,
                                                     std::string_view repository) {
  for (const std::string& path : AuthFileSearchPath(authfile)) {
    auto contents = ReadFileBounded(path, 16 << 20);
    if (!contents.ok()) {
      if (contents.error().errnum == ENOENT) continue;
      return Annotate(contents.error(), "reading " + path);
    }
    auto found = LookupCredentialsIn(*contents, registry, repository);
    if (!found.ok()) return Annotate(found.error(), "parsing " + path);
    if (found->has_value()) return found;
  }
  return std::optional<Credentials>();
}

}  // namespace regfs
