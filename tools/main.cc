// regfs: container registries as a filesystem, and skopeo-style commands that need no daemon.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"

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
                                             &regfs::cli::StandaloneSignCommand(),
                                             &regfs::cli::StandaloneVerifyCommand(),
                                             nullptr};
  return kCommands;
}

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "regfs: move and inspect container images between registries.\n\n"
               "Usage:\n  regfs COMMAND [options] ARGS\n\nCommands:\n");
  for (const Command* const* c = AllCommands(); *c; ++c) {
    std::fprintf(out, "  %-17s %s\n", (*c)->name.c_str(), (*c)->summary.c_str());
  }
  std::fprintf(out,
               "\nImage references: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, "
               "oci:PATH[:REF]\nRun 'regfs COMMAND --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
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
    if ((*c)->name == name) return regfs::cli::Dispatch(**c, argc - 2, argv + 2);
  }
  std::fprintf(stderr, "regfs: unknown command \"%s\" (see regfs --help)\n", name.c_str());
  return 2;
}
