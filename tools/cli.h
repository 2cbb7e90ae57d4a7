// The command-line frame every regfs command shares: flag parsing in skopeo's (pflag's) style,
// --help, and how results and errors reach the user (exit 0 ok, 1 failed, 2 usage).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "transports/docker/registry_client.h"
#include "transports/types/image_reference.h"
#include "transports/util/result.h"

namespace regfs::cli {

// kList: a string flag that may be given several times; each value is kept, in order.
enum class FlagKind { kBool, kString, kInt, kList };

struct Flag {
  std::string name;  // without "--"
  char short_name = 0;
  FlagKind kind = FlagKind::kBool;
  std::string help;
  std::string default_value;  // as text; bools "false" unless given
};

class Args {
 public:
  bool Bool(const std::string& name) const;
  std::string String(const std::string& name) const;
  int Int(const std::string& name) const;
  std::vector<std::string> List(const std::string& name) const;
  bool Given(const std::string& name) const { return given_.count(name) > 0; }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend struct Parser;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
  std::map<std::string, std::vector<std::string>> lists_;
  std::vector<std::string> positional_;
};

// What a command's arguments are, for shell completion: image references (a transport, then a
// path after dir: or oci:), directories, files, or words of their own (a host name).
enum class Operands { kFiles, kImages, kDirectories, kWords };

struct Command {
  std::string name;
  std::string usage;    // "copy [options] SOURCE DESTINATION"
  std::string summary;  // one line
  std::string details;  // a paragraph or two for --help
  std::vector<Flag> flags;
  size_t min_args = 0;
  size_t max_args = 0;
  Operands operands = Operands::kFiles;
  int (*run)(const Command& self, const Args& args) = nullptr;
};

// Flags of commands that talk to registries: --PREFIXtls-verify, --PREFIXcreds,
// --PREFIXcert-dir (PREFIX "", "src-" or "dest-"), and --authfile when `with_authfile`.
void AddRegistryFlags(std::vector<Flag>* flags, const std::string& prefix, bool with_authfile);

// --PREFIXdaemon-host, the Docker engine of docker-daemon: references (RegistryOptionsFrom()
// reads it).
void AddDaemonHostFlag(std::vector<Flag>* flags, const std::string& prefix);

// --retry-times and --debug, which RegistryOptionsFrom() reads.
void AddRequestFlags(std::vector<Flag>* flags);

// -f/--format's value as a manifest media type ("" when not given): oci or v2s2; v2s1 is
// refused (schema 1 is not supported), anything else named.
Result<std::string> ManifestFormatFrom(const Args& args);

// Parses argv (after the command name) and runs the command. Returns the exit status.
int Dispatch(const Command& command, int argc, char** argv);

// Builds registry options from the flags for `prefix`. `with_credentials`: the credential
// flags of AddRegistryFlags() (--PREFIXcreds, --PREFIXusername, …) are read; login, whose
// --username and --password are what it stores, reads its own.
Result<RegistryOptions> RegistryOptionsFrom(const Args& args, const std::string& prefix,
                                            bool with_credentials = true);

// The docker:// image a command (`what`: "delete") is given as its one argument, and a client
// of its registry made with the command's flags.
struct RegistryTarget {
  DockerReference ref;
  std::shared_ptr<RegistryClient> client;
};
Result<RegistryTarget> RegistryTargetFrom(const Args& args, const std::string& what);

// Prints "regfs COMMAND: message (usage: …; see regfs COMMAND --help)" to stderr and returns 2.
int UsageError(const Command& command, const std::string& message);

// Prints "regfs COMMAND: message" on one line to stderr and returns 1.
int Fail(const Command& command, const Error& error);

// True when progress should be printed: stderr is a terminal and -q was not given.
bool ShowProgress(const Args& args);

void PrintCommandHelp(const Command& command);

// A flag as --help and the man pages show it: "-q, --quiet" or "--src-creds string", and its
// help text with "(repeatable)" and the default appended.
std::string FlagColumn(const Flag& flag);
std::string FlagHelp(const Flag& flag);

}  // namespace regfs::cli
