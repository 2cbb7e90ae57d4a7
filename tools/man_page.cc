#include "tools/man_page.h"

#include <cctype>

#include "tools/commands.h"
#include "transports/types/transport_forms.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

// The characters go-md2man's Markdown reader (blackfriday) takes a backslash escape for: every
// one that could start markup somewhere (emphasis, links, lists, HTML, definition lists).
constexpr std::string_view kMarkdownSpecial = "\\`*_{}[]()#+-.!:|&<>~";

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The title line: .TH NAME 1 "" "regfs VERSION" "regfs Manual" (no date, so that a build
// gives the same page whenever it runs).
std::string TitleBlock(const std::string& page, std::string_view version) {
  return "% " + Upper(page) + " 1 \"\" \"regfs " + std::string(version) + "\" \"regfs Manual\"\n\n";
}

std::string Section(std::string_view title) { return "# " + std::string(title) + "\n\n"; }

// A definition list entry, which go-md2man makes a .TP paragraph: the term on its line, the
// text indented below it.
std::string Entry(const std::string& term, std::string_view text) {
  return term + "\n: " + MarkdownText(text) + "\n\n";
}

std::string Bold(std::string_view text) { return "**" + MarkdownText(text) + "**"; }

std::string FlagTerm(const Flag& f) {
  std::string term;
  if (f.short_name) term = Bold(std::string("-") + f.short_name) + ", ";
  term += Bold("--" + f.name);
  if (f.kind == FlagKind::kString || f.kind == FlagKind::kList) term += " *string*";
  if (f.kind == FlagKind::kInt) term += " *int*";
  return term;
}

std::string Paragraphs(std::string_view text) { return MarkdownText(text) + "\n\n"; }

}  // namespace

std::string MarkdownText(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      // A blank line ends a paragraph; a single newline is a wrapped line of --help's.
      if (i + 1 < text.size() && text[i + 1] == '\n') {
        out += "\n\n";
        while (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      } else {
        out += ' ';
      }
      continue;
    }
    if (kMarkdownSpecial.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string CommandManMarkdown(const Command& command, std::string_view version) {
  const std::string page = "regfs-" + command.name;
  std::string md = TitleBlock(page, version);
  md += Section("NAME") + MarkdownText(page + " - " + command.summary) + "\n\n";
  md += Section("SYNOPSIS") + Bold("regfs " + command.name) + " " +
        MarkdownText(command.usage.substr(command.usage.find(' ') + 1)) + "\n\n";
  md += Section("DESCRIPTION") +
        Paragraphs(command.details.empty() ? command.summary + "." : command.details);
  md += Section("OPTIONS");
  for (const Flag& f : command.flags) md += Entry(FlagTerm(f), FlagHelp(f));
  md += Entry(Bold("-h") + ", " + Bold("--help"), "show this help");
  md += Section("SEE ALSO") + Bold("regfs") + "(1)\n";
  return md;
}

std::string MainManMarkdown(std::span<const Command* const> commands, std::string_view version) {
  std::string md = TitleBlock("regfs", version);
  md += Section("NAME") + MarkdownText(std::string("regfs - ") + kDescription) + "\n\n";
  md += Section("SYNOPSIS") + Bold("regfs") + " " + MarkdownText(kGlobalUsage) + "\n\n" +
        Bold("regfs") + " " + MarkdownText(kMountHelperUsage) + "\n\n";
  md += Section("DESCRIPTION") +
        Paragraphs(std::string("regfs: ") + kDescription +
                   ". Each command has a page of its own, regfs-COMMAND(1), which says what "
                   "regfs COMMAND --help says.");
  md += Section("GLOBAL OPTIONS") +
        Paragraphs("Given before the command name; passed to the command when it has them.");
  for (const Flag& f : GlobalFlags()) md += Entry(FlagTerm(f), FlagHelp(f));
  md += Entry(Bold("-h") + ", " + Bold("--help"), "show the commands");
  md += Entry(Bold("-v") + ", " + Bold("--version"), "print the version");
  md += Section("COMMANDS");
  for (const Command* c : commands) {
    md += Entry(Bold("regfs-" + c->name) + "(1)", c->summary);
  }
  md += Section("IMAGE REFERENCES");
  for (const TransportForm& t : TransportForms()) {
    md += Entry(Bold(std::string(t.form)), t.what);
  }
  for (const Command* c : commands) {
    if (c->name != "mount") continue;
    // What regfs mount --help says of the tree and its options.
    md += Section("THE MOUNT") + Bold("regfs " + c->usage) + "\n\n" + Paragraphs(c->details);
  }
  md += Section("SEE ALSO");
  std::string see_also;
  for (const Command* c : commands) see_also += Bold("regfs-" + c->name) + "(1), ";
  md += see_also + Bold("skopeo") + "(1), " + Bold("containers-policy.json") + "(5), " +
        Bold("containers-registries.conf") + "(5), " + Bold("containers-auth.json") + "(5), " +
        Bold("fstab") + "(5), " + Bold("mount.fuse3") + "(8)\n";
  return md;
}

Status WriteManMarkdown(const std::string& dir, std::span<const Command* const> commands,
                        std::string_view version) {
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/regfs.1.md", MainManMarkdown(commands, version), 0644));
  for (const Command* c : commands) {
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/regfs-" + c->name + ".1.md",
                                    CommandManMarkdown(*c, version), 0644));
  }
  return Ok();
}

}  // namespace regfs::cli
