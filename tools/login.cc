// regfs login HOST[/NAMESPACE]: checks credentials against the registry (GET /v2/ through its
// Basic or Bearer handshake) and only then stores them where skopeo and podman look for them
// (auth_file.h). The password comes from --password, --password-stdin, or a prompt without
// echo when standard input is a terminal.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>

#include "tools/commands.h"
#include "transports/config/auth_file.h"
#include "transports/config/credential_helper.h"

namespace regfs::cli {
namespace {

// Turns terminal echo off for its lifetime. TCSANOW, not TCSAFLUSH: a flush would discard
// what was typed ahead of the prompt (a password typed as soon as "Password: " shows).
class NoEcho {
 public:
  explicit NoEcho(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = tcsetattr(fd_, TCSANOW, &quiet) == 0;
  }
  ~NoEcho() {
    if (active_) tcsetattr(fd_, TCSANOW, &saved_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// One line from standard input, without its line end; EIO at end of input.
Result<std::string> ReadLine() {
  std::string line;
  if (!std::getline(std::cin, line)) return MakeError(EIO, "no input");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> Prompt(const std::string& label, bool echo) {
  Result<std::string> line = MakeError(EIO, "");
  {
    // Echo goes off before the prompt shows, so nothing typed after it is echoed.
    std::optional<NoEcho> quiet;
    if (!echo) quiet.emplace(STDIN_FILENO);
    std::fprintf(stderr, "%s", label.c_str());
    std::fflush(stderr);
    line = ReadLine();
  }
  if (!echo) std::fprintf(stderr, "\n");
  if (!line.ok()) return MakeError(EIO, "no " + label.substr(0, label.find(':')) + " given");
  return line;
}

// All of standard input, less one trailing line end (as podman reads --password-stdin).
Result<std::string> ReadStdin() {
  std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!all.empty() && all.back() == '\n') all.pop_back();
  if (!all.empty() && all.back() == '\r') all.pop_back();
  return all;
}

int Run(const Command& self, const Args& args) {
  auto key = NormalizeLoginKey(args.positional()[0]);
  if (!key.ok()) return Fail(self, key.error());
  const std::string registry = key->substr(0, key->find('/'));
  const std::string authfile = AuthFileWritePath(args.String("authfile"));

  if (args.Bool("get-login")) {
    auto existing = CredentialsForKey(authfile, *key, RunCredentialHelper);
    if (!existing.ok()) return Fail(self, existing.error());
    if (!*existing || (*existing)->username.empty()) {
      return Fail(self, MakeError(ENOENT, "not logged into " + *key));
    }
    std::printf("%s\n", (*existing)->username.c_str());
    return 0;
  }

  const bool terminal = isatty(STDIN_FILENO) == 1;
  if (args.Bool("password-stdin") && args.Given("password")) {
    return Fail(self, MakeError(EINVAL, "--password and --password-stdin are mutually exclusive"));
  }
  Credentials creds;
  creds.username = args.String("username");
  if (creds.username.empty()) {
    if (!terminal || args.Bool("password-stdin")) {
      return Fail(self, MakeError(EINVAL, "a username is needed: pass --username"));
    }
    auto user = Prompt("Username: ", true);
    if (!user.ok()) return Fail(self, user.error());
    creds.username = *user;
  }
  if (creds.username.empty()) return Fail(self, MakeError(EINVAL, "the username is empty"));
  if (args.Bool("password-stdin")) {
    auto pw = ReadStdin();
    if (!pw.ok()) return Fail(self, pw.error());
    creds.password = *pw;
  } else if (args.Given("password")) {
    creds.password = args.String("password");
  } else if (terminal) {
    auto pw = Prompt("Password: ", false);
    if (!pw.ok()) return Fail(self, pw.error());
    creds.password = *pw;
  } else {
    return Fail(self, MakeError(EINVAL, "no password: pass --password-stdin or run in a terminal"));
  }
  if (creds.password.empty()) return Fail(self, MakeError(EINVAL, "the password is empty"));

  auto opts = RegistryOptionsFrom(args, "", /*with_credentials=*/false);
  if (!opts.ok()) return Fail(self, opts.error());
  opts->creds = creds;
  RegistryClient client(registry, *opts, std::make_shared<HttpClient>());
  Status checked = client.CheckLogin();
  if (!checked.ok()) {
    Error e = checked.error();
    if (e.errnum == EACCES) {
      e.message = "logging into \"" + *key + "\": invalid username/password (" + e.message + ")";
    } else {
      e = Annotate(e, "logging into \"" + *key + "\"");
    }
    return Fail(self, e);
  }
  Status stored = StoreCredentials(authfile, *key, creds, RunCredentialHelper);
  if (!stored.ok()) return Fail(self, stored.error());
  std::printf("Login Succeeded!\n");
  return 0;
}

}  // namespace

const Command& LoginCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "login";
    c.usage = "login [options] HOST[/NAMESPACE]";
    c.summary = "Log in to a registry: check credentials, then store them in auth.json";
    c.details =
        "The credentials are checked with the registry first; nothing is written when it refuses\n"
        "them. They go to --authfile, else $REGISTRY_AUTH_FILE, else\n"
        "$XDG_RUNTIME_DIR/containers/auth.json (else /run/containers/$UID/auth.json), as skopeo\n"
        "and podman keep them (0600), or to the credential helper that file's credHelpers names\n"
        "for the registry. Without --password or --password-stdin the password is asked for\n"
        "(without echo) when standard input is a terminal.";
    c.flags = {
        {"username", 'u', FlagKind::kString, "the username", ""},
        {"password", 'p', FlagKind::kString,
         "the password (visible to other users: prefer "
         "--password-stdin)",
         ""},
        {"password-stdin", 0, FlagKind::kBool, "read the password from standard input", ""},
        {"get-login", 0, FlagKind::kBool, "print the username stored for the registry", ""},
        {"authfile", 0, FlagKind::kString, "path of the authentication file to write", ""},
        {"tls-verify", 0, FlagKind::kBool,
         "require HTTPS and verify certificates (loopback registries may use plain HTTP)", "true"},
        {"cert-dir", 0, FlagKind::kString,
         "use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry", ""},
        {"debug", 0, FlagKind::kBool, "log requests to stderr (never credentials)", ""},
    };
    c.min_args = c.max_args = 1;
    c.operands = Operands::kWords;  // HOST[/NAMESPACE]
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
