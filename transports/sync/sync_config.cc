#include "transports/sync/sync_config.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <map>
#include <utility>

#include "transports/config/yaml_util.h"
#include "transports/types/image_reference.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs {
namespace {

constexpr int64_t kMaxSyncYamlSize = int64_t{16} << 20;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Error Bad(const std::string& context, const std::string& message, const YAML::Node& at) {
  return YamlError(context, message, at);
}

const char* KindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a string";
    default:
      return "null";
  }
}

// The entries of a mapping (null is an empty one), keys as strings; duplicate keys are an
// error, as they are for yaml.v3.
Result<std::vector<std::pair<std::string, YAML::Node>>> Entries(const YAML::Node& n,
                                                                const std::string& context) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  if (n.IsNull()) return out;
  if (!n.IsMap()) return Bad(context, std::string("must be a mapping, not ") + KindName(n), n);
  std::map<std::string, YAML::Node> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      return Bad(context, std::string("a key is ") + KindName(kv.first) + ", not a string",
                 kv.first);
    }
    const std::string& key = kv.first.Scalar();
    if (seen.count(key) != 0) {
      return Bad(context, "key " + Quote(key) + " appears twice", kv.first);
    }
    seen.emplace(key, kv.first);
    out.emplace_back(key, kv.second);
  }
  return out;
}

// A scalar of any type, as its text; null is "".
Result<std::string> String(const YAML::Node& n, const std::string& context) {
  if (n.IsNull()) return std::string();
  if (!n.IsScalar()) return Bad(context, std::string("must be a string, not ") + KindName(n), n);
  return n.Scalar();
}

// A list of scalars; null is an empty list.
Result<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& context) {
  std::vector<std::string> out;
  if (n.IsNull()) return out;
  if (!n.IsSequence()) {
    return Bad(context, std::string("must be a list of strings, not ") + KindName(n), n);
  }
  for (const YAML::Node& item : n) {
    if (!item.IsScalar()) {
      return Bad(context, std::string("list items must be strings, not ") + KindName(item), item);
    }
    out.push_back(item.Scalar());
  }
  return out;
}

Result<std::optional<bool>> Bool(const YAML::Node& n, const std::string& context) {
  return YamlBool(n, context, "must be true or false");
}

Status ValidRepositoryPath(std::string_view path, const std::string& context, const char* what,
                           const YAML::Node& at) {
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view c =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!IsValidRepositoryComponent(c)) {
      return Bad(context,
                 Quote(path) + " is not a valid " + what +
                     " (lowercase letters, digits and . _ - separators, components joined by /)",
                 at);
    }
    if (slash == std::string_view::npos) return Ok();
    start = slash + 1;
  }
}

Status ValidRegistryName(const std::string& name, const YAML::Node& at) {
  size_t slash = name.find('/');
  std::string context = "registry " + Quote(name);
  if (!IsValidRegistryHost(std::string_view(name).substr(0, slash))) {
    return Bad(context, "not a valid registry host[:port]", at);
  }
  if (slash == std::string::npos) return Ok();
  return ValidRepositoryPath(std::string_view(name).substr(slash + 1), context, "namespace", at);
}

// `pattern` compiled, or why it is no regular expression.
Result<std::shared_ptr<const re2::RE2>> CompileRegex(const std::string& pattern) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (!re->ok()) {
    return MakeError(EINVAL, "bad regular expression " + Quote(pattern) + ": " + re->error());
  }
  return re;
}

Status ValidRegex(const std::string& pattern, const std::string& context, const YAML::Node& at) {
  auto re = CompileRegex(pattern);
  if (!re.ok()) return Bad(context, re.error().message, at);
  return Ok();
}

// include / exclude / platforms, as a registry or a repository gives them.
struct Filters {
  std::optional<std::vector<std::string>> include, exclude, platforms;
};

// Reads `key` into `f` if it is one of the filter keys; false if it is not.
Result<bool> ReadFilterKey(const std::string& key, const YAML::Node& value,
                           const std::string& context, Filters* f) {
  std::optional<std::vector<std::string>>* slot = key == "include"     ? &f->include
                                                  : key == "exclude"   ? &f->exclude
                                                  : key == "platforms" ? &f->platforms
                                                                       : nullptr;
  if (slot == nullptr) return false;
  std::string where = context + ", " + key;
  ASSIGN_OR_RETURN(std::vector<std::string> list, StringList(value, where));
  if (key == "platforms") {
    for (const std::string& p : list) {
      auto parsed = ParsePlatform(p);
      if (!parsed.ok()) return Bad(where, parsed.error().message, value);
    }
  } else {
    for (const std::string& p : list) RETURN_IF_ERROR(ValidRegex(p, where, value));
  }
  *slot = std::move(list);
  return true;
}

class Parser {
 public:
  explicit Parser(SyncConfig* out) : out_(out) {}

  Status Document(const YAML::Node& root) {
    if (!root.IsNull() && !root.IsMap()) {
      return Bad("sync configuration",
                 std::string("must be a mapping of registry names, not ") + KindName(root), root);
    }
    ASSIGN_OR_RETURN(auto registries, Entries(root, "sync configuration"));
    for (auto& [name, value] : registries) {
      ASSIGN_OR_RETURN(SyncRegistry r, Registry(name, value));
      out_->registries.push_back(std::move(r));
    }
    std::sort(out_->registries.begin(), out_->registries.end(),
              [](const SyncRegistry& a, const SyncRegistry& b) { return a.name < b.name; });
    return Ok();
  }

 private:
  void Unknown(const std::string& context, const std::string& key, const YAML::Node& at) {
    out_->warnings.push_back(context + ": unknown key " + Quote(key) + " ignored" + YamlWhere(at));
  }

  Result<SyncRegistry> Registry(const std::string& name, const YAML::Node& value) {
    SyncRegistry r;
    r.name = name;
    std::string context = "registry " + Quote(name);
    RETURN_IF_ERROR(ValidRegistryName(name, value));
    ASSIGN_OR_RETURN(auto entries, Entries(value, context));
    Filters defaults;
    std::vector<std::pair<SyncRepository, Filters>> images, by_regex, by_semver;
    for (auto& [key, v] : entries) {
      if (key == "images") {
        RETURN_IF_ERROR(Repositories(context, key, v, &images));
      } else if (key == "images-by-tag-regex") {
        RETURN_IF_ERROR(Repositories(context, key, v, &by_regex));
      } else if (key == "images-by-semver") {
        RETURN_IF_ERROR(Repositories(context, key, v, &by_semver));
      } else if (key == "credentials") {
        ASSIGN_OR_RETURN(r.credentials, Credentials(context + ", credentials", v));
      } else if (key == "tls-verify") {
        ASSIGN_OR_RETURN(r.tls_verify, Bool(v, context + ", tls-verify"));
      } else if (key == "cert-dir") {
        ASSIGN_OR_RETURN(r.cert_dir, String(v, context + ", cert-dir"));
      } else {
        ASSIGN_OR_RETURN(bool filter, ReadFilterKey(key, v, context, &defaults));
        if (!filter) Unknown(context, key, v);
      }
    }
    for (auto* group : {&images, &by_regex, &by_semver}) {
      std::sort(group->begin(), group->end(),
                [](const auto& a, const auto& b) { return a.first.name < b.first.name; });
      for (auto& [repo, own] : *group) {
        auto pick = [](std::optional<std::vector<std::string>>& mine,
                       const std::optional<std::vector<std::string>>& registry_default) {
          if (mine) return std::move(*mine);
          return registry_default.value_or(std::vector<std::string>());
        };
        repo.include = pick(own.include, defaults.include);
        repo.exclude = pick(own.exclude, defaults.exclude);
        repo.platforms = pick(own.platforms, defaults.platforms);
        r.repositories.push_back(std::move(repo));
      }
    }
    return r;
  }

  Result<std::optional<SyncCredentials>> Credentials(const std::string& context,
                                                     const YAML::Node& value) {
    ASSIGN_OR_RETURN(auto entries, Entries(value, context));
    SyncCredentials c;
    for (auto& [key, v] : entries) {
      if (key == "username") {
        ASSIGN_OR_RETURN(c.username, String(v, context + ", username"));
      } else if (key == "password") {
        ASSIGN_OR_RETURN(c.password, String(v, context + ", password"));
      } else {
        Unknown(context, key, v);
      }
    }
    if (c.username.empty() && c.password.empty()) return std::optional<SyncCredentials>();
    return std::optional<SyncCredentials>(std::move(c));
  }

  // One of images / images-by-tag-regex / images-by-semver.
  Status Repositories(const std::string& registry_context, const std::string& section,
                      const YAML::Node& value,
                      std::vector<std::pair<SyncRepository, Filters>>* out) {
    std::string context = registry_context + ", " + section;
    ASSIGN_OR_RETURN(auto entries, Entries(value, context));
    for (auto& [name, v] : entries) {
      std::string repo_context = context + " " + Quote(name);
      RETURN_IF_ERROR(ValidRepositoryPath(name, context, "repository name", v));
      SyncRepository repo;
      repo.name = name;
      Filters own;
      // The value skopeo takes (a list or a string), or regfs's mapping.
      YAML::Node plain = v;
      bool have_plain = !v.IsMap();
      if (v.IsMap()) {
        const char* main_key = section == "images"                ? "tags"
                               : section == "images-by-tag-regex" ? "regex"
                                                                  : "semver";
        ASSIGN_OR_RETURN(auto fields, Entries(v, repo_context));
        for (auto& [key, fv] : fields) {
          if (key == main_key) {
            plain = fv;
            have_plain = true;
          } else if (key == "target") {
            ASSIGN_OR_RETURN(repo.target, String(fv, repo_context + ", target"));
            RETURN_IF_ERROR(
                ValidRepositoryPath(repo.target, repo_context + ", target", "repository name", fv));
          } else {
            ASSIGN_OR_RETURN(bool filter, ReadFilterKey(key, fv, repo_context, &own));
            if (!filter) Unknown(repo_context, key, fv);
          }
        }
        if (!have_plain && section != "images") {
          return Bad(repo_context, std::string("the mapping needs a \"") + main_key + "\" key", v);
        }
        if (have_plain) repo_context += std::string(", ") + main_key;
      }
      if (section == "images") {
        if (have_plain) {
          ASSIGN_OR_RETURN(std::vector<std::string> refs, StringList(plain, repo_context));
          for (const std::string& ref : refs) {
            bool ok = ref.find(':') != std::string::npos ? IsSha256Digest(ref) : IsValidTag(ref);
            if (!ok) {
              return Bad(repo_context, Quote(ref) + " is neither a valid tag nor a sha256 digest",
                         plain);
            }
            if (std::find(repo.refs.begin(), repo.refs.end(), ref) == repo.refs.end()) {
              repo.refs.push_back(ref);
            }
          }
        }
        repo.kind =
            repo.refs.empty() ? SyncRepository::Kind::kAllTags : SyncRepository::Kind::kRefs;
      } else if (section == "images-by-tag-regex") {
        repo.kind = SyncRepository::Kind::kTagRegex;
        ASSIGN_OR_RETURN(repo.tag_regex, String(plain, repo_context));
        RETURN_IF_ERROR(ValidRegex(repo.tag_regex, repo_context, plain));
      } else {
        repo.kind = SyncRepository::Kind::kSemver;
        ASSIGN_OR_RETURN(repo.semver, String(plain, repo_context));
        auto c = SemverConstraint::Parse(repo.semver);
        if (!c.ok()) return Bad(repo_context, c.error().message, plain);
      }
      out->emplace_back(std::move(repo), std::move(own));
    }
    return Ok();
  }

  SyncConfig* out_;
};

// Whether the whole of `tag` matches one of `patterns`.
bool AnyMatch(const std::vector<std::shared_ptr<const re2::RE2>>& patterns,
              const std::string& tag) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const auto& re) { return re2::RE2::FullMatch(tag, *re); });
}

}  // namespace

Result<SyncConfig> ParseSyncYaml(std::string_view text) {
  SyncConfig out;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    RETURN_IF_ERROR(Parser(&out).Document(root));
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? std::string()
                                         : "line " + std::to_string(e.mark.line + 1) + ", column " +
                                               std::to_string(e.mark.column + 1) + ": ";
    return MakeError(EINVAL, "sync configuration is not valid YAML: " + where + e.msg);
  } catch (const std::exception& e) {
    return MakeError(EINVAL, std::string("sync configuration: ") + e.what());
  }
  return out;
}

Result<SyncConfig> LoadSyncYaml(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileBounded(path, kMaxSyncYamlSize));
  auto config = ParseSyncYaml(text);
  if (!config.ok()) return Annotate(std::move(config).error(), path);
  return config;
}

Result<TagSelector> TagSelector::For(const SyncRepository& repo) {
  TagSelector s;
  s.kind_ = repo.kind;
  s.refs_ = repo.refs;
  std::string context = "repository " + Quote(repo.name);
  auto compile = [&](const std::string& pattern,
                     const char* what) -> Result<std::shared_ptr<const re2::RE2>> {
    auto re = CompileRegex(pattern);
    if (!re.ok()) return Annotate(std::move(re).error(), context + ", " + what);
    return re;
  };
  if (repo.kind == SyncRepository::Kind::kTagRegex) {
    ASSIGN_OR_RETURN(s.tag_regex_, compile(repo.tag_regex, "tag regex"));
  } else if (repo.kind == SyncRepository::Kind::kSemver) {
    auto c = SemverConstraint::Parse(repo.semver);
    if (!c.ok()) return Annotate(std::move(c).error(), context);
    s.semver_ = std::move(c).value();
  }
  for (const std::string& p : repo.include) {
    ASSIGN_OR_RETURN(auto re, compile(p, "include"));
    s.include_.push_back(std::move(re));
  }
  for (const std::string& p : repo.exclude) {
    ASSIGN_OR_RETURN(auto re, compile(p, "exclude"));
    s.exclude_.push_back(std::move(re));
  }
  return s;
}

bool TagSelector::Selects(const std::string& tag) const {
  switch (kind_) {
    case SyncRepository::Kind::kAllTags:
      break;
    case SyncRepository::Kind::kRefs:
      if (tag.find(':') != std::string::npos ||
          std::find(refs_.begin(), refs_.end(), tag) == refs_.end()) {
        return false;
      }
      break;
    case SyncRepository::Kind::kTagRegex:
      if (!re2::RE2::PartialMatch(tag, *tag_regex_)) return false;
      break;
    case SyncRepository::Kind::kSemver: {
      auto v = ParseSemver(tag);
      if (!v.ok() || !semver_->Check(*v)) return false;
      break;
    }
  }
  if (!include_.empty() && !AnyMatch(include_, tag)) return false;
  return !AnyMatch(exclude_, tag);
}

}  // namespace regfs
