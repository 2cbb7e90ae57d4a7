// The man pages as Markdown for go-md2man, written from the command tables the parser uses,
// so that they say what --help says: regfs(1) (the commands, global options, image references
// and the mount) and regfs-COMMAND(1) for each command (its usage, details and flags).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "tools/cli.h"
#include "transports/util/result.h"

namespace regfs::cli {

// regfs-COMMAND(1).
std::string CommandManMarkdown(const Command& command, std::string_view version);

// regfs(1).
std::string MainManMarkdown(std::span<const Command* const> commands, std::string_view version);

// Writes DIR/regfs.1.md and DIR/regfs-COMMAND.1.md for each command (DIR is made if missing).
Status WriteManMarkdown(const std::string& dir, std::span<const Command* const> commands,
                        std::string_view version);

// `text` as Markdown that go-md2man renders as the same text: the characters Markdown would
// read as markup escaped, lines joined within a paragraph ("\n\n" separates paragraphs).
std::string MarkdownText(std::string_view text);

}  // namespace regfs::cli
