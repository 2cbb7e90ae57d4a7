"""The mount as other users meet it: mounted by an unprivileged user through fusermount3
(rootless), and shared with allow_other without handing the owner's registries to everyone.

The tests create two system users (regfs-it-a, regfs-it-b) when they are missing, give
/dev/fuse Debian's default mode 0666 if the machine has it tighter, and run regfs as those
users with runuser(1), from a copy of the binary they can execute.
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from mountlib import MOUNT_TIMEOUT, is_mounted, lazy_unmount, pid_alive, pids_serving
from testlib import images, tools
from testlib.wait import wait_until

USERS = ("regfs-it-a", "regfs-it-b")


def ensure_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        tools.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                   name], check=True)
        return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def users():
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    if mode & 0o666 != 0o666:
        os.chmod("/dev/fuse", mode | 0o666)  # Debian's default: every user may mount
    return {name: ensure_user(name) for name in USERS}


@pytest.fixture
def shared(regfs_bin):
    """A directory every user can enter, holding a copy of regfs they can execute."""
    d = Path(tempfile.mkdtemp(prefix="regfs-users-"))
    os.chmod(d, 0o755)
    shutil.copy2(regfs_bin, d / "regfs")
    os.chmod(d / "regfs", 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def home_of(shared, user):
    """A home and cache of the user's own, inside `shared`."""
    h = shared / f"home-{user.pw_name}"
    (h / ".cache").mkdir(parents=True, exist_ok=True)
    for p in (h, h / ".cache"):
        os.chown(p, user.pw_uid, user.pw_gid)
        os.chmod(p, 0o700)
    return h


def as_user(user, home, argv, **kw):
    env = ["env", "-i", f"HOME={home}", f"XDG_RUNTIME_DIR={home}",
           f"XDG_CACHE_HOME={home}/.cache", f"XDG_CONFIG_HOME={home}/.config",
           "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", *tools.sanitizer_env()]
    return tools.run(["runuser", "-u", user.pw_name, "--", *env, *[str(a) for a in argv]],
                     timeout=kw.pop("timeout", 60), **kw)


def can_read(user, home, path):
    p = as_user(user, home, ["cat", path], binary=True)
    if p.returncode == 0:
        return p.stdout
    assert b"Permission denied" in p.stderr, p.stderr
    return None


def image_for_all(registry, shared, repo):
    """A pushed image, and a dir: copy of it every user can read (to push from)."""
    img = images.pushed_image(shared / f"img-{repo.replace('/', '-')}", registry, repo)
    for root, dirs, files in os.walk(img.path):
        for n in dirs:
            os.chmod(Path(root) / n, 0o755)
        for n in files:
            os.chmod(Path(root) / n, 0o644)
    os.chmod(img.path, 0o755)
    return img


class UserMount:
    """`regfs mount` run as `user`; its files are reachable by that user alone (root too is
    kept out of a mount without allow_other), so the pid comes from the daemon's command line."""

    def __init__(self, shared, user, home, opts=""):
        self.shared, self.user, self.home = shared, user, home
        self.mnt = home / "mnt"
        self.mnt.mkdir(exist_ok=True)
        os.chown(self.mnt, user.pw_uid, user.pw_gid)
        self.opts = ",".join(filter(None, [f"cache_dir={home}/.cache/regfs",
                                           f"log={home}/regfs.log", opts]))

    def start(self):
        p = as_user(self.user, self.home,
                    [self.shared / "regfs", "mount", "-o", self.opts, self.mnt],
                    timeout=MOUNT_TIMEOUT)
        assert p.returncode == 0, p.stderr + self.log()
        assert is_mounted(self.mnt)
        return self

    def log(self):
        try:
            return (self.home / "regfs.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def cleanup(self):
        pids = pids_serving(self.mnt)
        if is_mounted(self.mnt):
            as_user(self.user, self.home, [self.shared / "regfs", "unmount", self.mnt])
        wait_until(lambda: not any(pid_alive(x) for x in pids), 5)
        for x in pids:
            if pid_alive(x):
                os.kill(x, signal.SIGKILL)
        lazy_unmount(self.mnt)


def test_rootless_mount_reads_and_pushes_as_its_user(users, shared, registry, repo_name,
                                                     oracle):
    a, b = users["regfs-it-a"], users["regfs-it-b"]
    home_a, home_b = home_of(shared, a), home_of(shared, b)
    repo = repo_name("rootless")
    img = image_for_all(registry, shared, repo)
    m = UserMount(shared, a, home_a)
    try:
        m.start()
        # The daemon runs as the user, mounted through fusermount3.
        pids = pids_serving(m.mnt)
        assert pids and all(os.stat(f"/proc/{x}").st_uid == a.pw_uid for x in pids), pids
        tag_dir = m.mnt / registry.addr / repo / "v1"
        assert can_read(a, home_a, tag_dir / "manifest.json") == img.manifest, m.log()
        layer = img.layers[0]
        assert can_read(a, home_a, tag_dir / layer.digest.split(":")[1]) == layer.data
        p = as_user(a, home_a, ["stat", "-c", "%u %a", tag_dir / "manifest.json"])
        assert p.stdout.split() == [str(a.pw_uid), "444"], p.stdout
        # Pushing as the user: cp -r of a dir: image into a new tag.
        dst = repo_name("rootless-pushed")
        p = as_user(a, home_a, ["mkdir", "-p", m.mnt / registry.addr / dst])
        assert p.returncode == 0, p.stderr + m.log()
        p = as_user(a, home_a, ["cp", "-r", img.path, m.mnt / registry.addr / dst / "v1"],
                    timeout=120)
        assert p.returncode == 0, p.stderr + m.log()
        assert oracle.digest_of(registry.ref(dst, "v1")) == img.digest
        # Another user gets nothing of a mount without allow_other.
        assert can_read(b, home_b, tag_dir / "manifest.json") is None
        # The user unmounts it again (regfs unmount, through fusermount3).
        p = as_user(a, home_a, [shared / "regfs", "unmount", m.mnt])
        assert p.returncode == 0, p.stderr
        assert wait_until(lambda: not is_mounted(m.mnt), 10)
    finally:
        m.cleanup()


@pytest.mark.parametrize("opts, readable", [
    ("allow_other", False),           # by default the owner's registries stay the owner's
    ("allow_other,umask=022", True),  # opened up on purpose
    ("allow_other,uid={b}", True),    # handed to one user
])
def test_allow_other_keeps_content_private_unless_asked(users, shared, registry, repo_name,
                                                        mounts, opts, readable):
    b = users["regfs-it-b"]
    home_b = home_of(shared, b)
    repo = repo_name("shared")
    img = image_for_all(registry, shared, repo)
    m = mounts(*opts.format(b=b.pw_uid).split(","), cache_dir=shared / "root-cache")
    # Every directory on the way to the mount point may be entered: only the mount decides.
    os.chmod(m.mnt.parent, 0o755)
    tag_dir = m.image(registry.addr, repo, "v1")
    got = can_read(b, home_b, tag_dir / "manifest.json")
    assert (got == img.manifest) if readable else got is None, (opts, got)
    owner = os.stat(tag_dir / "manifest.json")
    if "uid=" in opts:
        assert owner.st_uid == b.pw_uid
        assert stat.S_IMODE(owner.st_mode) == 0o400
    elif "umask" in opts:
        assert stat.S_IMODE(owner.st_mode) == 0o444
    else:
        assert owner.st_uid == os.getuid()
        assert stat.S_IMODE(owner.st_mode) == 0o400
        assert stat.S_IMODE(os.stat(tag_dir).st_mode) & 0o077 == 0
