// regfs mount [-f] [-o opt,…] MNT and regfs unmount MNT.
//
// Without -f the daemon forks, and the parent returns once the mount exists (or with the
// daemon's error), so a script can use MNT on its next line.
#include <fcntl.h>
#include <malloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"
#include "fs/mount_options.h"
#include "tools/commands.h"
#include "transports/alltransports/transports.h"
#include "transports/config/registries_conf.h"
#include "transports/config/registries_d.h"
#include "transports/signature/policy.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

// The mount's registries are opened as the commands open theirs (alltransports): the same
// registries.conf, certs.d and credentials. registries.conf is read once, here.
Result<std::unique_ptr<Filesystem>> OpenFilesystem(const MountOptions& options) {
  RegistryOptions registry;
  registry.authfile = options.authfile;
  registry.retry_times = 2;
  // A blob read waits as long for a registry that went away as for one that stalls: a
  // restart under a reader is resumed from, one that takes longer is EIO.
  registry.blob_retry_seconds = options.timeout;
  registry.counters = std::make_shared<RegistryCounters>();
  ASSIGN_OR_RETURN(registry.registries_conf, LoadRegistriesConf());
  HttpClient::Options http;
  http.connect_timeout_s = options.timeout;
  http.stall_timeout_s = options.timeout;
  auto counters = registry.counters;
  return Filesystem::Create(
      options, NewRegistryFactory(std::move(registry), options.insecure, http, options.debug),
      counters);
}

// What the filesystem takes from configuration files besides registries.conf: registries.d
// (which repositories' sigstore attachments are used) and the policy= file. Loaded before the
// daemon forks, so that a bad file fails the command.
Status LoadSignatureConfig(MountOptions* options) {
  ASSIGN_OR_RETURN(RegistriesD loaded, RegistriesD::Load(""));
  auto registries_d = std::make_shared<const RegistriesD>(std::move(loaded));
  options->sigstore_attachments = [registries_d](const std::string& registry,
                                                 const std::string& repository) {
    DockerReference ref;
    ref.registry = registry;
    ref.repository = repository;
    return registries_d->For(ref).use_sigstore_attachments.value_or(true);
  };
  if (!options->policy_file.empty()) {
    auto policy = Policy::Load(options->policy_file);
    if (!policy.ok()) return Annotate(std::move(policy).error(), "policy=" + options->policy_file);
    options->policy = std::make_shared<const Policy>(std::move(policy).value());
  }
  return Ok();
}

// Runs the filesystem in this process; `ready_fd` (or -1) hears "+" when the mount exists, or
// the error text.
int Serve(const Command& self, const MountOptions& options, const std::string& mountpoint,
          int ready_fd) {
  // glibc gives every thread that allocates at once an arena of its own (up to 8 per core),
  // and the daemon's FUSE and fetch threads each grow and keep one: RSS climbed by ~10 MiB in
  // the first 90 s of test_soak and kept climbing for 20 minutes without a leak. Two arenas
  // hold it level, at half the size, before any thread starts.
  mallopt(M_ARENA_MAX, 2);
  auto report = [&](const std::string& msg) {
    if (ready_fd >= 0) {
      (void)!write(ready_fd, msg.data(), msg.size());
      close(ready_fd);
      ready_fd = -1;
    }
  };
  auto fs = OpenFilesystem(options);
  if (!fs.ok()) {
    report("-" + fs.error().message);
    return Fail(self, fs.error());
  }
  Status s = ServeFuse(**fs, mountpoint, options, [&] { report("+"); });
  if (!s.ok()) {
    report("-" + s.error().message);
    return Fail(self, s.error());
  }
  return 0;
}

int RunMount(const Command& self, const Args& args) {
  std::string mountpoint = args.positional()[0];
  MountOptions options;
  if (args.Given("options")) {
    Status s = ParseMountOptions(args.String("options"), &options);
    if (!s.ok()) return Fail(self, s.error());
  }
  if (options.cache_dir.empty()) options.cache_dir = DefaultCacheDir();
  if (Status s = LoadSignatureConfig(&options); !s.ok()) return Fail(self, s.error());
  if (!IsDirectory(mountpoint)) {
    return Fail(self, MakeError(ENOTDIR, "mount point " + mountpoint + " is not a directory"));
  }
  if (args.Bool("foreground")) return Serve(self, options, mountpoint, -1);
  if (options.log_file.empty()) options.log_file = options.cache_dir + "/regfs.log";
  Status dirs = MakeDirs(options.cache_dir, 0700);
  if (!dirs.ok()) return Fail(self, dirs.error());
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Fail(self, SysError("pipe", ""));
  pid_t pid = fork();
  if (pid < 0) return Fail(self, SysError("fork", ""));
  if (pid == 0) {
    close(fds[0]);
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      if (null > 2) close(null);
    }
    int rc = Serve(self, options, mountpoint, fds[1]);
#if defined(__SANITIZE_ADDRESS__)
    // _exit skips the leak check a sanitizer build makes at exit: the daemon's is made here,
    // after the filesystem is gone.
    __lsan_do_leak_check();
#endif
    _exit(rc);
  }
  close(fds[1]);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  if (reply == "+") return 0;
  if (reply.empty()) {
    int status = 0;
    waitpid(pid, &status, 0);
    reply = "-the daemon exited before the mount was ready";
  }
  return Fail(self, MakeError(EIO, reply.substr(1)));
}

int RunUnmount(const Command& self, const Args& args) {
  std::string mountpoint = args.positional()[0];
  if (umount2(mountpoint.c_str(), 0) == 0) return 0;
  if (errno == EPERM) {
    pid_t pid = fork();
    if (pid == 0) {
      execlp("fusermount3", "fusermount3", "-u", mountpoint.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    return Fail(self, MakeError(EPERM, "fusermount3 -u " + mountpoint + " failed"));
  }
  return Fail(self, SysError("unmounting", mountpoint));
}

}  // namespace

const Command& MountCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "mount";
    c.usage = "mount [-f] [-o OPTION[,OPTION…]] MOUNTPOINT";
    c.summary = "Mount registries as a directory tree";
    c.details =
        "MNT/<registry>/<repository>/<tag>/ is an image in dir: layout whose blobs are fetched\n"
        "when read; cp -r into a tag directory pushes, mv re-tags, rm -r deletes.\n"
        "Options: cache_dir=DIR, cache_size=SIZE (K/M/G), tag_ttl=SEC, list_ttl=SEC, ro,\n"
        "allow_other, uid=N, gid=N, umask=OCTAL (022; 077 with allow_other: other users\n"
        "read nothing unless asked), authfile=FILE, insecure=HOST (repeatable),\n"
        "verify=stream|full, platform=OS/ARCH[/VARIANT], log=FILE, debug, timeout=SEC,\n"
        "policy=FILE.\n"
        "An image directory lists the sigstore signatures of its attachment as signature-N\n"
        "(registries.d use-sigstore-attachments: false turns that off for a scope), and\n"
        "signature-N files copied in are pushed as the image's attachment. policy=FILE\n"
        "(containers-policy.json) makes a verified-only view: the files of an image the\n"
        "policy refuses can't be opened (EACCES, the reason in the log); the image\n"
        "directory's user.regfs.verified attribute names what accepted it (none: refused).\n"
        "Without -f the command returns once the mount is ready; the log then defaults to\n"
        "CACHE_DIR/regfs.log.\n\n"
        "From /etc/fstab or mount -t fuse.regfs, mount(8) runs regfs SOURCE MOUNTPOINT -o\n"
        "OPTIONS through mount.fuse3; an fstab line: regfs /mnt/registries fuse.regfs\n"
        "defaults,_netdev,cache_size=10G 0 0. Options meant for mount(8) or systemd (_netdev,\n"
        "noauto, nofail, x-systemd.*) are ignored; an unknown option is an error.";
    c.flags = {{"foreground", 'f', FlagKind::kBool, "stay in the foreground", ""},
               {"options", 'o', FlagKind::kString, "comma-separated mount options", ""}};
    c.min_args = c.max_args = 1;
    c.operands = Operands::kDirectories;
    c.run = RunMount;
    return c;
  }();
  return kCommand;
}

const Command& UnmountCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "unmount";
    c.usage = "unmount MOUNTPOINT";
    c.summary = "Unmount a regfs mount";
    c.min_args = c.max_args = 1;
    c.operands = Operands::kDirectories;
    c.run = RunUnmount;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
