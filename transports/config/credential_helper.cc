#include "transports/config/credential_helper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "transports/util/file_util.h"
#include "transports/util/json_util.h"

extern char** environ;

namespace regfs {
namespace {

constexpr size_t kMaxHelperOutput = 1 << 20;
constexpr int kHelperTimeoutMs = 30000;

// Writes `data` to a pipe without dying of SIGPIPE when the reader is gone.
bool WriteToPipe(int fd, const std::string& data) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  size_t done = 0;
  bool ok = true;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (!ok && errno == EPIPE) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return ok;
}

// The first line of a helper's complaint, short: enough to say what went wrong.
std::string Complaint(const std::string& output) {
  std::string line = output.substr(0, output.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "…";
  return line;
}

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

}  // namespace

Result<std::string> RunCredentialHelper(const std::string& helper, const std::string& action,
                                        const std::string& input) {
  const std::string program = "docker-credential-" + helper;
  if (helper.empty() || helper.find('/') != std::string::npos) {
    return MakeError(EINVAL, "invalid credential helper name \"" + helper + "\"");
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return SysError("pipe", program);
  UniqueFd in_read(in[0]), in_write(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return SysError("pipe", program);
  UniqueFd out_read(out[0]), out_write(out[1]);

  SpawnActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), in_read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(actions.get(), STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>(action.c_str()), nullptr};
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, program.c_str(), actions.get(), nullptr, argv, environ);
  if (rc != 0) {
    return MakeError(rc == ENOENT ? ENOENT : EIO,
                     "cannot run credential helper " + program + ": " + std::strerror(rc));
  }
  in_read = UniqueFd();
  out_write = UniqueFd();
  bool wrote = WriteToPipe(in_write.get(), input);
  in_write = UniqueFd();

  std::string output;
  bool too_long = false, timed_out = false;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kHelperTimeoutMs);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out_read.get(), POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
    if (output.size() > kMaxHelperOutput) {
      too_long = true;
      break;
    }
  }
  // A helper that closed its output may still linger: it gets until the deadline, no more.
  int status = 0;
  while (true) {
    if (timed_out || too_long) kill(pid, SIGKILL);
    pid_t done = waitpid(pid, &status, (timed_out || too_long) ? 0 : WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (done == 0 && std::chrono::steady_clock::now() >= deadline) timed_out = true;
    if (done == 0) usleep(5000);
  }
  if (timed_out) return MakeError(ETIMEDOUT, program + " " + action + " did not finish in 30 s");
  if (too_long) return MakeError(EFBIG, program + " " + action + " said more than 1 MiB");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // ENODATA: the helper ran and declined; its first line says why.
    return MakeError(ENODATA, program + " " + action + " failed: " + Complaint(output));
  }
  if (!wrote) return MakeError(EIO, program + " " + action + " did not read its input");
  return output;
}

Result<std::optional<Credentials>> CredentialHelperGet(const HelperRunner& run,
                                                       const std::string& helper,
                                                       const std::string& server) {
  auto out = run(helper, "get", server);
  if (!out.ok()) {
    if (out.error().errnum == ENODATA &&
        out.error().message.find("credentials not found") != std::string::npos) {
      return std::optional<Credentials>();
    }
    return out.error();
  }
  nlohmann::json j = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return MakeError(EINVAL, "docker-credential-" + helper + " get: the answer is not JSON");
  }
  Credentials c;
  std::string user = JsonString(j, "Username");
  std::string secret = JsonString(j, "Secret");
  if (user == "<token>") {
    c.identity_token = secret;
  } else {
    c.username = user;
    c.password = secret;
  }
  if (c.username.empty() && c.identity_token.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(c);
}

Status CredentialHelperStore(const HelperRunner& run, const std::string& helper,
                             const std::string& server, const Credentials& creds) {
  nlohmann::json j = {{"ServerURL", server}};
  if (!creds.identity_token.empty()) {
    j["Username"] = "<token>";
    j["Secret"] = creds.identity_token;
  } else {
    j["Username"] = creds.username;
    j["Secret"] = creds.password;
  }
  auto out = run(helper, "store", j.dump());
  if (!out.ok()) return out.error();
  return Ok();
}

Status CredentialHelperErase(const HelperRunner& run, const std::string& helper,
                             const std::string& server) {
  auto out = run(helper, "erase", server);
  if (!out.ok()) return out.error();
  return Ok();
}

}  // namespace regfs
