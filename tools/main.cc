// regfs: container registries as a filesystem, and skopeo-style commands that need no daemon.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "transports/util/file_util.h"

namespace {

using regfs::cli::Command;

const Command* const* AllCommands() {
  static const Command* const kCommands[] = {&regfs::cli::MountCommand(),
                                             &regfs::cli::UnmountCommand(),
                                             &regfs::cli::CopyCommand(),
                                             &regfs::cli::SyncCommand(),
                                             &regfs::cli::InspectCommand(),
                                             &regfs::cli::DeleteCommand(),
                                             &regfs::cli::ListTagsCommand(),
                                             &regfs::cli::ManifestDigestCommand(),
                                             &regfs::cli::LoginCommand(),
                                             &regfs::cli::LogoutCommand(),
                                             &regfs::cli::GenerateKeyCommand(),
                                             &regfs::cli::SignCommand(),
                                             &regfs::cli::VerifyCommand(),
                                             &regfs::cli::StandaloneSignCommand(),
                                             &regfs::cli::StandaloneVerifyCommand(),
                                             nullptr};
  return kCommands;
}

void PrintUsage(FILE* out) {
  std::fprintf(
      out,
      "regfs: move and inspect container images between registries.\n\n"
      "Usage:\n  regfs [--policy FILE | --insecure-policy] [--registries.d DIR] COMMAND [options] "
      "ARGS\n  regfs SOURCE MOUNTPOINT [-o OPTIONS]   (mount(8)'s form: fstab, mount -t "
      "fuse.regfs)\n"
      "\nCommands:\n");
  for (const Command* const* c = AllCommands(); *c; ++c) {
    std::fprintf(out, "  %-17s %s\n", (*c)->name.c_str(), (*c)->summary.c_str());
  }
  std::fprintf(out,
               "\nImage references: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, "
               "oci:PATH[:REF]\nRun 'regfs COMMAND --help' for a command's options.\n");
}

// skopeo's global flags that regfs commands take as their own: given before the command name,
// they are passed to the command when it has them (and ignored, as skopeo ignores them, when
// it does not).
bool HasFlag(const Command& c, const std::string& name) {
  for (const auto& f : c.flags) {
    if (f.name == name) return true;
  }
  return false;
}

// Moves "--policy F", "--policy=F", "--insecure-policy", "--registries.d D" from before the
// command name to after it. Returns false (with a message) for a global flag without a value.
bool TakeGlobalFlags(int* argc, char*** argv, std::vector<std::string>* globals) {
  while (*argc >= 2 && (*argv)[1][0] == '-') {
    std::string a = (*argv)[1];
    std::string name =
        a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    if (a == "--insecure-policy") {
      globals->push_back(a);
    } else if (name == "policy" || name == "registries.d") {
      if (a.find('=') != std::string::npos) {
        globals->push_back(a);
      } else if (*argc >= 3) {
        globals->push_back(a + "=" + (*argv)[2]);
        --*argc;
        ++*argv;
      } else {
        std::fprintf(stderr, "regfs: %s needs a value\n", a.c_str());
        return false;
      }
    } else {
      return true;
    }
    --*argc;
    ++*argv;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
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
    std::printf("regfs version 0.1\n");
    return 0;
  }
  if (name != "mount") {
    // A command lives seconds to minutes with dozens of short transfer threads: glibc's arena
    // per thread would keep each one's freed buffers (about 3 MiB per sync job); two arenas
    // are contended little at these rates. The mount, long-lived and serving many readers,
    // keeps the default.
    mallopt(M_ARENA_MAX, 2);
  }
  for (const Command* const* c = AllCommands(); *c; ++c) {
    if ((*c)->name != name) continue;
    std::vector<char*> args;
    for (std::string& g : globals) {
      std::string flag =
          g.substr(2, g.find('=') == std::string::npos ? std::string::npos : g.find('=') - 2);
      if (HasFlag(**c, flag)) args.push_back(g.data());
    }
    args.insert(args.end(), argv + 2, argv + argc);
    args.push_back(nullptr);
    return regfs::cli::Dispatch(**c, static_cast<int>(args.size()) - 1, args.data());
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
