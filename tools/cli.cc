#include "tools/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "transports/manifest/manifest.h"

namespace regfs::cli {

bool Args::Bool(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && it->second == "true";
}

std::string Args::String(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? "" : it->second;
}

int Args::Int(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? 0 : std::stoi(it->second);
}

std::vector<std::string> Args::List(const std::string& name) const {
  auto it = lists_.find(name);
  return it == lists_.end() ? std::vector<std::string>() : it->second;
}

struct Parser {
  static Result<Args> Parse(const Command& cmd, int argc, char** argv) {
    Args args;
    for (const Flag& f : cmd.flags) {
      args.values_[f.name] =
          f.default_value.empty() && f.kind == FlagKind::kBool ? "false" : f.default_value;
    }
    bool only_positional = false;
    for (int i = 0; i < argc; ++i) {
      std::string a = argv[i];
      if (only_positional || a.size() < 2 || a[0] != '-') {
        args.positional_.push_back(a);
        continue;
      }
      if (a == "--") {
        only_positional = true;
        continue;
      }
      std::string name, value;
      bool has_value = false;
      const Flag* flag = nullptr;
      if (a.rfind("--", 0) == 0) {
        name = a.substr(2);
        if (size_t eq = name.find('='); eq != std::string::npos) {
          value = name.substr(eq + 1);
          name = name.substr(0, eq);
          has_value = true;
        }
        for (const Flag& f : cmd.flags) {
          if (f.name == name) flag = &f;
        }
      } else {
        if (a.size() != 2) return MakeError(EINVAL, "unknown shorthand flag \"" + a + "\"");
        for (const Flag& f : cmd.flags) {
          if (f.short_name == a[1]) flag = &f;
        }
      }
      if (!flag) return MakeError(EINVAL, "unknown flag: " + a);
      if (flag->kind == FlagKind::kBool) {
        if (!has_value) value = "true";
        if (value == "1" || value == "t" || value == "T" || value == "TRUE" || value == "True")
          value = "true";
        if (value == "0" || value == "f" || value == "F" || value == "FALSE" || value == "False")
          value = "false";
        if (value != "true" && value != "false") {
          return MakeError(EINVAL, "invalid argument \"" + value + "\" for --" + flag->name);
        }
      } else if (!has_value) {
        if (i + 1 >= argc) return MakeError(EINVAL, "flag needs an argument: " + a);
        value = argv[++i];
      }
      if (flag->kind == FlagKind::kInt) {
        bool digits = !value.empty() && value.size() < 9 &&
                      value.find_first_not_of("0123456789") == std::string::npos;
        if (!digits)
          return MakeError(EINVAL, "invalid argument \"" + value + "\" for --" + flag->name);
      }
      args.values_[flag->name] = value;
      args.given_[flag->name] = true;
      if (flag->kind == FlagKind::kList) args.lists_[flag->name].push_back(value);
    }
    if (args.positional_.size() < cmd.min_args || args.positional_.size() > cmd.max_args) {
      return MakeError(
          EINVAL, "expected " +
                      (cmd.min_args == cmd.max_args
                           ? std::to_string(cmd.min_args)
                           : std::to_string(cmd.min_args) + " to " + std::to_string(cmd.max_args)) +
                      " arguments, got " + std::to_string(args.positional_.size()));
    }
    return args;
  }
};

void AddRegistryFlags(std::vector<Flag>* flags, const std::string& prefix, bool with_authfile) {
  flags->push_back(
      {prefix + "tls-verify", 0, FlagKind::kBool,
       "require HTTPS and verify certificates (loopback registries may use plain HTTP)", "true"});
  flags->push_back(
      {prefix + "creds", 0, FlagKind::kString, "USERNAME[:PASSWORD] for the registry", ""});
  flags->push_back({prefix + "username", 0, FlagKind::kString, "username for the registry", ""});
  flags->push_back({prefix + "password", 0, FlagKind::kString, "password for the registry", ""});
  flags->push_back({prefix + "registry-token", 0, FlagKind::kString,
                    "a Bearer token for the registry (instead of credentials)", ""});
  flags->push_back(
      {prefix + "no-creds", 0, FlagKind::kBool, "access the registry anonymously", ""});
  flags->push_back({prefix + "cert-dir", 0, FlagKind::kString,
                    "use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry",
                    ""});
  if (!prefix.empty()) {
    flags->push_back({prefix + "authfile", 0, FlagKind::kString,
                      "path of the authentication file for this side (default: --authfile)", ""});
  }
  if (with_authfile) {
    flags->push_back(
        {"authfile", 0, FlagKind::kString,
         "path of the authentication file (default: containers-auth.json search order)", ""});
  }
}

void AddDaemonHostFlag(std::vector<Flag>* flags, const std::string& prefix) {
  flags->push_back({prefix + "daemon-host", 0, FlagKind::kString,
                    "use docker daemon host at HOST (docker-daemon: only; default: $DOCKER_HOST, "
                    "else unix:///var/run/docker.sock)",
                    ""});
}

Result<std::string> ManifestFormatFrom(const Args& args) {
  if (!args.Given("format")) return std::string();
  const std::string f = args.String("format");
  if (f == "oci") return std::string(media::kOciManifest);
  if (f == "v2s2") return std::string(media::kDockerV2S2);
  if (f == "v2s1") {
    return MakeError(EINVAL, "--format v2s1: Docker schema 1 manifests are not supported");
  }
  return MakeError(
      EINVAL, "unknown format \"" + f + "\". Choose one of the supported formats: 'oci' or 'v2s2'");
}

void AddRequestFlags(std::vector<Flag>* flags) {
  flags->push_back({"retry-times", 0, FlagKind::kInt, "times to retry a failed request", "3"});
  flags->push_back({"debug", 0, FlagKind::kBool, "log requests to stderr (never credentials)", ""});
}

Result<RegistryTarget> RegistryTargetFrom(const Args& args, const std::string& what) {
  ASSIGN_OR_RETURN(ImageReference ref, ParseImageReference(args.positional()[0]));
  if (ref.transport != Transport::kDocker) {
    return MakeError(EINVAL, what + " works on docker:// references");
  }
  ASSIGN_OR_RETURN(RegistryOptions options, RegistryOptionsFrom(args, ""));
  auto client = std::make_shared<RegistryClient>(ref.docker.registry, options,
                                                 std::make_shared<HttpClient>());
  return RegistryTarget{std::move(ref.docker), std::move(client)};
}

namespace {

// --PREFIXcreds, --PREFIXusername/--PREFIXpassword, --PREFIXno-creds, --PREFIXregistry-token.
Status CredentialFlags(const Args& args, const std::string& prefix, RegistryOptions* out) {
  RegistryOptions& o = *out;
  const std::string creds = args.String(prefix + "creds");
  const bool user = args.Given(prefix + "username"), password = args.Given(prefix + "password");
  if (!creds.empty() && (user || password)) {
    return MakeError(EINVAL, "--" + prefix + "creds can't be used with --" + prefix +
                                 "username or --" + prefix + "password");
  }
  if (user != password) {
    return MakeError(EINVAL, "--" + prefix + "username and --" + prefix + "password go together");
  }
  if (!creds.empty()) {
    ASSIGN_OR_RETURN(Credentials c, ParseCredsFlag(creds));
    o.creds = c;
  } else if (user) {
    o.creds = Credentials{args.String(prefix + "username"), args.String(prefix + "password"), ""};
  }
  o.no_creds = args.Bool(prefix + "no-creds");
  o.registry_token = args.String(prefix + "registry-token");
  if (o.no_creds && (o.creds || !o.registry_token.empty())) {
    return MakeError(EINVAL, "--" + prefix + "no-creds can't be used with credentials or a token");
  }
  return Ok();
}

}  // namespace

Result<RegistryOptions> RegistryOptionsFrom(const Args& args, const std::string& prefix,
                                            bool with_credentials) {
  RegistryOptions o;
  // skopeo's deprecated --tls-verify, where it exists, sets both sides.
  std::string tls =
      !prefix.empty() && !args.Given(prefix + "tls-verify") && args.Given("tls-verify")
          ? "tls-verify"
          : prefix + "tls-verify";
  o.tls_verify = args.Bool(tls);
  o.tls_verify_set = args.Given(tls);
  o.cert_dir = args.String(prefix + "cert-dir");
  o.daemon_host = args.String(prefix + "daemon-host");
  ASSIGN_OR_RETURN(o.registries_conf, LoadRegistriesConf());
  o.authfile =
      args.Given(prefix + "authfile") ? args.String(prefix + "authfile") : args.String("authfile");
  if (with_credentials) RETURN_IF_ERROR(CredentialFlags(args, prefix, &o));
  if (args.Given("retry-times")) o.retry_times = args.Int("retry-times");
  if (args.Bool("debug")) {
    o.log = [](const std::string& line) {
      std::fprintf(stderr, "regfs: debug: %s\n", line.c_str());
    };
  }
  return o;
}

int UsageError(const Command& command, const std::string& message) {
  std::fprintf(stderr, "regfs %s: %s (usage: regfs %s; see regfs %s --help)\n",
               command.name.c_str(), message.c_str(), command.usage.c_str(), command.name.c_str());
  return 2;
}

int Fail(const Command& command, const Error& error) {
  std::string msg = error.message;
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "regfs %s: %s\n", command.name.c_str(), msg.c_str());
  return 1;
}

bool ShowProgress(const Args& args) { return isatty(STDERR_FILENO) && !args.Bool("quiet"); }

std::string FlagColumn(const Flag& f) {
  std::string out = f.short_name ? std::string("-") + f.short_name + ", " : "    ";
  out += "--" + f.name;
  if (f.kind == FlagKind::kString || f.kind == FlagKind::kList) out += " string";
  if (f.kind == FlagKind::kInt) out += " int";
  return out;
}

std::string FlagHelp(const Flag& f) {
  std::string help = f.help;
  if (f.kind == FlagKind::kList) help += " (repeatable)";
  if (f.kind != FlagKind::kBool && !f.default_value.empty())
    help += " (default " + f.default_value + ")";
  if (f.kind == FlagKind::kBool && f.default_value == "true") help += " (default true)";
  return help;
}

void PrintCommandHelp(const Command& cmd) {
  std::cout << cmd.summary << "\n\nUsage:\n  regfs " << cmd.usage << "\n";
  if (!cmd.details.empty()) std::cout << "\n" << cmd.details << "\n";
  std::cout << "\nOptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 10;
  for (const Flag& f : cmd.flags) {
    rows.emplace_back(FlagColumn(f), FlagHelp(f));
    width = std::max(width, rows.back().first.size());
  }
  rows.emplace_back("-h, --help", "show this help");
  for (const auto& [left, help] : rows) {
    std::printf("  %-*s  %s\n", static_cast<int>(width), left.c_str(), help.c_str());
  }
}

int Dispatch(const Command& command, int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a == "-h" || a == "--help") {
      PrintCommandHelp(command);
      return 0;
    }
  }
  auto args = Parser::Parse(command, argc, argv);
  if (!args.ok()) return UsageError(command, args.error().message);
  return command.run(command, *args);
}

}  // namespace regfs::cli
