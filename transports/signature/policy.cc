#include "transports/signature/policy.h"

#include <re2/re2.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "transports/signature/policy_verify.h"
#include "transports/signature/sigstore.h"
#include "transports/util/base64.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// The parsed policy.

struct PolicyRequirement {
  enum class Type {
    kInsecureAcceptAnything,
    kReject,
    kSignedBy,
    kSigstoreSigned,
    kSignedBaseLayer
  };
  Type type = Type::kReject;
  // signedBy, sigstoreSigned: the key files (resolved against the policy's directory) or the
  // inline key data; exactly one of the two is non-empty.
  std::vector<std::string> key_paths;
  std::vector<std::string> key_datas;
  SignedIdentityRule identity;  // signedIdentity, or signedBaseLayer's baseLayerIdentity
  std::string key_type;         // signedBy: "GPGKeys" (the only one evaluated) or another
};

using PolicyRequirements = std::vector<PolicyRequirement>;

struct Policy::Impl {
  PolicyRequirements default_reqs;
  // transport name → scope → requirements.
  std::map<std::string, std::map<std::string, PolicyRequirements>> transports;
};

Policy::~Policy() = default;
Policy::Policy(Policy&&) noexcept = default;
Policy& Policy::operator=(Policy&&) noexcept = default;
Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

constexpr int64_t kMaxPolicySize = 16 << 20;
constexpr int64_t kMaxKeySize = 1 << 20;

Error Bad(const std::string& where, const std::string& what) {
  return MakeError(EINVAL, "policy: " + where + ": " + what);
}

std::string Quoted(const std::string& s) { return json(s).dump(); }

// ---------------------------------------------------------------------------------------------
// JSON with duplicate keys refused, as containers/image's paranoid decoder refuses them.

class StrictSax {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit StrictSax(json& root) : dom_(root, /*allow_exceptions=*/false) {}

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return Value() && dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return Value() && dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) {
    return Value() && dom_.number_float(v, s);
  }
  bool string(string_t& v) { return Value() && dom_.string(v); }
  bool binary(binary_t& v) { return Value() && dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (!Value()) return false;
    frames_.push_back(Frame{false, 0, {}, ""});
    return dom_.start_object(n);
  }
  bool key(string_t& k) {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      error_ = Where() + ": duplicate key " + Quoted(k);
      return false;
    }
    f.current_key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!Value()) return false;
    frames_.push_back(Frame{true, 0, {}, ""});
    return dom_.start_array(n);
  }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (error_.empty()) error_ = std::string("not valid JSON: ") + ex.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool array;
    size_t next_index;
    std::set<std::string> keys;
    std::string current_key;
  };

  // Counts array elements so that a duplicate key's path names its index.
  bool Value() {
    if (!frames_.empty() && frames_.back().array) frames_.back().next_index++;
    return true;
  }
  std::string Where() const {
    std::string s;
    for (size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        s += "[" + std::to_string(f.next_index - 1) + "]";
      } else {
        s += (s.empty() ? "" : ".") + f.current_key;
      }
    }
    return s.empty() ? "top level" : s;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<Frame> frames_;
  std::string error_;
};

Result<json> ParseStrictJson(std::string_view text) {
  json root;
  StrictSax sax(root);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok) return MakeError(EINVAL, "policy: " + (sax.error().empty() ? "bad JSON" : sax.error()));
  return root;
}

// ---------------------------------------------------------------------------------------------
// Field access naming the path of what is wrong.

std::string Field(const std::string& where, const std::string& key) { return where + "." + key; }

Status CheckObject(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "expected a JSON object");
  return Ok();
}

Status OnlyFields(const json& obj, const std::string& where,
                  std::initializer_list<const char*> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) return Bad(where, "unknown field " + Quoted(it.key()));
  }
  return Ok();
}

// A string field; nullopt when absent (`required` makes that an error).
Result<std::optional<std::string>> StringField(const json& obj, const std::string& where,
                                               const char* key, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return Bad(where, "missing required field " + Quoted(key));
    return std::optional<std::string>();
  }
  if (!it->is_string()) return Bad(Field(where, key), "expected a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<std::vector<std::string>>> StringListField(const json& obj,
                                                                const std::string& where,
                                                                const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::optional<std::vector<std::string>>();
  if (!it->is_array()) return Bad(Field(where, key), "expected an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) {
      return Bad(Field(where, key) + "[" + std::to_string(i) + "]", "expected a string");
    }
    out.push_back((*it)[i].get<std::string>());
  }
  if (out.empty()) return Bad(Field(where, key), "contains no entries");
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::string> DecodeKeyData(const std::string& b64, const std::string& where) {
  auto r = Base64Decode(b64);
  if (!r.ok()) return Bad(where, "not valid base64: " + r.error().message);
  if (r->empty()) return Bad(where, "is empty");
  return std::move(r).value();
}

// ---------------------------------------------------------------------------------------------
// Docker references as containers/image's reference package sees them.

struct Named {
  DockerReference ref;
  bool name_only = false;  // neither tag nor digest written
  std::string Name() const { return ref.Name(); }
  std::string String() const { return ref.String(); }
  bool tagged() const { return !ref.tag.empty(); }
};

std::optional<Named> ParseNamed(std::string_view s) {
  auto r = ParseDockerReference(s);
  if (!r.ok() || s.substr(0, 2) == "//") return std::nullopt;
  Named n{std::move(r).value(), false};
  if (n.ref.tag_defaulted) {
    n.ref.tag.clear();
    n.name_only = true;
  }
  return n;
}

// docker:// references, and docker-daemon: ones by name (not by image ID).
bool HasDockerReference(const ImageReference& image) {
  return image.transport == Transport::kDocker ||
         (image.transport == Transport::kDockerDaemon && image.daemon_image_id.empty());
}

// The image's own reference: docker references always have a tag or digest ("latest" implied).
std::optional<Named> ImageNamed(const ImageReference& image) {
  if (!HasDockerReference(image)) return std::nullopt;
  Named n{image.docker, false};
  if (n.ref.tag.empty() && n.ref.digest.empty()) n.ref.tag = "latest";
  return n;
}

bool ExactMatch(const Named& intended, const Named& sig) {
  if (intended.name_only || sig.name_only) return false;
  return sig.String() == intended.String();
}

bool RepoDigestOrExactMatch(const Named& intended, const Named& sig) {
  if (sig.name_only) return false;
  if (intended.tagged()) return sig.String() == intended.String();
  if (!intended.ref.digest.empty()) return sig.Name() == intended.Name();
  return false;
}

// RE2, not std::regex: policy files come from anywhere, and RE2 matches in linear time where
// std::regex backtracks (a long prefix made these take minutes).
const re2::RE2& RemapDomainRegex() {
  static const re2::RE2 re(
      R"(^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$)");
  return re;
}
const re2::RE2& RemapDomainPrefixRegex() {
  static const re2::RE2 re(
      R"(^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)");
  return re;
}
const re2::RE2& RemapNameRegex() {
  static const re2::RE2 re(
      R"(^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$)");
  return re;
}

bool ValidRemapPrefix(const std::string& s) {
  return re2::RE2::FullMatch(s, RemapDomainRegex()) ||
         (re2::RE2::FullMatch(s, RemapNameRegex()) &&
          re2::RE2::PartialMatch(s, RemapDomainPrefixRegex()));  // anchored by its ^
}

bool RefMatchesPrefix(const std::string& name, const std::string& prefix) {
  if (name.size() < prefix.size()) return false;
  if (name.size() == prefix.size()) return name == prefix;
  return name.compare(0, prefix.size(), prefix) == 0 && name[prefix.size()] == '/';
}

// ---------------------------------------------------------------------------------------------
// Parsing.

Result<SignedIdentityRule> ParseIdentity(const json& j, const std::string& where) {
  RETURN_IF_ERROR(CheckObject(j, where));
  ASSIGN_OR_RETURN(auto type, StringField(j, where, "type", true));
  SignedIdentityRule rule;
  auto exact_fields = [&](std::initializer_list<const char*> fields) -> Status {
    RETURN_IF_ERROR(OnlyFields(j, where, fields));
    for (const char* f : fields) {
      if (!j.contains(f)) return Bad(where, "missing required field " + Quoted(f));
      if (!j[f].is_string()) return Bad(Field(where, f), "expected a string");
    }
    return Ok();
  };
  if (*type == "matchExact") {
    rule.kind = SignedIdentityRule::Kind::kMatchExact;
    RETURN_IF_ERROR(exact_fields({"type"}));
  } else if (*type == "matchRepoDigestOrExact") {
    rule.kind = SignedIdentityRule::Kind::kMatchRepoDigestOrExact;
    RETURN_IF_ERROR(exact_fields({"type"}));
  } else if (*type == "matchRepository") {
    rule.kind = SignedIdentityRule::Kind::kMatchRepository;
    RETURN_IF_ERROR(exact_fields({"type"}));
  } else if (*type == "exactReference") {
    rule.kind = SignedIdentityRule::Kind::kExactReference;
    RETURN_IF_ERROR(exact_fields({"type", "dockerReference"}));
    rule.docker_reference = j["dockerReference"].get<std::string>();
    auto n = ParseNamed(rule.docker_reference);
    if (!n) {
      return Bad(Field(where, "dockerReference"),
                 "invalid docker reference " + Quoted(rule.docker_reference));
    }
    if (n->name_only) {
      return Bad(Field(where, "dockerReference"),
                 Quoted(rule.docker_reference) + " contains neither a tag nor a digest");
    }
  } else if (*type == "exactRepository") {
    rule.kind = SignedIdentityRule::Kind::kExactRepository;
    RETURN_IF_ERROR(exact_fields({"type", "dockerRepository"}));
    rule.docker_repository = j["dockerRepository"].get<std::string>();
    if (!ParseNamed(rule.docker_repository)) {
      return Bad(Field(where, "dockerRepository"),
                 "invalid docker repository " + Quoted(rule.docker_repository));
    }
  } else if (*type == "remapIdentity") {
    rule.kind = SignedIdentityRule::Kind::kRemapIdentity;
    RETURN_IF_ERROR(exact_fields({"type", "prefix", "signedPrefix"}));
    rule.prefix = j["prefix"].get<std::string>();
    rule.signed_prefix = j["signedPrefix"].get<std::string>();
    if (!ValidRemapPrefix(rule.prefix)) {
      return Bad(Field(where, "prefix"), "prefix " + Quoted(rule.prefix) + " is not valid");
    }
    if (!ValidRemapPrefix(rule.signed_prefix)) {
      return Bad(Field(where, "signedPrefix"),
                 "prefix " + Quoted(rule.signed_prefix) + " is not valid");
    }
  } else {
    return Bad(Field(where, "type"), "unknown signedIdentity type " + Quoted(*type));
  }
  return rule;
}

std::string ResolveKeyPath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// keyPath / keyPaths / keyData (/ keyDatas): exactly one.
Status ParseKeySources(const json& j, const std::string& where, const std::string& base_dir,
                       bool allow_datas, PolicyRequirement* req) {
  const char* names =
      allow_datas ? "keyPath, keyPaths, keyData and keyDatas" : "keyPath, keyPaths and keyData";
  int sources = 0;
  ASSIGN_OR_RETURN(auto key_path, StringField(j, where, "keyPath", false));
  if (key_path) {
    sources++;
    if (key_path->empty()) return Bad(Field(where, "keyPath"), "is empty");
    req->key_paths.push_back(ResolveKeyPath(*key_path, base_dir));
  }
  ASSIGN_OR_RETURN(auto key_paths, StringListField(j, where, "keyPaths"));
  if (key_paths) {
    sources++;
    for (size_t i = 0; i < key_paths->size(); ++i) {
      if ((*key_paths)[i].empty()) {
        return Bad(Field(where, "keyPaths") + "[" + std::to_string(i) + "]", "is empty");
      }
      req->key_paths.push_back(ResolveKeyPath((*key_paths)[i], base_dir));
    }
  }
  ASSIGN_OR_RETURN(auto key_data, StringField(j, where, "keyData", false));
  if (key_data) {
    sources++;
    ASSIGN_OR_RETURN(auto d, DecodeKeyData(*key_data, Field(where, "keyData")));
    req->key_datas.push_back(std::move(d));
  }
  if (allow_datas) {
    ASSIGN_OR_RETURN(auto key_datas, StringListField(j, where, "keyDatas"));
    if (key_datas) {
      sources++;
      for (size_t i = 0; i < key_datas->size(); ++i) {
        ASSIGN_OR_RETURN(auto d, DecodeKeyData((*key_datas)[i], Field(where, "keyDatas") + "[" +
                                                                    std::to_string(i) + "]"));
        req->key_datas.push_back(std::move(d));
      }
    }
  }
  if (sources == 0) {
    return Bad(where, std::string("exactly one of ") + names + " must be specified, none present");
  }
  if (sources > 1) {
    return Bad(where, std::string("exactly one of ") + names +
                          " must be specified, more than one present");
  }
  return Ok();
}

Status ParseSignedIdentityField(const json& j, const std::string& where, PolicyRequirement* req) {
  auto it = j.find("signedIdentity");
  if (it == j.end()) {
    req->identity.kind = SignedIdentityRule::Kind::kMatchRepoDigestOrExact;
    return Ok();
  }
  ASSIGN_OR_RETURN(req->identity, ParseIdentity(*it, Field(where, "signedIdentity")));
  return Ok();
}

Result<PolicyRequirement> ParseRequirement(const json& j, const std::string& where,
                                           const std::string& base_dir) {
  RETURN_IF_ERROR(CheckObject(j, where));
  ASSIGN_OR_RETURN(auto type, StringField(j, where, "type", true));
  PolicyRequirement req;
  if (*type == "insecureAcceptAnything" || *type == "reject") {
    req.type = *type == "reject" ? PolicyRequirement::Type::kReject
                                 : PolicyRequirement::Type::kInsecureAcceptAnything;
    RETURN_IF_ERROR(OnlyFields(j, where, {"type"}));
  } else if (*type == "signedBy") {
    req.type = PolicyRequirement::Type::kSignedBy;
    RETURN_IF_ERROR(OnlyFields(
        j, where, {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"}));
    ASSIGN_OR_RETURN(auto key_type, StringField(j, where, "keyType", true));
    // containers/image parses these four and evaluates only GPGKeys; so does regfs.
    if (*key_type != "GPGKeys" && *key_type != "signedByGPGKeys" &&
        *key_type != "X509Certificates" && *key_type != "signedByX509CAs") {
      return Bad(Field(where, "keyType"), "unrecognized keyType " + Quoted(*key_type));
    }
    req.key_type = *key_type;
    RETURN_IF_ERROR(ParseSignedIdentityField(j, where, &req));
    RETURN_IF_ERROR(ParseKeySources(j, where, base_dir, /*allow_datas=*/false, &req));
  } else if (*type == "sigstoreSigned") {
    req.type = PolicyRequirement::Type::kSigstoreSigned;
    RETURN_IF_ERROR(OnlyFields(j, where,
                               {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio",
                                "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData",
                                "rekorPublicKeyDatas", "pki", "signedIdentity"}));
    // Keyless and transparency-log verification are refused, never ignored (DESIGN).
    for (const char* f : {"fulcio", "pki", "rekorPublicKeyPath", "rekorPublicKeyPaths",
                          "rekorPublicKeyData", "rekorPublicKeyDatas"}) {
      if (j.contains(f)) {
        return MakeError(ENOTSUP, "policy: " + Field(where, f) + ": " + Quoted(f) +
                                      " is not supported (only public keys are: keyPath, "
                                      "keyPaths, keyData, keyDatas)");
      }
    }
    RETURN_IF_ERROR(ParseSignedIdentityField(j, where, &req));
    RETURN_IF_ERROR(ParseKeySources(j, where, base_dir, /*allow_datas=*/true, &req));
  } else if (*type == "signedBaseLayer") {
    req.type = PolicyRequirement::Type::kSignedBaseLayer;
    RETURN_IF_ERROR(OnlyFields(j, where, {"type", "baseLayerIdentity"}));
    if (!j.contains("baseLayerIdentity")) {
      return Bad(where, "missing required field \"baseLayerIdentity\"");
    }
    ASSIGN_OR_RETURN(req.identity,
                     ParseIdentity(j["baseLayerIdentity"], Field(where, "baseLayerIdentity")));
  } else {
    return Bad(Field(where, "type"), "unknown policy requirement type " + Quoted(*type));
  }
  return req;
}

Result<PolicyRequirements> ParseRequirements(const json& j, const std::string& where,
                                             const std::string& base_dir) {
  if (!j.is_array()) return Bad(where, "expected an array of requirements");
  if (j.empty()) return Bad(where, "the list of requirements must not be empty");
  PolicyRequirements out;
  for (size_t i = 0; i < j.size(); ++i) {
    ASSIGN_OR_RETURN(auto r,
                     ParseRequirement(j[i], where + "[" + std::to_string(i) + "]", base_dir));
    out.push_back(std::move(r));
  }
  return out;
}

// dir: and oci: scopes: absolute, clean paths other than "/".
Status ValidatePathScope(const std::string& scope, const std::string& where) {
  if (scope.empty() || scope[0] != '/') return Bad(where, "scope must be an absolute path");
  if (scope == "/") return Bad(where, "scope \"/\" is not allowed: use the default scope \"\"");
  std::string cleaned = std::filesystem::path(scope).lexically_normal().string();
  while (cleaned.size() > 1 && cleaned.back() == '/') cleaned.pop_back();
  if (cleaned != scope) return Bad(where, "scope is not in canonical form, perhaps " + cleaned);
  return Ok();
}

std::string ScopeWhere(const std::string& transport, const std::string& scope) {
  return "transports." + transport + "[" + Quoted(scope) + "]";
}

Result<std::unique_ptr<Policy::Impl>> ParseImpl(std::string_view text,
                                                const std::string& base_dir) {
  ASSIGN_OR_RETURN(json root, ParseStrictJson(text));
  if (!root.is_object()) return Bad("top level", "expected a JSON object");
  RETURN_IF_ERROR(OnlyFields(root, "top level", {"default", "transports"}));
  auto impl = std::make_unique<Policy::Impl>();
  if (!root.contains("default")) return Bad("top level", "the default policy is missing");
  ASSIGN_OR_RETURN(impl->default_reqs, ParseRequirements(root["default"], "default", base_dir));
  if (root.contains("transports")) {
    const json& ts = root["transports"];
    if (!ts.is_object()) return Bad("transports", "expected a JSON object");
    for (auto t = ts.begin(); t != ts.end(); ++t) {
      const std::string& name = t.key();
      // Scopes of transports regfs doesn't evaluate ("atomic", "containers-storage", …) are
      // kept opaque, as containers/image keeps those of transports it doesn't know.
      if (!t->is_object()) return Bad("transports." + name, "expected a JSON object");
      auto& scopes = impl->transports[name];
      for (auto s = t->begin(); s != t->end(); ++s) {
        std::string where = ScopeWhere(name, s.key());
        if (!s.key().empty() && (name == "dir" || name == "oci")) {
          RETURN_IF_ERROR(ValidatePathScope(s.key(), where));
        }
        ASSIGN_OR_RETURN(scopes[s.key()], ParseRequirements(*s, where, base_dir));
      }
    }
  }
  return impl;
}

std::string ResolvePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) p = path;
  auto resolved = std::filesystem::weakly_canonical(p, ec);
  if (!ec) p = resolved;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// The parent directories of an absolute path, nearest first, without "/".
void AppendParents(std::string path, std::vector<std::string>* out) {
  while (true) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) break;
    path.resize(slash);
    out->push_back(path);
  }
}

// The requirements that apply, and the section they come from.
std::pair<const PolicyRequirements*, std::string> RequirementsFor(const Policy::Impl& p,
                                                                  const ImageReference& ref) {
  std::string transport = PolicyTransportName(ref);
  auto t = p.transports.find(transport);
  if (t != p.transports.end()) {
    for (const std::string& scope : PolicyScopes(ref)) {
      auto s = t->second.find(scope);
      if (s != t->second.end()) return {&s->second, ScopeWhere(transport, scope)};
    }
    auto s = t->second.find("");
    if (s != t->second.end()) return {&s->second, ScopeWhere(transport, "")};
  }
  return {&p.default_reqs, "default"};
}

std::string ImageName(const ImageReference& ref) { return ref.String(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public parsing and lookup.

Result<Policy> Policy::Parse(std::string_view text, const std::string& base_dir) {
  ASSIGN_OR_RETURN(auto impl, ParseImpl(text, base_dir));
  return Policy(std::move(impl));
}

Result<std::string> DefaultPolicyPath() {
  std::string user;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    user = std::string(home) + "/.config/containers/policy.json";
    if (PathExists(user)) return user;
  }
  const std::string system = "/etc/containers/policy.json";
  if (PathExists(system)) return system;
  return MakeError(ENOENT, "no policy.json file found at any of the following: " +
                               (user.empty() ? "" : Quoted(user) + ", ") + Quoted(system));
}

Result<Policy> Policy::Load(const std::string& path) {
  std::string file = path;
  if (file.empty()) {
    ASSIGN_OR_RETURN(file, DefaultPolicyPath());
  }
  auto text = ReadFileBounded(file, kMaxPolicySize);
  if (!text.ok()) return Annotate(std::move(text).error(), "reading policy " + file);
  // Relative key paths stay relative to the working directory, as containers/image reads them.
  auto impl = ParseImpl(*text, "");
  if (!impl.ok()) return Annotate(std::move(impl).error(), "invalid policy in " + Quoted(file));
  return Policy(std::move(impl).value());
}

Policy Policy::InsecureAcceptAnything() {
  auto impl = std::make_unique<Impl>();
  PolicyRequirement r;
  r.type = PolicyRequirement::Type::kInsecureAcceptAnything;
  impl->default_reqs.push_back(std::move(r));
  return Policy(std::move(impl));
}

Result<SignedIdentityRule> SignedIdentityRule::Parse(std::string_view text) {
  ASSIGN_OR_RETURN(json j, ParseStrictJson(text));
  return ParseIdentity(j, "signedIdentity");
}

std::string SignedIdentityRule::Name() const {
  switch (kind) {
    case Kind::kMatchExact:
      return "matchExact";
    case Kind::kMatchRepoDigestOrExact:
      return "matchRepoDigestOrExact";
    case Kind::kMatchRepository:
      return "matchRepository";
    case Kind::kExactReference:
      return "exactReference";
    case Kind::kExactRepository:
      return "exactRepository";
    case Kind::kRemapIdentity:
      return "remapIdentity";
  }
  return {};
}

bool SignedIdentityRule::Matches(const ImageReference& image,
                                 std::string_view signed_reference) const {
  std::optional<Named> sig = ParseNamed(signed_reference);
  if (!sig) return false;
  switch (kind) {
    case Kind::kMatchExact: {
      auto intended = ImageNamed(image);
      return intended && ExactMatch(*intended, *sig);
    }
    case Kind::kMatchRepoDigestOrExact: {
      auto intended = ImageNamed(image);
      return intended && RepoDigestOrExactMatch(*intended, *sig);
    }
    case Kind::kMatchRepository: {
      auto intended = ImageNamed(image);
      return intended && sig->Name() == intended->Name();
    }
    case Kind::kExactReference: {
      auto intended = ParseNamed(docker_reference);
      return intended && ExactMatch(*intended, *sig);
    }
    case Kind::kExactRepository: {
      auto intended = ParseNamed(docker_repository);
      return intended && sig->Name() == intended->Name();
    }
    case Kind::kRemapIdentity: {
      auto intended = ImageNamed(image);
      if (!intended) return false;
      if (RefMatchesPrefix(intended->Name(), prefix)) {
        std::string s = intended->String();
        std::string remapped = signed_prefix + s.substr(prefix.size());
        auto re = ParseNamed(remapped);
        // Like reference.ParseNamed: the rewritten reference must already be canonical.
        if (!re || re->name_only || re->String() != remapped) return false;
        intended = std::move(re);
      }
      return RepoDigestOrExactMatch(*intended, *sig);
    }
  }
  return false;
}

std::string PolicyTransportName(const ImageReference& ref) {
  switch (ref.transport) {
    case Transport::kDocker:
      return "docker";
    case Transport::kDir:
      return "dir";
    case Transport::kOci:
      return "oci";
    case Transport::kDockerDaemon:
      return "docker-daemon";
    case Transport::kOciArchive:
      return "oci-archive";
    case Transport::kDockerArchive:
      return "docker-archive";
  }
  return {};
}

std::vector<std::string> PolicyScopes(const ImageReference& ref) {
  std::vector<std::string> out;
  if (ref.transport == Transport::kDockerDaemon) {
    // A named image is scoped as its docker reference is; an image ID has no namespace, so only
    // the transport's "" scope applies to it (containers/image).
    if (!ref.daemon_image_id.empty()) return out;
    ImageReference named = ref;
    named.transport = Transport::kDocker;
    return PolicyScopes(named);
  }
  switch (ref.transport) {
    case Transport::kDocker: {
      const DockerReference& d = ref.docker;
      std::string name = d.Name();
      if (!d.digest.empty()) {
        out.push_back(name + "@" + d.digest);
      } else {
        out.push_back(name + ":" + (d.tag.empty() ? std::string("latest") : d.tag));
      }
      // The repository, its parent namespaces and the host.
      std::string n = name;
      while (true) {
        out.push_back(n);
        size_t slash = n.rfind('/');
        if (slash == std::string::npos) break;
        n.resize(slash);
      }
      // "*.example.com" for each domain suffix of the host (port dropped).
      if (n.size() > 0 && n[0] != '[') {
        size_t colon = n.find(':');
        if (colon != std::string::npos) n.resize(colon);
        while (true) {
          size_t dot = n.find('.');
          if (dot == std::string::npos) break;
          n = n.substr(dot + 1);
          out.push_back("*." + n);
        }
      }
      break;
    }
    case Transport::kDir: {
      std::string path = ResolvePath(ref.path);
      out.push_back(path);
      AppendParents(path, &out);
      break;
    }
    case Transport::kDockerArchive:
      // containers/image gives docker-archive: no scope but the transport's default "".
      break;
    case Transport::kOci:
    case Transport::kOciArchive: {
      // The reference within the layout is not part of the identity (containers/image: "dir:x"
      // and "dir:" may name the same image).
      std::string path = ResolvePath(ref.path);
      out.push_back(path);
      AppendParents(path, &out);
      break;
    }
    case Transport::kDockerDaemon:
      break;
  }
  return out;
}

std::string PolicyScopeFor(const Policy& policy, const ImageReference& ref) {
  return RequirementsFor(policy.impl(), ref).second;
}

bool PolicyNeedsSignatures(const Policy& policy, const ImageReference& ref) {
  for (const PolicyRequirement& r : *RequirementsFor(policy.impl(), ref).first) {
    if (r.type == PolicyRequirement::Type::kSignedBy ||
        r.type == PolicyRequirement::Type::kSigstoreSigned) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

namespace {

struct KeyMaterial {
  std::vector<std::string> datas;  // file contents or inline data
  std::vector<std::string> names;  // "/path/cosign.pub", "keyData", "keyDatas[1]"
};

Result<KeyMaterial> ReadKeys(const PolicyRequirement& req) {
  KeyMaterial km;
  for (const std::string& p : req.key_paths) {
    auto d = ReadFileBounded(p, kMaxKeySize);
    if (!d.ok()) return Annotate(std::move(d).error(), "reading key " + p);
    km.datas.push_back(std::move(d).value());
    km.names.push_back(p);
  }
  for (size_t i = 0; i < req.key_datas.size(); ++i) {
    km.datas.push_back(req.key_datas[i]);
    km.names.push_back(req.key_datas.size() == 1 ? "keyData"
                                                 : "keyDatas[" + std::to_string(i) + "]");
  }
  return km;
}

// One signature against a signedBy or sigstoreSigned requirement.
struct SigResult {
  bool applies = false;  // of the requirement's format
  bool accepted = false;
  std::string reason;  // why not, or what accepted it
};

std::string DescribeIdentityFailure(const SignedIdentityRule& rule, const ImageReference& image,
                                    const std::string& signed_ref) {
  std::string want;
  switch (rule.kind) {
    case SignedIdentityRule::Kind::kExactReference:
      want = rule.docker_reference;
      break;
    case SignedIdentityRule::Kind::kExactRepository:
      want = rule.docker_repository;
      break;
    default:
      if (!HasDockerReference(image)) {
        return "signed identity " + Quoted(signed_ref) + " is not accepted: " + ImageName(image) +
               " has no docker reference for " + rule.Name();
      }
      want = image.docker.String();
      if (rule.kind == SignedIdentityRule::Kind::kRemapIdentity) {
        want += " (remapped " + rule.prefix + " → " + rule.signed_prefix + ")";
      }
  }
  return "signed identity " + Quoted(signed_ref) + " does not match " + want + " (" + rule.Name() +
         ")";
}

// The claims of a verified signature against the manifest and the identity rule.
std::optional<std::string> CheckClaims(const SignedImage& claims, const PolicyRequirement& req,
                                       const PolicyImage& image) {
  std::string actual = DigestOf(image.manifest);
  // As containers/image's manifest.MatchesDigest: the claim is compared with the manifest's
  // sha256 digest, so a claim in any other algorithm never matches.
  if (claims.manifest_digest != actual) {
    return "digest " + claims.manifest_digest + " does not match manifest " + actual;
  }
  if (!req.identity.Matches(image.ref, claims.docker_reference)) {
    return DescribeIdentityFailure(req.identity, image.ref, claims.docker_reference);
  }
  return std::nullopt;
}

struct RequirementResult {
  bool accepted = false;
  std::string reason;
  std::vector<std::string> accepted_by;
};

RequirementResult EvaluateSignatures(const PolicyRequirement& req, const PolicyImage& image,
                                     std::vector<SigResult>* results) {
  const bool sigstore = req.type == PolicyRequirement::Type::kSigstoreSigned;
  const std::string req_name = sigstore ? "sigstoreSigned" : "signedBy";
  RequirementResult rr;
  results->assign(image.signatures.size(), SigResult{});

  // Which signatures this requirement looks at.
  size_t other_format = 0, other_attachments = 0;
  std::vector<size_t> candidates;
  for (size_t i = 0; i < image.signatures.size(); ++i) {
    const Signature& sig = image.signatures[i];
    SigResult& r = (*results)[i];
    if (sigstore && sig.format != Signature::Format::kSigstore) {
      r.reason = "not a sigstore signature";
      other_format++;
    } else if (!sigstore && sig.format != Signature::Format::kSimpleSigning) {
      r.reason = "not a simple signing (GPG) signature";
      other_format++;
    } else if (sigstore && sig.mime_type != kSigstoreSignatureMimeType) {
      r.reason = "not a sigstore signature (MIME type " + Quoted(sig.mime_type) + ")";
      other_attachments++;
    } else {
      r.applies = true;
      candidates.push_back(i);
    }
  }
  if (candidates.empty()) {
    rr.reason = req_name + ": no signature accepted: the image has no " +
                (sigstore ? "sigstore" : "simple signing") + " signatures";
    if (other_format + other_attachments > 0) {
      rr.reason += " (" + std::to_string(other_format) + " of another format";
      if (sigstore) rr.reason += ", " + std::to_string(other_attachments) + " other attachments";
      rr.reason += ")";
    }
    return rr;
  }

  auto keys = ReadKeys(req);
  std::vector<std::string> rejections;
  if (!keys.ok()) {
    for (size_t i : candidates) (*results)[i].reason = keys.error().message;
    rr.reason = req_name + ": " + keys.error().message;
    return rr;
  }
  std::vector<PolicyKeyVerdict> verdicts =
      sigstore ? VerifySigstoreWithKeys(image, candidates, keys->datas, keys->names)
               : VerifySimpleSigningWithKeys(image, candidates, keys->datas, keys->names);
  for (size_t c = 0; c < candidates.size(); ++c) {
    size_t i = candidates[c];
    SigResult& r = (*results)[i];
    const PolicyKeyVerdict& v = verdicts[c];
    std::optional<std::string> why;
    if (!v.verified) {
      why = v.error;
    } else {
      why = CheckClaims(v.claims, req, image);
    }
    if (why) {
      r.reason = *why;
      rejections.push_back("signature " + std::to_string(i + 1) + ": " + *why);
      continue;
    }
    r.accepted = true;
    if (sigstore) {
      r.reason = "sigstore key " + keys->names[std::min(v.key_index, keys->names.size() - 1)];
    } else {
      r.reason = "GPG key " + v.key_fingerprint;
    }
    if (std::find(rr.accepted_by.begin(), rr.accepted_by.end(), r.reason) == rr.accepted_by.end()) {
      rr.accepted_by.push_back(r.reason);
    }
  }
  if (!rr.accepted_by.empty()) {
    rr.accepted = true;
    return rr;
  }
  rr.reason = req_name + ": no signature accepted: ";
  for (size_t k = 0; k < rejections.size(); ++k) rr.reason += (k ? "; " : "") + rejections[k];
  return rr;
}

}  // namespace

PolicyVerdict EvaluatePolicy(const Policy& policy, const PolicyImage& image) {
  PolicyVerdict verdict;
  auto [reqs, section] = RequirementsFor(policy.impl(), image.ref);
  verdict.signatures.resize(image.signatures.size());
  std::vector<bool> sig_applied(image.signatures.size(), false);
  std::vector<std::string> accepted_by;
  for (const PolicyRequirement& req : *reqs) {
    std::string refusal;
    switch (req.type) {
      case PolicyRequirement::Type::kInsecureAcceptAnything:
        accepted_by.push_back("insecureAcceptAnything");
        break;
      case PolicyRequirement::Type::kReject:
        refusal = "rejected by policy (" + section + "): " + ImageName(image.ref);
        break;
      case PolicyRequirement::Type::kSignedBaseLayer:
        refusal = "signedBaseLayer is not implemented (" + section + ")";
        break;
      case PolicyRequirement::Type::kSignedBy:
        if (req.key_type != "GPGKeys") {
          refusal =
              "signedBy: keyType " + Quoted(req.key_type) + " is not supported (" + section + ")";
          break;
        }
        [[fallthrough]];
      case PolicyRequirement::Type::kSigstoreSigned: {
        std::vector<SigResult> results;
        RequirementResult rr = EvaluateSignatures(req, image, &results);
        // A signature's verdict comes from the requirements of its format; another format's
        // "not a … signature" only shows when nothing else looked at it.
        for (size_t i = 0; i < results.size(); ++i) {
          SignatureVerdict& sv = verdict.signatures[i];
          if (results[i].applies) {
            if (!sig_applied[i] || (sv.accepted && !results[i].accepted)) {
              sv.accepted = results[i].accepted;
              sv.reason = results[i].reason;
            }
            sig_applied[i] = true;
          } else if (!sig_applied[i] && sv.reason.empty()) {
            sv.reason = results[i].reason;
          }
        }
        if (rr.accepted) {
          accepted_by.insert(accepted_by.end(), rr.accepted_by.begin(), rr.accepted_by.end());
        } else {
          refusal = rr.reason;
        }
        break;
      }
    }
    if (!refusal.empty()) {
      verdict.accepted = false;
      verdict.reason = refusal;
      return verdict;
    }
  }
  verdict.accepted = true;
  for (size_t k = 0; k < accepted_by.size(); ++k) {
    verdict.accepted_by += (k ? ", " : "") + accepted_by[k];
  }
  return verdict;
}

}  // namespace regfs
