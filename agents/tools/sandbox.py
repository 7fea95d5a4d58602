"""run_python: the agent's code tool. Python in a separate, limited process, on a copy of the workspace.

Risk "high": every profile asks a person before a call runs (approval_risks), unless an operator's
profile says otherwise. What confines a run, outermost first:

- a separate process in its own session, killed with its whole group at the wall-time limit;
- kernel limits set before it starts: CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), file
  size (RLIMIT_FSIZE), open files, no core dumps;
- no network: a new, empty network namespace (unshare(CLONE_NEWNET), when the worker may create
  one, as root can); otherwise an audit hook that refuses every socket;
- its own user (nobody) when the worker runs as root and the interpreter is reachable by that user;
- an environment with nothing of the worker's (no API keys, no database URL), Python in isolated
  mode (-I), and an audit hook, installed before the code runs, that refuses writes outside the
  workspace directory, links, new processes and ctypes;
- only the task's workspace: its files are written into a temporary directory that is the code's
  working directory; afterwards regular files under it are copied back through the workspace's
  path rules (a symlink, a path the rules refuse or a binary file is reported, never copied);
- nothing else of the filesystem: when the worker may create a mount namespace (root can), the
  code runs in one whose root holds only the workspace copy (read-write), its own code, the
  interpreter's installation and shared libraries (read-only), /dev/null and /dev/urandom, and no
  /proc (agents/tools/jail.py): the project's source, /etc, /root, other processes are not there
  at all. Always, and alone where no namespace can be made, the audit hook also refuses reading
  (open) and listing (os.listdir, os.scandir, glob) outside the workspace, the interpreter's library
  directories and those two devices, and anything under /proc. The hook is a second line, not a
  boundary by itself: it cannot see os.stat (existence and sizes stay visible), a relative path
  under a directory descriptor, or native code in an installed extension module.

The tool is transactional: the files it writes back commit with its journal entry, so a resumed
step never applies a run twice. A limit that is hit, or a refusal that stops the code (a write
outside the workspace, a connection), comes back to the model as the tool's error, and a run
stopped either way saves none of its files.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from agents.tools import jail
from agents.tools.registry import ToolContext, ToolError, tool
from agents.tools.workspace import MAX_FILE_CHARS, NOTES_DIR, confine

CLONE_NEWNET = 0x40000000
NOBODY = 65534


@dataclass(frozen=True)
class SandboxConfig:
    python: str = sys.executable
    cpu_seconds: int = 5
    memory_mb: int = 256
    wall_seconds: float = 10.0
    max_output_bytes: int = 64 * 1024  # of stdout and of stderr, as returned to the model
    max_file_bytes: int = 16 * 1024 * 1024  # RLIMIT_FSIZE: any one file the code writes, its output included
    max_code_chars: int = 100_000
    network: str = "auto"  # "namespace" (required), "hook", or "auto": the namespace when available
    filesystem: str = "auto"  # "namespace" (a mount namespace, required), "hook", or "auto", likewise


_config = SandboxConfig()


def configure(**values: Any) -> SandboxConfig:
    """Set the sandbox's limits (tasks_app.runtime does, from the settings)."""
    global _config
    _config = replace(_config, **values)
    return _config


def config() -> SandboxConfig:
    return _config


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _enter_empty_network_namespace() -> None:
    if _libc().unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")


@cache
def namespace_available() -> bool:
    """Whether this process may give a child an empty network namespace (root, or CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        return False
    _libc()  # loaded here, in the parent: a child between fork and exec should not dlopen
    try:
        done = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_enter_empty_network_namespace, timeout=30)  # noqa: PLW1509
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@cache
def can_drop_to_nobody(python: str, jailed: bool = False) -> bool:
    """Whether the code can run as nobody: the worker is root and `python` is reachable by nobody.

    Jailed (in the mount namespace), the directories above the interpreter are the namespace's own
    (0755), so a venv or a pyenv under /root, out of nobody's reach outside, is reachable inside."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory(prefix="horizon-nobody-probe-") as tmp:
        root = Path(tmp)
        (root / "workspace").mkdir()
        (root / "code").mkdir()
        os.chmod(root, 0o755)
        enter_root = jail.prepare(python, root, root / "workspace", root / "code") if jailed else None

        def drop() -> None:
            if enter_root is not None:
                enter_root()
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        try:
            done = subprocess.run(  # noqa: S603 - a fixed probe
                [python, "-I", "-c", "pass"],
                cwd=root / "workspace",
                preexec_fn=drop,
                timeout=30,
                capture_output=True,  # noqa: PLW1509
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0


# Installed in the child before the agent's code runs. Audit hooks cannot be removed by the code
# they watch; ctypes (which could reach around them) is refused with them.
GUARD = r"""
import json, os, sys
ROOT = os.path.realpath(os.getcwd())
BLOCK_NET = sys.argv[2] == "1"
# What the code may read besides its workspace: the interpreter's library directories, and devices.
READ_DIRS = tuple(json.loads(sys.argv[3]))
READ_FILES = ("/dev/null", "/dev/urandom")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MAGIC = "*?["

def _real(path):
    # Relative paths resolve against the real working directory (os.chdir is confined too).
    return os.path.realpath(os.fsdecode(path))

def _within(real, root):
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

def _inside(path):
    try:
        return _within(_real(path), ROOT)
    except Exception:
        return False

def _is_devnull(path):
    try:
        return _real(path) == "/dev/null"
    except Exception:
        return False

def _readable(path):
    try:
        real = _real(path)
    except Exception:
        return False
    if real == "/proc" or real.startswith("/proc/"):
        return False  # other processes' environments and command lines, the worker's own included
    return _within(real, ROOT) or real in READ_FILES or any(_within(real, d) for d in READ_DIRS)

def _refuse(what):
    raise PermissionError("sandbox: " + what)

_PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.utime", "os.truncate",
                "os.chdir", "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move"}
_LIST_EVENTS = {"os.listdir", "os.scandir"}
_PROCESS_EVENTS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym",
                   "ctypes.cdata", "ctypes.call_function"}
_NET_EVENTS = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
               "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}

def _hook(event, args):
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, 0))[:3]
        if path is None or isinstance(path, int):
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
        if writing and not (_inside(path) or _is_devnull(path)):
            _refuse("writing outside the workspace is refused: %s" % (os.fsdecode(path),))
        if not writing and not _readable(path):
            _refuse("reading outside the workspace is refused: %s" % (os.fsdecode(path),))
    elif event in _LIST_EVENTS:
        path = args[0] if args else None
        if path is None or isinstance(path, int):
            return  # the working directory, or a directory opened (and checked) already
        if not _readable(path):
            _refuse("listing outside the workspace is refused: %s" % (os.fsdecode(path),))
    elif event in ("glob.glob", "glob.glob/2"):
        # glob swallows a refused scandir and answers []; refuse the pattern itself, by the
        # directory before its first wildcard.
        pattern = os.fsdecode(args[0])
        if len(args) > 2 and args[2] is not None:
            pattern = os.path.join(os.fsdecode(args[2]), pattern)
        cut = min([pattern.find(c) for c in MAGIC if c in pattern] or [len(pattern)])
        base = os.path.dirname(pattern[:cut]) or "."
        if not _readable(base):
            _refuse("listing outside the workspace is refused: %s" % (pattern,))
    elif event in _PATH_EVENTS:
        if args and not (event == "os.chdir" and isinstance(args[0], int)) and not _inside(args[0]):
            _refuse("%s outside the workspace is refused: %s" % (event, os.fsdecode(args[0])))
        if event in ("shutil.copyfile", "shutil.copytree", "shutil.move") and len(args) > 1 and not _inside(args[1]):
            _refuse("%s outside the workspace is refused: %s" % (event, os.fsdecode(args[1])))
    elif event == "os.rename":
        if not (_inside(args[0]) and _inside(args[1])):
            _refuse("renaming across the workspace boundary is refused")
    elif event in ("os.symlink", "os.link"):
        _refuse("links are refused in the workspace")
    elif event in _PROCESS_EVENTS:
        _refuse("%s is refused (no new processes, no ctypes)" % (event,))
    elif BLOCK_NET and event in _NET_EVENTS:
        _refuse("network access is refused")

# The code is read before the hook is in place: it lives beside the workspace, not in it.
with open(sys.argv[1], encoding="utf-8") as _f:
    _source = _f.read()
del _f
sys.addaudithook(_hook)
sys.argv = ["main.py"]
exec(compile(_source, "main.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""


@dataclass(frozen=True)
class _Run:
    returncode: int
    timed_out: bool
    stdout: bytes
    stderr: bytes
    stdout_size: int
    stderr_size: int


def _interpreter(python: str) -> jail.Interpreter:
    try:
        return jail.interpreter(python)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        raise ToolError(f"the sandbox's interpreter {python} does not start: {exc}") from exc


def _read_capped(path: Path, cap: int) -> tuple[bytes, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        return f.read(cap), size


def _run(
    cfg: SandboxConfig, root: Path, workdir: Path, *, isolate_net: bool, as_nobody: bool, enter_root: Callable[[], None] | None
) -> _Run:
    memory = cfg.memory_mb * 1024 * 1024
    read_dirs = json.dumps(_interpreter(cfg.python).lib_dirs)

    def limit() -> None:  # runs in the child, between fork and exec
        os.setsid()
        # Namespaces first: entering the root runs Python (mkdir, mount), which the address-space
        # limit, lower than a worker's own, could starve.
        if isolate_net:
            _enter_empty_network_namespace()
        if enter_root is not None:
            enter_root()
        resource.setrlimit(resource.RLIMIT_CPU, (cfg.cpu_seconds, cfg.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg.max_file_bytes, cfg.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_nobody:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    code_dir = root / "code"
    block_net = "0" if isolate_net else "1"  # the guard's own socket refusal, when no namespace cuts the network
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8", "TMPDIR": str(workdir)}
    out_path, err_path = root / "stdout", root / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(  # noqa: S603 - the command is fixed; the code is data in a file
            [cfg.python, "-I", "-B", str(code_dir / "guard.py"), str(code_dir / "main.py"), block_net, read_dirs],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=limit,  # noqa: PLW1509 - rlimits and namespaces must be set in the child
            close_fds=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=cfg.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # The whole session goes, children included, whether it finished or not.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stdout, out_size = _read_capped(out_path, cfg.max_output_bytes)
    stderr, err_size = _read_capped(err_path, cfg.max_output_bytes)
    return _Run(proc.returncode, timed_out, stdout, stderr, out_size, err_size)


def _text(data: bytes, size: int, cap: int) -> str:
    text = data.decode("utf-8", errors="replace")
    return text + (f"\n... [output truncated: {size} bytes, the limit is {cap}]" if size > cap else "")


NO_NETWORK = ("Network is unreachable", "name resolution", "Name or service not known", "sandbox: network access is refused")


def _refusal(returncode: int, stderr: str) -> str:
    """The sandbox's refusal that ended the code (an uncaught one), as the tool's error; "" if none.

    A run stopped this way saves none of its files: what it wrote assumed the refused step worked."""
    if returncode == 0:
        return ""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if last.startswith("PermissionError: sandbox: network") or any(marker in last for marker in NO_NETWORK):
        return f"refused: the sandbox has no network access ({last})"
    if last.startswith("PermissionError: sandbox: "):
        return "refused: " + last.removeprefix("PermissionError: sandbox: ")
    return ""


def _materialise(ctx: ToolContext, workdir: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in ctx.store.workspace_list(ctx.task_id):
        if path.startswith(NOTES_DIR + "/"):
            continue  # the notes are the agent's memory, not files for code to change
        content = ctx.store.workspace_read(ctx.task_id, path)
        if content is None:
            continue
        target = workdir / confine(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        files[path] = content
    return files


def _collect(ctx: ToolContext, workdir: Path, before: dict[str, str]) -> tuple[list[str], list[str]]:
    """Copy changed and new regular files back through the workspace's rules; report the rest."""
    written: list[str] = []
    refused: list[str] = []
    for dirpath, dirnames, filenames in os.walk(workdir, followlinks=False):
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                refused.append(f"{os.path.relpath(os.path.join(dirpath, name), workdir)}: a symlink")
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(workdir).as_posix()
            if full.is_symlink() or not full.is_file():
                refused.append(f"{rel}: a symlink or special file")
                continue
            try:
                normal = confine(rel)
            except ToolError as exc:
                refused.append(f"{rel}: {exc}")
                continue
            data = full.read_bytes()
            try:
                content = data.decode("utf-8")
            except UnicodeDecodeError:
                refused.append(f"{rel}: not UTF-8 text")
                continue
            if len(content) > MAX_FILE_CHARS:
                refused.append(f"{rel}: {len(content)} characters; the limit is {MAX_FILE_CHARS}")
                continue
            if before.get(normal) != content:
                ctx.store.workspace_write(ctx.task_id, normal, content)
                written.append(normal)
    return written, refused


@tool(idempotent=False, transactional=True, risk="high")
def run_python(ctx: ToolContext, code: str) -> dict[str, Any]:
    """Run Python code in a sandbox whose working directory holds the task's workspace files.

    No network; limited CPU time, memory, wall time and output. Files the code creates or changes in
    its working directory are saved to the workspace. Returns exit_code, stdout, stderr and the files
    written."""
    cfg = _config
    if len(code) > cfg.max_code_chars:
        raise ToolError(f"the code is {len(code)} characters; the limit is {cfg.max_code_chars}")
    if "\x00" in code:
        raise ToolError("the code contains a NUL byte")
    if cfg.network == "namespace" and not namespace_available():
        raise ToolError("run_python is configured to need a network namespace, which this worker cannot create")
    if cfg.filesystem == "namespace" and not jail.available(cfg.python):
        raise ToolError("run_python is configured to need a mount namespace, which this worker cannot create")
    isolate_net = cfg.network != "hook" and namespace_available()
    jailed = cfg.filesystem != "hook" and jail.available(cfg.python)
    as_nobody = can_drop_to_nobody(cfg.python, jailed)
    with tempfile.TemporaryDirectory(prefix="horizon-run-") as tmp:
        root = Path(tmp)
        workdir = root / "workspace"
        workdir.mkdir()
        code_dir = root / "code"
        code_dir.mkdir()
        (code_dir / "guard.py").write_text(GUARD, encoding="utf-8")
        (code_dir / "main.py").write_text(code, encoding="utf-8")
        enter_root = jail.prepare(cfg.python, root, workdir, code_dir) if jailed else None
        before = _materialise(ctx, workdir)
        if as_nobody:
            for dirpath, _dirs, names in os.walk(workdir):
                os.chown(dirpath, NOBODY, NOBODY)
                for name in names:
                    os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
            os.chmod(root, 0o755)
        run = _run(cfg, root, workdir, isolate_net=isolate_net, as_nobody=as_nobody, enter_root=enter_root)
        stderr = _text(run.stderr, run.stderr_size, cfg.max_output_bytes)
        if run.timed_out:
            raise ToolError(f"killed: the code ran past the wall-time limit of {cfg.wall_seconds:g} s")
        if run.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            raise ToolError(f"killed: the code used up its CPU time limit of {cfg.cpu_seconds} s")
        if "MemoryError" in stderr:
            raise ToolError(f"killed: the code went past its memory limit of {cfg.memory_mb} MiB\n{stderr[-2000:]}")
        if run.returncode == -signal.SIGXFSZ:
            raise ToolError(f"killed: the code wrote a file past the limit of {cfg.max_file_bytes} bytes")
        if run.returncode < 0:
            raise ToolError(f"killed by signal {signal.Signals(-run.returncode).name}\n{stderr[-2000:]}")
        refusal = _refusal(run.returncode, stderr)
        if refusal:
            raise ToolError(refusal)
        written, refused = _collect(ctx, workdir, before)
    return {
        "exit_code": run.returncode,
        "stdout": _text(run.stdout, run.stdout_size, cfg.max_output_bytes),
        "stderr": stderr,
        "written": written,
        "refused": refused,
        "isolation": {
            "network": "namespace" if isolate_net else "audit hook",
            "filesystem": "mount namespace" if jailed else "audit hook",
            "user": "nobody" if as_nobody else "worker",
        },
    }
