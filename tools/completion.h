// Shell completion scripts for bash and zsh, written from the command and flag tables the
// parser uses (and the transports ParseImageReference knows), so that they cannot drift from
// what regfs accepts: commands, each command's flags and their short forms, transports for
// image arguments, and file paths for path-like arguments and flag values.
#pragma once

#include <span>
#include <string>

#include "tools/cli.h"

namespace regfs::cli {

// `shell` is "bash" or "zsh".
std::string CompletionScript(const std::string& shell, std::span<const Command* const> commands);

}  // namespace regfs::cli
