#include "transports/config/auth_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "transports/config/credential_helper.h"
#include "transports/types/image_reference.h"
#include "transports/util/base64.h"
#include "transports/util/file_util.h"
#include "transports/util/json_util.h"

namespace regfs {
namespace {

using nlohmann::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
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

constexpr int64_t kMaxAuthFile = 16 << 20;

// The registry part of a login key ("host:5000/ns" → "host:5000").
std::string RegistryOfKey(const std::string& key) { return key.substr(0, key.find('/')); }

// The file at `path` as a JSON object to edit; an empty object when it does not exist.
Result<nlohmann::ordered_json> ReadForEdit(const std::string& path) {
  auto text = ReadFileBounded(path, kMaxAuthFile);
  if (!text.ok()) {
    if (text.error().errnum == ENOENT) return nlohmann::ordered_json::object();
    return Annotate(text.error(), "reading " + path);
  }
  auto j = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(EINVAL, path + " is not a JSON object");
  }
  if (j.contains("auths") && !j["auths"].is_object()) {
    return MakeError(EINVAL, path + ": \"auths\" is not an object");
  }
  return j;
}

// Writes the edited file as the containers tools do (tab-indented), 0600 in a 0700 directory.
Status WriteEdited(const std::string& path, const nlohmann::ordered_json& j) {
  std::string dir = DirName(path);
  if (!IsDirectory(dir)) RETURN_IF_ERROR(MakeDirs(dir, 0700));
  return WriteFileAtomic(path, j.dump(1, '\t'), 0600);
}

std::string HelperFor(const nlohmann::ordered_json& j, const std::string& registry) {
  if (auto it = j.find("credHelpers"); it != j.end() && it->is_object()) {
    if (auto h = it->find(registry); h != it->end() && h->is_string()) {
      return h->get<std::string>();
    }
  }
  return {};
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
  auto decoded_or = Base64Decode(auth);
  if (!decoded_or.ok()) return MakeError(EINVAL, "invalid base64 in \"auth\"");
  const std::string& decoded = *decoded_or;
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
  std::vector<std::string> out = {AuthFileWritePath("")};
  std::string home = Env("HOME");
  std::string config = Env("XDG_CONFIG_HOME");
  if (config.empty() && !home.empty()) config = home + "/.config";
  if (!config.empty()) out.push_back(config + "/containers/auth.json");
  if (std::string docker = Env("DOCKER_CONFIG"); !docker.empty()) {
    out.push_back(docker + "/config.json");
  } else if (!home.empty()) {
    out.push_back(home + "/.docker/config.json");
  }
  if (!home.empty()) out.push_back(home + "/.dockercfg");
  return out;
}

std::string AuthFileWritePath(const std::string& authfile) {
  if (!authfile.empty()) return authfile;
  if (std::string f = Env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  if (std::string rt = Env("XDG_RUNTIME_DIR"); !rt.empty()) return rt + "/containers/auth.json";
  return "/run/containers/" + std::to_string(getuid()) + "/auth.json";
}

Result<std::string> NormalizeLoginKey(std::string_view input) {
  std::string key(input);
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.rfind(scheme, 0) == 0) key.erase(0, scheme.size());
  }
  while (!key.empty() && key.back() == '/') key.pop_back();
  size_t slash = key.find('/');
  std::string host = key.substr(0, slash);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
  if (!IsValidRegistryHost(host)) {
    return MakeError(EINVAL,
                     "\"" + std::string(input) + "\" is not a registry (HOST[:PORT][/NAMESPACE])");
  }
  std::string rest = slash == std::string::npos ? "" : key.substr(slash + 1);
  if (!rest.empty()) {
    size_t start = 0;
    while (start <= rest.size()) {
      size_t end = rest.find('/', start);
      if (end == std::string::npos) end = rest.size();
      if (!IsValidRepositoryComponent(rest.substr(start, end - start))) {
        return MakeError(EINVAL, "\"" + std::string(input) + "\" has an invalid namespace");
      }
      start = end + 1;
    }
    return host + "/" + rest;
  }
  return host;
}

HelperChoice CredentialHelperIn(std::string_view contents, std::string_view registry) {
  auto j = nlohmann::ordered_json::parse(contents, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  if (std::string h = HelperFor(j, std::string(registry)); !h.empty()) return {h, false};
  if (auto it = j.find("credsStore"); it != j.end() && it->is_string() && !it->empty()) {
    return {it->get<std::string>(), true};
  }
  return {};
}

std::string AuthFilesStamp(const std::string& authfile) {
  std::string stamp;
  for (const std::string& path : AuthFileSearchPath(authfile)) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      stamp += "-;";
      continue;
    }
    stamp += std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
             std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return stamp;
}

Status StoreCredentials(const std::string& path, const std::string& key, const Credentials& creds,
                        const HelperRunner& helper) {
  ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadForEdit(path));
  if (std::string h = HelperFor(j, RegistryOfKey(key)); !h.empty()) {
    return CredentialHelperStore(helper, h, key, creds);
  }
  nlohmann::ordered_json entry = nlohmann::ordered_json::object();
  if (!creds.username.empty()) entry["auth"] = Base64Encode(creds.username + ":" + creds.password);
  if (!creds.identity_token.empty()) entry["identitytoken"] = creds.identity_token;
  if (!j.contains("auths")) j["auths"] = nlohmann::ordered_json::object();
  j["auths"][key] = entry;
  return WriteEdited(path, j);
}

Result<bool> RemoveCredentials(const std::string& path, const std::string& key,
                               const HelperRunner& helper) {
  ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadForEdit(path));
  bool removed = false;
  if (std::string h = HelperFor(j, RegistryOfKey(key)); !h.empty()) {
    Status erased = CredentialHelperErase(helper, h, key);
    if (erased.ok()) {
      removed = true;
    } else if (erased.error().message.find("credentials not found") == std::string::npos) {
      return erased.error();
    }
  }
  if (j.contains("auths") && j["auths"].contains(key)) {
    j["auths"].erase(key);
    RETURN_IF_ERROR(WriteEdited(path, j));
    removed = true;
  }
  return removed;
}

Status RemoveAllCredentials(const std::string& path) {
  if (!PathExists(path)) return Ok();
  ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadForEdit(path));
  j["auths"] = nlohmann::ordered_json::object();
  return WriteEdited(path, j);
}

Result<std::optional<Credentials>> CredentialsForKey(const std::string& path,
                                                     const std::string& key,
                                                     const HelperRunner& helper) {
  ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadForEdit(path));
  if (std::string h = HelperFor(j, RegistryOfKey(key)); !h.empty()) {
    return CredentialHelperGet(helper, h, key);
  }
  if (!j.contains("auths") || !j["auths"].contains(key)) return std::optional<Credentials>();
  const auto& entry = j["auths"][key];
  if (entry.is_object() && entry.empty()) return std::optional<Credentials>();
  auto c = EntryCredentials(json::parse(entry.dump()));
  if (!c.ok()) return Annotate(c.error(), path + ": entry \"" + key + "\"");
  return std::optional<Credentials>(std::move(c).value());
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
  return LookupCredentials(authfile, registry, repository, RunCredentialHelper);
}

Result<std::optional<Credentials>> LookupCredentials(const std::string& authfile,
                                                     std::string_view registry,
                                                     std::string_view repository,
                                                     const HelperRunner& helper) {
  for (const std::string& path : AuthFileSearchPath(authfile)) {
    auto contents = ReadFileBounded(path, kMaxAuthFile);
    if (!contents.ok()) {
      if (contents.error().errnum == ENOENT) continue;
      return Annotate(contents.error(), "reading " + path);
    }
    HelperChoice choice = CredentialHelperIn(*contents, registry);
    auto ask = [&](const std::string& name) -> Result<std::optional<Credentials>> {
      auto got = CredentialHelperGet(helper, name, std::string(registry));
      if (!got.ok()) return Annotate(got.error(), "credentials for " + std::string(registry));
      return got;
    };
    if (!choice.helper.empty() && !choice.from_store) {
      ASSIGN_OR_RETURN(std::optional<Credentials> got, ask(choice.helper));
      if (got) return got;
      continue;  // credHelpers names the helper for this registry alone: no "auths" here
    }
    auto found = LookupCredentialsIn(*contents, registry, repository);
    if (!found.ok()) return Annotate(found.error(), "parsing " + path);
    if (found->has_value()) return found;
    if (choice.from_store) {
      ASSIGN_OR_RETURN(std::optional<Credentials> got, ask(choice.helper));
      if (got) return got;
    }
  }
  return std::optional<Credentials>();
}

std::set<std::string> RegistriesWithCredentials(const std::string& authfile) {
  std::set<std::string> out;
  for (const std::string& path : AuthFileSearchPath(authfile)) {
    auto text = ReadFileBounded(path, kMaxAuthFile);
    if (!text.ok()) continue;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) continue;
    for (const char* section : {"auths", "credHelpers"}) {
      if (!j.contains(section) || !j[section].is_object()) continue;
      for (const auto& [key, value] : j[section].items()) {
        auto normal = NormalizeLoginKey(key);
        if (normal.ok()) out.insert(normal->substr(0, normal->find('/')));
      }
    }
  }
  return out;
}

}  // namespace regfs
