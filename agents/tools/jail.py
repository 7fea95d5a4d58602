"""run_python's isolation: bubblewrap (bwrap) builds a fresh process tree for every call.

The kernel, not the interpreter, keeps the code in. bwrap gives the code:

- new user, mount, PID, network, IPC and UTS namespaces (and cgroup where the kernel allows), with
  user namespaces disabled inside (--disable-userns): the code is uid 65534 of a namespace in which
  it holds no capability, cannot see or signal any process but its own, and has a network stack with
  nothing on it but a loopback device;
- no_new_privs and the seccomp filter of agents/tools/seccomp.py (ptrace, mount, keyctl, bpf,
  perf_event_open, namespaces, raw and packet sockets... refused);
- a root that is an empty tmpfs, read-only, holding only: the interpreter's executable, its
  standard library (sys.path of `python -I`, its site-packages masked by an empty directory unless
  the operator asks for them), the shared libraries those need (found with ldd) and ld.so.cache,
  /dev/null, /dev/zero, /dev/random and /dev/urandom; the task's workspace copy at /workspace
  (read-write, the only writable directory besides a private, size-capped /tmp); the code and its
  guard at /sandbox (read-only). No /proc, no /etc beyond ld.so.cache, no shell, no other binary;
- an environment of four variables (PATH, HOME, LANG, TMPDIR).

bwrap is never run as root (the namespace's uid would then be root outside it): a root worker starts
it as uid 65534, so the code's processes are that uid on the host too; an unprivileged worker starts
it as itself.

`problem()` says, once per configuration, why this cannot be built here (no bwrap, no user
namespaces, an unknown architecture), by running a real sandbox; None when it can.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agents.tools import seccomp

SANDBOX_UID = 65534  # inside the namespace; and the user bwrap runs as when the worker is root
WORKSPACE = "/workspace"
CODE_DIR = "/sandbox"
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
TOP_LEVEL_LINKS = ("/lib", "/lib64", "/lib32", "/libx32")  # merged-/usr symlinks the loader's paths go through
LD_CACHE = "/etc/ld.so.cache"
ENV = {"PATH": "/usr/bin:/bin", "HOME": WORKSPACE, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}

_QUERY = (
    "import json, sys, sysconfig\n"
    "p = sysconfig.get_paths()\n"
    "print(json.dumps({'executable': sys.executable, 'sys_path': sys.path,"
    " 'site': sorted({p['purelib'], p['platlib']})}))\n"
)


@dataclass(frozen=True)
class Interpreter:
    """What of the interpreter the sandbox shows: real paths, computed once in the worker."""

    executable: str
    read_dirs: tuple[str, ...]  # its sys.path directories (the standard library, lib-dynload)
    site_dirs: tuple[str, ...]  # its site-packages: masked unless asked for
    libraries: tuple[tuple[str, str], ...]  # (source, path in the sandbox) of each shared library
    links: tuple[tuple[str, str], ...]  # (target, path) of the top-level symlinks those paths use


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _shared_objects(dirs: tuple[str, ...]) -> list[str]:
    found = []
    for top in dirs:
        for dirpath, _dirs, names in os.walk(top):
            found += [os.path.join(dirpath, n) for n in names if n.endswith(".so") or ".so." in n]
    return found


def _ldd(files: list[str]) -> set[str]:
    """The shared libraries the files load (their dependencies, the dynamic loader included)."""
    done = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=60)  # noqa: S603, S607
    libs: set[str] = set()
    for line in done.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and parts.index("=>") + 1 < len(parts) and parts[parts.index("=>") + 1].startswith("/"):
            libs.add(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/") and not parts[0].endswith(":"):
            libs.add(parts[0])
    return libs


@cache
def interpreter(python: str, site_packages: bool = False) -> Interpreter:
    """Ask `python` (real path, isolated mode) for its library directories; find their shared libraries."""
    executable = os.path.realpath(python)
    done = subprocess.run([executable, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True)  # noqa: S603
    info = json.loads(done.stdout)
    site = tuple(os.path.realpath(p) for p in info["site"])
    dirs = [os.path.realpath(p) for p in info["sys_path"] if p and os.path.isdir(p)]
    read_dirs = tuple(d for d in dict.fromkeys(dirs) if not any(_under(d, o) and d != o for o in dirs))
    site_dirs = () if site_packages else tuple(s for s in site if os.path.isdir(s) and any(_under(s, d) for d in read_dirs))
    if not site_packages:
        read_dirs = tuple(d for d in read_dirs if d not in site)
    objects = [executable, *(o for o in _shared_objects(read_dirs) if not any(_under(o, s) for s in site_dirs))]
    libraries = []
    for lib in sorted(_ldd(objects)):
        if any(_under(lib, d) for d in read_dirs):
            continue  # shown already, with its directory
        # At the path the loader asks for, its directories resolved (/lib/x -> /usr/lib/x).
        libraries.append((lib, os.path.join(os.path.realpath(os.path.dirname(lib)), os.path.basename(lib))))
    links = tuple((os.readlink(p), p) for p in TOP_LEVEL_LINKS if os.path.islink(p))
    return Interpreter(executable, read_dirs, site_dirs, tuple(libraries), links)


CLONE_NEWNS = 0x00020000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def _reachable(path: str, uid: int) -> bool:
    """Whether `uid` (in none of the owners' groups) can reach and read `path`, by the owner or other bits."""
    parts = Path(path).parts
    for i in range(1, len(parts) + 1):
        here = os.path.join(*parts[:i])
        st = os.stat(here)
        need = 0o1 if i < len(parts) else (0o5 if os.path.isdir(here) else 0o4)
        bits = (st.st_mode >> 6) & 0o7 if st.st_uid == uid else st.st_mode & 0o7
        if bits & need != need:
            return False
    return True


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


@contextlib.contextmanager
def sized_workspace(path: Path, size: int, max_files: int) -> Iterator[bool]:
    """A root worker mounts a tmpfs of `size` bytes and `max_files` inodes on the workspace copy for the
    call: the kernel answers ENOSPC past the quota. An unprivileged worker cannot mount on the host; its
    sandbox.py watches the total instead (the kernel still caps each file and /tmp). Yields whether mounted."""
    if os.geteuid() != 0:
        yield False
        return
    options = f"size={size},nr_inodes={max_files},mode=0700"
    _check(
        _libc().mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.encode()), "mount tmpfs"
    )
    try:
        yield True
    finally:
        _check(_libc().umount2(os.fsencode(path), MNT_DETACH), "umount the workspace")


def _running(pid: int) -> bool:
    """Not gone and not a zombie: a namespace's init turns zombie only after every other process in it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Launch:
    """One bwrap command line, and the binds a root worker makes first for sources uid 65534 cannot reach.

    bwrap runs unprivileged, so it opens each source as uid 65534: an interpreter under /root is out
    of its reach. The child that becomes bwrap then first enters a private mount namespace (as root,
    still) and bind-mounts each such source onto a placeholder under the run's directory, which is
    reachable; nothing of it propagates back to the worker's mounts."""

    def __init__(
        self, interp: Interpreter, *, root: Path, workdir: Path, code_dir: Path, tmp_bytes: int, argv: list[str]
    ) -> None:
        self.staged: list[tuple[str, str]] = []
        self.root = root
        self.drop = os.geteuid() == 0
        args = ["bwrap", "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session"]
        args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--clearenv"]
        for name, value in ENV.items():
            args += ["--setenv", name, value]
        for target, path in interp.links:
            args += ["--symlink", target, path]
        for path in interp.read_dirs:
            args += ["--ro-bind", self._source(path), path]
        for path in interp.site_dirs:  # an empty, read-only directory over each
            args += ["--tmpfs", path, "--remount-ro", path]
        for source, path in interp.libraries:
            args += ["--ro-bind", self._source(source), path]
        args += ["--ro-bind", self._source(interp.executable), interp.executable]
        if os.path.exists(LD_CACHE):
            args += ["--ro-bind", self._source(LD_CACHE), LD_CACHE]
        for device in DEVICES:
            args += ["--dev-bind", device, device]
        args += ["--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        args += ["--ro-bind", str(code_dir), CODE_DIR]
        args += ["--bind", str(workdir), WORKSPACE, "--remount-ro", "/", "--chdir", WORKSPACE]
        self.filter_fd = os.memfd_create("horizon-seccomp")
        os.write(self.filter_fd, seccomp.compiled())
        os.lseek(self.filter_fd, 0, os.SEEK_SET)
        # bwrap writes the host pid of the namespace's init here: its end is the end of every process in it.
        self.info_read, self.info_write = os.pipe()
        args += ["--info-fd", str(self.info_write), "--seccomp", str(self.filter_fd), "--", interp.executable, *argv]
        self.args = args
        if self.drop:
            os.chmod(root, 0o711)  # traversable by uid 65534, not listable
            _libc()  # loaded here: the child between fork and exec should not dlopen

    def _source(self, path: str) -> str:
        if not self.drop or _reachable(path, SANDBOX_UID):
            return path
        stage = self.root / "stage"
        stage.mkdir(mode=0o755, exist_ok=True)
        placeholder = stage / str(len(self.staged))
        if os.path.isdir(path):
            placeholder.mkdir(mode=0o755)
        else:
            placeholder.touch(mode=0o644)
        self.staged.append((path, str(placeholder)))
        return str(placeholder)

    def preexec(self) -> None:
        """In the child, before exec (root only): the staged binds, then down to uid 65534."""
        if self.staged:
            libc = _libc()
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
            for source, placeholder in self.staged:
                _check(libc.mount(os.fsencode(source), os.fsencode(placeholder), None, MS_BIND, None), "bind " + source)
        os.setgroups([])
        os.setgid(SANDBOX_UID)
        os.setuid(SANDBOX_UID)

    def popen_args(self) -> dict[str, Any]:
        """pass_fds and, for a root worker, the drop to uid 65534: subprocess's own (done in C, safe in a
        threaded worker) unless binds must come first, which only a preexec_fn can do."""
        args: dict[str, Any] = {"pass_fds": (self.filter_fd, self.info_write)}
        if self.staged:
            args["preexec_fn"] = self.preexec
        elif self.drop:
            args |= {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}
        return args

    def close(self) -> None:
        """After the start: the worker's copies of the descriptors bwrap was given."""
        for fd in (self.filter_fd, self.info_write):
            if fd >= 0:
                os.close(fd)
        self.filter_fd = self.info_write = -1

    def wait_for_namespace_end(self, timeout: float = 5.0) -> None:
        """After bwrap exited: wait until the namespace's init is gone, and with it (the kernel reaps
        them before it) every process the code started, so that none still writes into the workspace."""
        os.set_blocking(self.info_read, False)  # written at the start; never wait on a writer left in the sandbox
        with os.fdopen(self.info_read, "rb") as info:
            try:
                raw = info.read() or b""
            except BlockingIOError:
                raw = b""
        try:
            pid = int(json.loads(raw.decode() or "{}").get("child-pid", 0))
        except ValueError:
            return
        deadline = time.monotonic() + timeout
        while pid and _running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)


def bwrap(configured: str = "") -> str | None:
    """The bwrap executable: the configured path, else bwrap on PATH or /usr/bin/bwrap; None if absent."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)


@cache
def problem(python: str, site_packages: bool = False, bwrap_path: str = "") -> str | None:
    """Why run_python's isolation cannot be built on this machine; None when a probe sandbox ran."""
    if platform.system() != "Linux":
        return f"run_python needs Linux namespaces; this is {platform.system()}"
    if not seccomp.supported():
        return f"run_python's seccomp filter has no system call table for {platform.machine()}"
    path = bwrap(bwrap_path)
    if path is None:
        where = bwrap_path or "bwrap on PATH"
        return f"bubblewrap is not installed ({where} not found): apt-get install bubblewrap (scripts/ensure_sandbox.sh)"
    try:
        interp = interpreter(python, site_packages)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return f"the sandbox's interpreter {python} does not start: {exc}"
    probe = "import json, decimal, csv, os, ssl; assert not os.path.exists('/proc/self') and os.getuid() == 65534"
    with tempfile.TemporaryDirectory(prefix="horizon-sandbox-probe-") as tmp:
        root = Path(tmp)
        (root / "workspace").mkdir()
        (root / "code").mkdir()
        if os.geteuid() == 0:
            os.chown(root / "workspace", SANDBOX_UID, SANDBOX_UID)
        try:
            launch = Launch(
                interp, root=root, workdir=root / "workspace", code_dir=root / "code", tmp_bytes=1 << 20, argv=["-I", "-c", probe]
            )
            try:
                done = subprocess.run(  # noqa: S603, PLW1509 - a fixed probe
                    [path, *launch.args[1:]], capture_output=True, text=True, timeout=60, **launch.popen_args()
                )
            finally:
                launch.close()
                os.close(launch.info_read)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bubblewrap does not start: {exc}"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bubblewrap cannot build the sandbox here ({why}); user namespaces may be disabled (see docs/security.md)"
    return None
