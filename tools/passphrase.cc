#include "tools/passphrase.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

constexpr int64_t kMaxPassphraseFileSize = 1 << 20;

// Echo off on a terminal for as long as it lives (what was typed ahead is kept).
class NoEcho {
 public:
  explicit NoEcho(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0) return;
    struct termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    active_ = tcsetattr(fd_, TCSANOW, &quiet) == 0;
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;
  ~NoEcho() {
    if (active_) tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

std::string FirstLine(const std::string& text) {
  size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

Result<std::string> Prompt(const char* question) {
  std::fprintf(stderr, "%s", question);
  std::fflush(stderr);
  NoEcho quiet(STDIN_FILENO);
  std::string line;
  char c = 0;
  for (;;) {
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("reading the passphrase", "standard input");
    if (n == 0 || c == '\n') break;
    line.push_back(c);
  }
  return line;
}

}  // namespace

void AddPassphraseFlag(std::vector<Flag>* flags) {
  flags->push_back({"passphrase-file", 0, FlagKind::kString,
                    "read the private key's passphrase from the first line of FILE", ""});
}

Result<std::string> ReadPassphrase(const Args& args, bool confirm, const std::string& flag) {
  if (args.Given(flag)) {
    const std::string path = args.String(flag);
    ASSIGN_OR_RETURN(std::string text, ReadFileBounded(path, kMaxPassphraseFileSize));
    return FirstLine(text);
  }
  if (const char* env = std::getenv("COSIGN_PASSWORD")) return std::string(env);
  if (isatty(STDIN_FILENO)) {
    ASSIGN_OR_RETURN(std::string first, Prompt("Enter passphrase for the private key: "));
    if (!confirm) return first;
    ASSIGN_OR_RETURN(std::string again, Prompt("Enter the passphrase again: "));
    if (first != again) return MakeError(EINVAL, "the passphrases do not match");
    return first;
  }
  return MakeError(EINVAL, "no passphrase: pass --" + flag + " or set COSIGN_PASSWORD");
}

}  // namespace regfs::cli
