// regfs: container registries as a filesystem, and skopeo-style commands that need no daemon.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/completion.h"
#include "tools/man_page.h"
#include "tools/version.h"
#include "transports/types/transport_forms.h"
#include "transports/util/file_util.h"

namespace {

using regfs::cli::AllCommands;
using regfs::cli::Command;
using regfs::cli::Flag;
using regfs::cli::GlobalFlags;

void PrintUsage(FILE* out) {
  std::fprintf(out, "regfs: %s.\n\nUsage:\n  regfs %s\n  regfs %s   (%s)\n\nCommands:\n",
               regfs::cli::kDescription, regfs::cli::kGlobalUsage, regfs::cli::kMountHelperUsage,
               regfs::cli::kMountHelperSummary);
  for (const Command* c : AllCommands()) {
    std::fprintf(out, "  %-17s %s\n", c->name.c_str(), c->summary.c_str());
  }
  std::fprintf(out, "\nImage references: %s\nRun 'regfs COMMAND --help' for a command's options.\n",
               regfs::TransportList(true).c_str());
}

bool HasFlag(const Command& c, const std::string& name) {
  for (const auto& f : c.flags) {
    if (f.name == name) return true;
  }
  return false;
}

const Flag* GlobalFlag(const std::string& name) {
  for (const Flag& f : GlobalFlags()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Moves the global flags ("--policy F", "--policy=F", "--insecure-policy", "--registries.d D")
// from before the command name to after it. Returns false (with a message) for a global flag
// without a value.
bool TakeGlobalFlags(int* argc, char*** argv, std::vector<std::string>* globals) {
  while (*argc >= 2 && (*argv)[1][0] == '-') {
    std::string a = (*argv)[1];
    if (a.rfind("--", 0) != 0) return true;
    const size_t eq = a.find('=');
    const Flag* flag = GlobalFlag(a.substr(2, eq == std::string::npos ? eq : eq - 2));
    if (!flag) return true;
    if (flag->kind == regfs::cli::FlagKind::kBool || eq != std::string::npos) {
      globals->push_back(a);
    } else if (*argc >= 3) {
      globals->push_back(a + "=" + (*argv)[2]);
      --*argc;
      ++*argv;
    } else {
      std::fprintf(stderr, "regfs: %s needs a value\n", a.c_str());
      return false;
    }
    --*argc;
    ++*argv;
  }
  return true;
}

// The build's own uses of the command tables, kept out of --help: the man pages' Markdown
// (go-md2man makes them roff) and the shell completion scripts.
int GenerateDocs(const std::string& what, int argc, char** argv) {
  if (what == "--generate-man-markdown" && argc == 3) {
    regfs::Status written = regfs::cli::WriteManMarkdown(argv[2], AllCommands(), REGFS_VERSION);
    if (written.ok()) return 0;
    std::fprintf(stderr, "regfs: %s\n", written.error().message.c_str());
    return 1;
  }
  if (what == "--generate-completion" && argc == 3) {
    const std::string shell = argv[2];
    if (shell == "bash" || shell == "zsh") {
      std::fputs(regfs::cli::CompletionScript(shell, AllCommands()).c_str(), stdout);
      return 0;
    }
  }
  std::fprintf(stderr, "regfs: %s DIR | --generate-completion bash|zsh\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strncmp(argv[1], "--generate-", 11) == 0) {
    return GenerateDocs(argv[1], argc, argv);
  }
  std::vector<std::string> globals;
  if (!TakeGlobalFlags(&argc, &argv, &globals)) return 2;
  if (argc < 2) {
    std::fprintf(stderr, "regfs: missing command (see regfs --help)\n");
    return 2;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    PrintUsage(stdout);
    return 0;
  }
  if (name == "-v" || name == "--version" || name == "version") {
    std::printf("regfs version %s\n", REGFS_VERSION);
    return 0;
  }
  if (name != "mount") {
    // A command lives seconds to minutes with dozens of short transfer threads: glibc's arena
    // per thread would keep each one's freed buffers (about 3 MiB per sync job); two arenas
    // are contended little at these rates. The mount, long-lived and serving many readers,
    // keeps the default.
    mallopt(M_ARENA_MAX, 2);
  }
  for (const Command* c : AllCommands()) {
    if (c->name != name) continue;
    std::vector<char*> args;
    for (std::string& g : globals) {
      std::string flag =
          g.substr(2, g.find('=') == std::string::npos ? std::string::npos : g.find('=') - 2);
      if (HasFlag(*c, flag)) args.push_back(g.data());
    }
    args.insert(args.end(), argv + 2, argv + argc);
    args.push_back(nullptr);
    return regfs::cli::Dispatch(*c, static_cast<int>(args.size()) - 1, args.data());
  }
  if (argc >= 3 && argv[2][0] != '-' && regfs::IsDirectory(argv[2])) {
    // mount(8) through mount.fuse3, for an fstab line or mount -t fuse.regfs:
    // "regfs SOURCE MOUNTPOINT [-o OPTIONS]"; the source names nothing.
    std::vector<char*> args(argv + 3, argv + argc);
    args.push_back(argv[2]);
    args.push_back(nullptr);
    return regfs::cli::Dispatch(regfs::cli::MountCommand(), static_cast<int>(args.size()) - 1,
                                args.data());
  }
  std::fprintf(stderr, "regfs: unknown command \"%s\" (see regfs --help)\n", name.c_str());
  return 2;
}
