// regfs logout HOST[/NAMESPACE] | --all: removes stored credentials from the file login writes
// (and from the credential helper it names for the registry).
#include <cstdio>

#include "tools/commands.h"
#include "transports/config/auth_file.h"
#include "transports/config/credential_helper.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  const std::string authfile = AuthFileWritePath(args.String("authfile"));
  if (args.Bool("all")) {
    if (!args.positional().empty()) {
      return Fail(self, MakeError(EINVAL, "--all takes no registry"));
    }
    Status s = RemoveAllCredentials(authfile);
    if (!s.ok()) return Fail(self, s.error());
    std::printf("Removed login credentials for all registries\n");
    return 0;
  }
  if (args.positional().size() != 1) {
    return Fail(self, MakeError(EINVAL, "name one registry (HOST[/NAMESPACE]) or pass --all"));
  }
  auto key = NormalizeLoginKey(args.positional()[0]);
  if (!key.ok()) return Fail(self, key.error());
  auto removed = RemoveCredentials(authfile, *key, RunCredentialHelper);
  if (!removed.ok()) return Fail(self, removed.error());
  if (!*removed) return Fail(self, MakeError(ENOENT, "not logged into " + *key));
  std::printf("Removed login credentials for %s\n", key->c_str());
  return 0;
}

}  // namespace

const Command& LogoutCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "logout";
    c.usage = "logout [options] HOST[/NAMESPACE] | --all";
    c.summary = "Log out of a registry: remove its stored credentials";
    c.details = "Edits the file login writes (see regfs login --help).";
    c.flags = {
        {"all", 'a', FlagKind::kBool, "remove the credentials of every registry", ""},
        {"authfile", 0, FlagKind::kString, "path of the authentication file", ""},
    };
    c.min_args = 0;
    c.max_args = 1;
    c.operands = Operands::kWords;  // HOST[/NAMESPACE]
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
