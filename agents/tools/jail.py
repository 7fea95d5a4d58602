"""run_python's filesystem boundary: a new mount namespace whose root holds only what the code needs.

Why this shape. The child gets a fresh, read-only tmpfs as its root (pivot_root, the old root
detached), on which the only things mounted are:

- the workspace copy, read-write (the code's working directory);
- the directory with the code and its guard, read-only;
- the interpreter's installation, read-only: its prefixes (a venv and its base installation), the
  directory of its executable and its sysconfig library directories;
- the system's shared libraries, read-only: /usr and the /lib* trees (as the symlinks they are on a
  merged-/usr system) and /etc/ld.so.cache, so the dynamic loader finds libc, libssl, libffi...;
- /dev/null and /dev/urandom.

Each is bind-mounted at its own path, so no path needs translating and a traceback names the real
files. Nothing else exists there: not the project's source, not /etc, /root, /home, /var, the rest
of /tmp, and no /proc at all (no other process can be seen or read; Python does not need it).

pivot_root rather than chroot: a process that stays root inside a chroot can climb out of it (a
second chroot and `..`), while after pivot_root and a detach of the old root there is nothing left
to climb to. An empty tmpfs plus binds rather than tmpfs masks laid over sensitive trees of the real
root: a mask list is a deny list, and whatever it forgets (a new /srv, /opt/secrets, /mnt...) would be
readable; here anything not listed simply does not exist.

The mounts are made in the child between fork and exec (subprocess's preexec_fn), after it left
the worker's mount namespace (unshare(CLONE_NEWNS)) and made every mount private, so nothing
propagates back to the host. Only a process that may create a mount namespace (root, or
CAP_SYS_ADMIN) can; `available` probes it once per interpreter, and the sandbox falls back to its
audit hook alone when it cannot.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2
# glibc has no pivot_root wrapper: the raw system call, by architecture. Elsewhere: no boundary.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}

# statvfs flags of a mount that a bind of it must keep: the kernel refuses a remount that would
# clear a flag locked by a less privileged mount namespace (a container's read-only /usr, say).
_LOCKED = {
    getattr(os, name, 0): flag  # the ST_ names beyond RDONLY and NOSUID are Linux's
    for name, flag in [
        ("ST_RDONLY", MS_RDONLY),
        ("ST_NOSUID", MS_NOSUID),
        ("ST_NODEV", MS_NODEV),
        ("ST_NOEXEC", MS_NOEXEC),
        ("ST_NOATIME", MS_NOATIME),
        ("ST_NODIRATIME", MS_NODIRATIME),
        ("ST_RELATIME", MS_RELATIME),
    ]
}
_LOCKED.pop(0, None)

SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache")
DEVICES = ("/dev/null", "/dev/urandom")

_QUERY = (
    "import json, sys, sysconfig\n"
    "p = sysconfig.get_paths()\n"
    "print(json.dumps({'executable': sys.executable,"
    " 'prefixes': [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],"
    " 'lib_dirs': [p[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib') if k in p],"
    " 'sys_path': sys.path}))\n"
)


@dataclass(frozen=True)
class Interpreter:
    """Where the configured interpreter lives, as it reports it (real paths)."""

    prefixes: tuple[str, ...]  # its prefix and base prefix (a venv and the installation under it)
    executable_dir: str
    lib_dirs: tuple[str, ...]  # what its imports may read: sysconfig's library directories and the
    # sys.path entries inside its prefixes (not a project directory a .pth file may add)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@cache
def interpreter(python: str) -> Interpreter:
    """Ask `python` (in isolated mode, as the sandbox runs it) where its installation is."""
    done = subprocess.run([python, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True)  # noqa: S603
    info = json.loads(done.stdout)
    prefixes = tuple(dict.fromkeys(os.path.realpath(p) for p in info["prefixes"]))
    in_prefix = [p for p in info["sys_path"] if p and any(_under(os.path.realpath(p), r) for r in prefixes)]
    lib_dirs = tuple(dict.fromkeys(os.path.realpath(p) for p in [*info["lib_dirs"], *in_prefix]))
    return Interpreter(prefixes, os.path.dirname(os.path.realpath(info["executable"])), lib_dirs)


@dataclass(frozen=True)
class Mount:
    path: str
    kind: str  # "ro", "rw", "dev" (a bind) or "link" (a symlink, recreated as it is)
    is_dir: bool = True
    link: str = ""
    locked: int = 0


def _locked_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED.items() if flags & st)


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(_under(path, k) for k in kept):
            kept.append(path)
    return kept


def plan(python: str, *, workdir: Path, code_dir: Path) -> list[Mount]:
    """What the child's root holds, computed in the worker (the child only mounts)."""
    interp = interpreter(python)
    mounts: list[Mount] = []
    read_only: list[str] = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            mounts.append(Mount(path, "link", link=os.readlink(path)))
        elif os.path.exists(path):
            read_only.append(path)
    python_dir = os.path.dirname(os.path.abspath(python))
    for path in [*interp.prefixes, interp.executable_dir, python_dir, *interp.lib_dirs]:
        if os.path.isdir(path) and not os.path.islink(path):
            read_only.append(path)
    for path in _outermost(read_only):
        mounts.append(Mount(path, "ro", is_dir=os.path.isdir(path), locked=_locked_flags(path)))
    for path in DEVICES:
        mounts.append(Mount(path, "dev", is_dir=False, locked=_locked_flags(path) & ~MS_NODEV))
    mounts.append(Mount(str(code_dir), "ro", locked=_locked_flags(str(code_dir))))
    mounts.append(Mount(str(workdir), "rw", locked=_locked_flags(str(workdir))))
    return mounts


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    # Looked up here, in the worker: a child between fork and exec should not dlsym.
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    _check(_libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {source} on {target}")


def enter(new_root: str, mounts: list[Mount], workdir: str) -> None:
    """In the child, before exec: leave the worker's mounts for a root that holds only `mounts`."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the worker's namespace
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for m in mounts:
        target = new_root + m.path
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if m.kind == "link":
            os.symlink(m.link, target)
            continue
        if m.is_dir:
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(m.path, target, None, MS_BIND | MS_REC)
        flags = MS_BIND | MS_REMOUNT | MS_NOSUID | m.locked
        flags |= MS_NOEXEC if m.kind == "dev" else MS_NODEV
        if m.kind != "rw":
            flags |= MS_RDONLY
        _mount(None, target, None, flags)
    _mount(None, new_root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(new_root)
    _check(libc.syscall(SYS_PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir(workdir)


def prepare(python: str, root: Path, workdir: Path, code_dir: Path) -> Callable[[], None]:
    """The function the child calls to enter its root; `root/jail` is where the tmpfs goes."""
    new_root = root / "jail"
    new_root.mkdir(exist_ok=True)
    mounts = plan(python, workdir=workdir, code_dir=code_dir)
    _libc()
    return lambda: enter(str(new_root), mounts, str(workdir))


@cache
def available(python: str) -> bool:
    """Whether this worker can give `python` such a root: Linux, a known pivot_root, the privilege
    to make a mount namespace, and an interpreter that starts and imports its stdlib inside it."""
    if platform.system() != "Linux" or platform.machine() not in SYS_PIVOT_ROOT:
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="horizon-jail-probe-") as tmp:
            root = Path(tmp)
            (root / "workspace").mkdir()
            (root / "code").mkdir()
            enter_root = prepare(python, root, root / "workspace", root / "code")
            probe = "import json, decimal, csv, os; assert not os.path.exists('/proc/self')"
            done = subprocess.run(  # noqa: S603 - a fixed probe
                [python, "-I", "-c", probe],
                cwd=root / "workspace",
                preexec_fn=enter_root,  # noqa: PLW1509 - mounts are made in the child
                capture_output=True,
                timeout=30,
            )
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return False
    return done.returncode == 0
