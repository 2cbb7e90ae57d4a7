"""regfs as a user installs it: `cmake --install` into a temporary prefix (the binary, man
pages that say what --help says, bash and zsh completion where those shells look, and TAB at
a terminal in both), the README's systemd .mount unit checked by systemd-analyze, and the
Debian package that `cpack -G DEB` builds, installed with dpkg and mounting from an fstab line.

The build directory is $REGFS_BUILD_DIR, else the directory of $REGFS_BIN (a CMake build tree
with its man pages and completion built: `cmake --build` builds them with regfs)."""

import os
import pty
import re
import select
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from mountlib import is_mounted, lazy_unmount, pid_alive
from testlib import tools
from testlib.wait import wait_until


@pytest.fixture(scope="module")
def build_dir(regfs_bin):
    d = Path(os.environ.get("REGFS_BUILD_DIR") or Path(regfs_bin).parent)
    assert (d / "CMakeCache.txt").is_file(), (
        f"{d} is not the CMake build tree of {regfs_bin}: set REGFS_BUILD_DIR")
    return d


@pytest.fixture(scope="module")
def version(build_dir):
    cache = (build_dir / "CMakeCache.txt").read_text()
    return re.search(r"^CMAKE_PROJECT_VERSION:\w+=(.+)$", cache, re.M).group(1)


@pytest.fixture(scope="module")
def prefix(build_dir, tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    r = tools.run(["cmake", "--install", build_dir, "--prefix", p], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return p


def run(argv, **env):
    return tools.run([str(a) for a in argv], env={k: str(v) for k, v in env.items()}, timeout=60)


def ok(argv, **env):
    r = run(argv, **env)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"
    return r.stdout


def commands(regfs_bin):
    """The command names `regfs --help` lists."""
    out = ok([regfs_bin, "--help"])
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines()]


def transports(regfs_bin):
    """The prefixes of the image references `regfs --help` lists (docker://, dir:, …)."""
    line = next(x for x in ok([regfs_bin, "--help"]).splitlines()
                if x.startswith("Image references:"))
    forms = line.split(":", 1)[1].split(", ")
    return {re.match(r"\s*([a-z-]+:(//)?)", f).group(1) for f in forms}


def parse_help(regfs_bin, command):
    """`regfs COMMAND --help` as (summary, details, [(flags column, help text)])."""
    out = ok([regfs_bin, command, "--help"])
    summary, rest = out.split("\n\nUsage:\n", 1)
    body, options = rest.split("\nOptions:\n", 1)
    details = body.split("\n", 1)[1].strip() if "\n" in body else ""
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in options.splitlines()]
    return summary, details, rows


def squash(text):
    return " ".join(text.split())


# ---- cmake --install ----------------------------------------------------------------------

def test_installed_regfs_prints_the_project_version(prefix, regfs_bin, version):
    out = ok([prefix / "bin" / "regfs", "--version"])
    assert out == f"regfs version {version}\n"
    assert ok([regfs_bin, "--version"]) == out


def test_man_finds_a_page_for_regfs_and_each_command(prefix, regfs_bin):
    man = prefix / "share" / "man"
    assert ok(["man", "-w", "regfs"], MANPATH=man).strip() == str(man / "man1" / "regfs.1")
    names = commands(regfs_bin)
    assert "copy" in names and "mount" in names
    for name in names:
        page = ok(["man", "-w", f"regfs-{name}"], MANPATH=man).strip()
        assert page == str(man / "man1" / f"regfs-{name}.1")


def render(prefix, page):
    """The page as man shows it, with words whole: not hyphenated (HY=0), and a word that
    breaks at one of its hyphens joined again."""
    text = ok(["man", "-P", "cat", page], MANPATH=prefix / "share" / "man", MANWIDTH=200,
              MANROFFOPT="-rHY=0", LC_ALL="C.UTF-8")
    return re.sub(r"(?<=\w)-\n\s+", "-", text)


@pytest.mark.parametrize("command", ["copy", "mount", "sync", "inspect"])
def test_man_page_says_what_help_says(prefix, regfs_bin, command):
    summary, details, rows = parse_help(regfs_bin, command)
    page = squash(render(prefix, f"regfs-{command}"))
    assert squash(f"regfs-{command} - {summary}") in page
    assert details and squash(details) in page
    assert len(rows) > 2
    for flags, text in rows:
        assert squash(flags) in page, flags
        assert squash(text) in page, (flags, text)


def test_regfs_page_lists_commands_references_and_the_mount(prefix, regfs_bin):
    page = squash(render(prefix, "regfs"))
    for name in commands(regfs_bin):
        summary, _, _ = parse_help(regfs_bin, name)
        assert squash(f"regfs-{name}(1) {summary}") in page, name
    for t in transports(regfs_bin):
        assert t in page
    _, mount_details, _ = parse_help(regfs_bin, "mount")
    assert squash(mount_details) in page
    assert "MNT/<registry>/<repository>/<tag>/" in page


# ---- bash ---------------------------------------------------------------------------------

def bash_completion_file(prefix):
    return prefix / "share" / "bash-completion" / "completions" / "regfs"


def complete(script, line, bash_words=None, cwd=None):
    """COMPREPLY of the regfs completion for the command line `line` (the cursor at its end).
    bash_words: COMP_WORDS as bash splits the line at COMP_WORDBREAKS (':' and '='), when
    that differs from splitting at blanks."""
    words = bash_words or (line.split() + ([""] if line.endswith(" ") else []))
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"source '{script}'\n"
               f"COMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n"
               f"COMP_WORDS=({quoted})\nCOMP_CWORD={len(words) - 1}\n"
               f"_regfs regfs \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                       timeout=30, cwd=cwd)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return {w for w in r.stdout.split("\n") if w}


def test_bash_registers_the_completion(prefix):
    out = ok(["bash", "--norc", "-c", f"source {bash_completion_file(prefix)}; complete -p regfs"])
    assert out.strip() == "complete -F _regfs regfs"


def test_bash_completion_is_where_bash_completion_looks(prefix):
    # bash-completion loads a command's completion on first use from
    # XDG_DATA_DIRS/bash-completion/completions (/usr/local/share and /usr/share by default).
    out = ok(["bash", "--norc", "-c", "source /usr/share/bash-completion/bash_completion; "
              "_completion_loader regfs; complete -p regfs"], XDG_DATA_DIRS=prefix / "share")
    assert out.strip().endswith("-F _regfs regfs")


def test_bash_completes_commands_and_global_flags(prefix, regfs_bin):
    script = bash_completion_file(prefix)
    assert complete(script, "regfs ") == set(commands(regfs_bin))
    assert complete(script, "regfs co") == {"copy"}
    assert complete(script, "regfs --po") == {"--policy"}
    # A global flag and its value come before the command.
    assert complete(script, "regfs --policy p.json co") == {"copy"}


def test_bash_completes_a_commands_flags_and_their_short_forms(prefix, regfs_bin):
    script = bash_completion_file(prefix)
    _, _, rows = parse_help(regfs_bin, "copy")
    long_flags = {re.search(r"--[\w.-]+", flags).group(0) for flags, _ in rows}
    assert "--src-creds" in long_flags and "--quiet" in long_flags
    assert complete(script, "regfs copy --") == long_flags
    short = complete(script, "regfs copy -")
    assert {"-a", "-q", "-h"} <= short and long_flags <= short
    assert complete(script, "regfs --policy p.json copy --src-c") == {"--src-creds",
                                                                      "--src-cert-dir"}
    assert complete(script, "regfs mount -") >= {"-f", "--foreground", "-o", "--options"}


def test_bash_completes_transports_and_paths(prefix, regfs_bin, work):
    script = bash_completion_file(prefix)
    (work / "img1").mkdir()
    (work / "auth.json").write_text("{}")
    known = transports(regfs_bin)
    assert {"docker://", "dir:", "oci:"} <= known
    assert complete(script, "regfs copy ") == known
    assert complete(script, "regfs copy docker://src/a:1 ") == known
    assert complete(script, "regfs inspect d") == {t for t in known if t.startswith("d")}
    # bash splits "dir:PATH" at the colon: it completes PATH as a word of its own.
    assert complete(script, f"regfs copy dir:{work}/im",
                    ["regfs", "copy", "dir", ":", f"{work}/im"]) == {f"{work}/img1"}
    assert complete(script, "regfs copy oci:im", ["regfs", "copy", "oci", ":", "im"],
                    cwd=work) == {"img1"}
    # A flag's value: a path, in the next word or after '='.
    assert complete(script, f"regfs copy --authfile {work}/au") == {f"{work}/auth.json"}
    assert complete(script, f"regfs copy --dest-authfile={work}/au",
                    ["regfs", "copy", "--dest-authfile", "=", f"{work}/au"]) == {
                        f"{work}/auth.json"}
    assert complete(script, "regfs copy --retry-times ", cwd=work) == set()  # a number
    # mount takes a directory; manifest-digest a file.
    assert complete(script, f"regfs mount {work}/") == {f"{work}/img1"}
    assert complete(script, f"regfs manifest-digest {work}/a") == {f"{work}/auth.json"}


# ---- zsh ----------------------------------------------------------------------------------

def test_zsh_completion_parses_and_is_found_on_fpath(prefix, work):
    site = prefix / "share" / "zsh" / "site-functions"
    script = site / "_regfs"
    assert script.read_text().startswith("#compdef regfs\n")
    ok(["zsh", "-n", script])
    # compinit registers what a #compdef file in fpath completes.
    out = ok(["zsh", "-fc", f"fpath=({site} $fpath); autoload -Uz compinit; "
              f"compinit -u -d {work}/zcompdump; print -r -- $_comps[regfs]"])
    assert out.strip() == "_regfs"


# ---- both shells at a terminal -----------------------------------------------------------

class Terminal:
    """An interactive shell in a pseudo-terminal: what is typed, and what it echoes back."""

    def __init__(self, argv, cwd):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "HOME": str(cwd)}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.out = ""

    def _read(self):
        while select.select([self.fd], [], [], 0)[0]:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.out += data.decode(errors="replace")

    def type(self, text, expect, timeout=10):
        """Types `text`; True once `expect` is echoed (a completion shows in the line)."""
        self.out = ""
        os.write(self.fd, text.encode())
        return wait_until(lambda: self._read() or expect in self.out, timeout)

    def close(self):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_tab_completes_at_a_terminal(prefix, work, shell):
    share = prefix / "share"
    if shell == "bash":
        argv = ["bash", "--norc", "--noprofile", "-i"]
        setup = f"source {share}/bash-completion/completions/regfs"
    else:
        argv = ["zsh", "-f", "-i"]
        setup = (f"fpath=({share}/zsh/site-functions $fpath); autoload -Uz compinit; "
                 f"compinit -u -d {work}/zcompdump")
    (work / "imgdir").mkdir()
    term = Terminal(argv, work)
    try:
        assert term.type(f"{setup}; echo RE''ADY\n", "READY"), term.out
        for typed, completed in [("regfs mo\t", "regfs mount "),
                                 ("regfs copy --src-cr\t", "--src-creds"),
                                 ("regfs copy oci-a\t", "oci-archive:"),
                                 ("regfs copy dir:img\t", "dir:imgdir/")]:
            assert term.type(typed, completed), (typed, term.out)
            os.write(term.fd, b"\x15")  # ^U: an empty line for the next one
    finally:
        term.close()


# ---- the systemd unit in the README -------------------------------------------------------

def readme_unit():
    readme = (tools.REPO_ROOT / "README.md").read_text()
    m = re.search(r"`/etc/systemd/system/(mnt-registries\.mount)`.*?```ini\n(.*?)```", readme,
                  re.S)
    assert m, "README has no systemd .mount unit example"
    return m.group(1), m.group(2)


def test_readme_mount_unit_passes_systemd_analyze_verify(prefix, work):
    name, text = readme_unit()
    assert "What=regfs" in text and "Type=fuse.regfs" in text
    assert "Where=/mnt/registries" in text
    unit = work / name
    unit.write_text(text)
    # verify also checks that the Documentation= man page exists: the installed regfs-mount(1).
    r = run(["systemd-analyze", "verify", unit], MANPATH=prefix / "share" / "man")
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    # And it does fail a unit whose name is not its Where=.
    bad = work / "mnt-other.mount"
    bad.write_text(text)
    r = run(["systemd-analyze", "verify", bad], MANPATH=prefix / "share" / "man")
    assert r.returncode != 0


# ---- the Debian package -------------------------------------------------------------------

def installed(package):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout == "installed"


def serving_pids(mnt, exe):
    """Pids of the processes of `exe` with `mnt` on their command line."""
    out = []
    for d in os.listdir("/proc"):
        try:
            args = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            binary = os.readlink(f"/proc/{d}/exe")
        except (OSError, ValueError):
            continue
        if binary == exe and str(mnt).encode() in args:
            out.append(int(d))
    return out


@pytest.fixture(scope="module")
def deb(build_dir, tmp_path_factory, version):
    out = tmp_path_factory.mktemp("pkg")
    r = tools.run(["cpack", "-G", "DEB", "--config", build_dir / "CPackConfig.cmake", "-B", out],
                  timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    arch = ok(["dpkg", "--print-architecture"]).strip()
    path = out / f"regfs_{version}_{arch}.deb"
    assert path.is_file(), sorted(p.name for p in out.iterdir())
    return path


def test_deb_holds_regfs_its_pages_and_completions(deb):
    depends = ok(["dpkg-deb", "-f", deb, "Depends"])
    for package in ("fuse3", "libfuse3-3", "libcurl4"):
        assert re.search(rf"\b{package}\b", depends), depends
    files = ok(["dpkg-deb", "-c", deb])
    for path in ("./usr/bin/regfs", "./usr/share/man/man1/regfs.1",
                 "./usr/share/man/man1/regfs-copy.1", "./usr/share/man/man1/regfs-mount.1",
                 "./usr/share/bash-completion/completions/regfs",
                 "./usr/share/zsh/vendor-completions/_regfs"):
        assert re.search(rf" {re.escape(path)}$", files, re.M), path


def test_deb_installs_and_mounts_from_fstab(deb, version, imgs, registry, work):
    assert not installed("regfs"), "a regfs package is installed already"
    # mount.fuse3 runs "regfs" from the shell's default path, where /usr/local/bin comes first.
    local = Path("/usr/local/bin/regfs")
    saved = work / "regfs.local"
    had_local = local.exists() or local.is_symlink()
    if had_local:
        shutil.move(local, saved)
    mnt = work / "mnt"
    mnt.mkdir()
    try:
        r = tools.run(["dpkg", "-i", deb], timeout=300)
        if r.returncode != 0:  # dependencies missing: apt brings them
            r = tools.run(["apt-get", "install", "-f", "-y", "-q"], timeout=600)
        assert r.returncode == 0 and installed("regfs"), r.stdout + r.stderr
        assert ok(["/usr/bin/regfs", "--version"]) == f"regfs version {version}\n"
        assert ok(["man", "-w", "regfs"]).strip() == "/usr/share/man/man1/regfs.1"
        assert ok(["man", "-w", "regfs-mount"]).strip() == "/usr/share/man/man1/regfs-mount.1"
        out = ok(["bash", "--norc", "-c", "source /usr/share/bash-completion/bash_completion; "
                  "_completion_loader regfs; complete -p regfs"])
        assert out.strip().endswith("-F _regfs regfs")
        out = ok(["zsh", "-fc", f"autoload -Uz compinit; compinit -u -d {work}/zcompdump; "
                  "print -r -- $_comps[regfs]"])
        assert out.strip() == "_regfs"

        fstab = work / "fstab"
        fstab.write_text(f"regfs {mnt} fuse.regfs defaults,_netdev,noauto,"
                         f"cache_dir={work / 'cache'},log={work / 'log.txt'} 0 0\n")
        r = tools.run(["mount", "-T", fstab, mnt], timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert serving_pids(mnt, "/usr/bin/regfs"), "the mount is not served by /usr/bin/regfs"
        got = (mnt / registry.addr / imgs.oci.repo / imgs.oci.tag / "manifest.json").read_bytes()
        assert got == imgs.oci.image.manifest
        r = tools.run(["umount", mnt], timeout=30)
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: not is_mounted(mnt), 10)
    finally:
        pids = serving_pids(mnt, "/usr/bin/regfs")
        if is_mounted(mnt):
            tools.run(["umount", mnt], timeout=30)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5)
        for p in pids:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
        lazy_unmount(mnt)
        if installed("regfs"):
            tools.run(["dpkg", "-r", "regfs"], timeout=120)
        if had_local:
            shutil.move(saved, local)
    assert not installed("regfs") and not Path("/usr/bin/regfs").exists()
