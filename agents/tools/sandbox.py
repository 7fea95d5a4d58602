"""run_python: the agent's code tool. Python in a process tree isolated by the kernel, on a copy of the workspace.

Risk "high": every profile asks a person before a call runs (approval_risks), unless an operator's
profile says otherwise. Each call runs in a fresh bubblewrap sandbox (agents/tools/jail.py): new
user, mount, PID, network, IPC and UTS namespaces, no_new_privs, a seccomp filter
(agents/tools/seccomp.py), uid 65534, a read-only root holding only the interpreter and its standard
library, the workspace copy as the only writable directory, a private /tmp, four environment
variables, no network. Kernel limits (CPU, address space, file size, open files, processes) are set
before the code runs. At the wall-time limit the whole process group of bwrap is killed; bwrap's
death kills the PID namespace, so nothing the code started outlives the call. The audit hook of
agents/tools/guard.py stays as defence in depth and for readable refusals; nothing relies on it.

Fail closed: where the sandbox cannot be built (no bwrap, no user namespaces), `isolation_problem()`
says why, the tool is not offered to the model (Tool.unavailable) and a call returns that reason as
a tool error. HORIZON_SANDBOX_UNSAFE (off by default, refused in production) runs the code as a
plain child process instead, with only the limits and the guard: for local experiments.

The tool is transactional: the files it writes back commit with its journal entry, so a resumed
step never applies a run twice. A limit that is hit, or a refusal that stops the code (a write
outside the workspace, a connection), comes back to the model as the tool's error, and a run
stopped either way saves none of its files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agents.tools import jail
from agents.tools.guard import GUARD
from agents.tools.registry import ToolContext, ToolError, tool
from agents.tools.workspace import MAX_FILE_CHARS, NOTES_DIR, confine

logger = logging.getLogger(__name__)

UNSAFE_BANNER = "UNSAFE: HORIZON_SANDBOX_UNSAFE is on; run_python runs code WITHOUT kernel isolation (docs/security.md)"


@dataclass(frozen=True)
class SandboxConfig:
    python: str = sys.executable
    cpu_seconds: int = 5
    memory_mb: int = 256
    wall_seconds: float = 10.0
    max_output_bytes: int = 64 * 1024  # of stdout and of stderr, as returned to the model
    max_file_bytes: int = 16 * 1024 * 1024  # RLIMIT_FSIZE: any one file the code writes, its output included
    max_code_chars: int = 100_000
    max_processes: int = 32  # RLIMIT_NPROC, counted in the sandbox's own user namespace
    max_open_files: int = 64
    tmp_bytes: int = 16 * 1024 * 1024  # the private /tmp (a tmpfs)
    workspace_bytes: int = 64 * 1024 * 1024  # all files in the workspace copy; watched, killed past it
    bwrap: str = ""  # bubblewrap's path; empty: bwrap on PATH, else /usr/bin/bwrap
    site_packages: bool = False  # show the interpreter's site-packages too (the standard library only, by default)
    unsafe: bool = False  # no kernel isolation at all: local experiments only


_config = SandboxConfig()


def configure(**values: Any) -> SandboxConfig:
    """Set the sandbox's limits (tasks_app.runtime does, from the settings)."""
    global _config
    _config = replace(_config, **values)
    return _config


def config() -> SandboxConfig:
    return _config


def isolation_problem() -> str | None:
    """Why run_python cannot be offered here (None: it can). The unsafe mode is never a problem."""
    if _config.unsafe:
        return None
    return jail.problem(_config.python, _config.site_packages, _config.bwrap)


def _unavailable() -> str | None:
    problem = isolation_problem()
    return None if problem is None else f"run_python is not available on this worker: {problem}"


@dataclass(frozen=True)
class _Run:
    returncode: int
    timed_out: bool
    over_quota: str
    stdout: bytes
    stderr: bytes
    stdout_size: int
    stderr_size: int


def _read_capped(path: Path, cap: int) -> tuple[bytes, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        return f.read(cap), size


WORKSPACE_MAX_FILES = 10_000


def _workspace_excess(workdir: Path, limit: int, max_entries: int = WORKSPACE_MAX_FILES) -> str:
    """What is over the workspace's quota ("" when nothing). A root worker's workspace is a sized tmpfs
    (jail.sized_workspace); an unprivileged worker's, or the unsafe mode's, is a plain directory of the
    host, so its total is watched from here: a fast writer gets some way past it before the kill."""
    total = entries = 0
    stack = [str(workdir)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as it:
            for entry in it:
                entries += 1
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        if entries > max_entries:
            return f"more than {max_entries} files"
        if total > limit:
            return f"more than {limit // (1024 * 1024)} MiB"
    return ""


def _limits(cfg: SandboxConfig) -> dict[str, list[int]]:
    memory = cfg.memory_mb * 1024 * 1024
    return {
        "RLIMIT_CPU": [cfg.cpu_seconds, cfg.cpu_seconds + 1],
        "RLIMIT_AS": [memory, memory],
        "RLIMIT_FSIZE": [cfg.max_file_bytes, cfg.max_file_bytes],
        "RLIMIT_NOFILE": [cfg.max_open_files, cfg.max_open_files],
        "RLIMIT_NPROC": [cfg.max_processes, cfg.max_processes],
        "RLIMIT_CORE": [0, 0],
    }


def _command(
    cfg: SandboxConfig, root: Path, workdir: Path, code_dir: Path
) -> tuple[list[str], dict[str, Any], jail.Launch | None]:
    """The command line and Popen arguments: bubblewrap, or under the unsafe mode the interpreter alone."""
    interp = jail.interpreter(cfg.python, cfg.site_packages)
    guard_config: dict[str, Any] = {"limits": _limits(cfg), "read_dirs": list(interp.read_dirs)}
    if cfg.unsafe:
        guard_config |= {"main": str(code_dir / "main.py"), "block_net": True}
        argv = [interp.executable, "-I", "-B", str(code_dir / "guard.py"), json.dumps(guard_config)]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8", "TMPDIR": str(workdir)}
        return argv, {"cwd": workdir, "env": env}, None
    path = jail.bwrap(cfg.bwrap)
    if path is None:
        raise ToolError("run_python is not available on this worker: bubblewrap (bwrap) is not installed")
    # In the sandbox the network namespace is empty: the guard leaves sockets to the kernel.
    guard_config |= {"main": f"{jail.CODE_DIR}/main.py", "block_net": False}
    argv = ["-I", "-B", f"{jail.CODE_DIR}/guard.py", json.dumps(guard_config)]
    launch = jail.Launch(interp, root=root, workdir=workdir, code_dir=code_dir, tmp_bytes=cfg.tmp_bytes, argv=argv)
    return [path, *launch.args[1:]], {"env": {}, **launch.popen_args()}, launch


def _run(cfg: SandboxConfig, root: Path, workdir: Path, code_dir: Path) -> _Run:
    argv, extra, launch = _command(cfg, root, workdir, code_dir)
    out_path, err_path = root / "stdout", root / "stderr"
    timed_out, over_quota = False, ""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(  # noqa: S603, PLW1509 - the command is fixed; the code is data in a file
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True, close_fds=True, **extra
            )
        finally:
            if launch is not None:
                launch.close()
        deadline = time.monotonic() + cfg.wall_seconds
        try:
            while proc.poll() is None:
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                over_quota = _workspace_excess(workdir, cfg.workspace_bytes)
                if over_quota:
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(0.02, max(0.0, deadline - time.monotonic())))
        finally:
            # bwrap's whole group goes; its death takes the PID namespace, and every process in it, along.
            # Unsafe, only the group: a child that left it (setsid) survives (docs/security.md).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if launch is not None:
                launch.wait_for_namespace_end()
    stdout, out_size = _read_capped(out_path, cfg.max_output_bytes)
    stderr, err_size = _read_capped(err_path, cfg.max_output_bytes)
    return _Run(proc.returncode, timed_out, over_quota, stdout, stderr, out_size, err_size)


def _signal_of(returncode: int, isolated: bool) -> int:
    """The signal that ended the code, 0 if none: bwrap reports a child killed by signal N as 128 + N."""
    if returncode < 0:
        return -returncode
    if isolated and 128 < returncode < 128 + 65:
        return returncode - 128
    return 0


def _text(data: bytes, size: int, cap: int) -> str:
    text = data.decode("utf-8", errors="replace")
    return text + (f"\n... [output truncated: {size} bytes, the limit is {cap}]" if size > cap else "")


NO_NETWORK = (
    "Network is unreachable",
    "Connection refused",
    "name resolution",
    "Name or service not known",
    "sandbox: network access is refused",
)


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


@tool(idempotent=False, transactional=True, risk="high", unavailable=_unavailable)
def run_python(ctx: ToolContext, code: str) -> dict[str, Any]:
    """Run Python code in a sandbox whose working directory holds the task's workspace files.

    No network; the standard library only; limited CPU time, memory, wall time and output. Files the
    code creates or changes in its working directory are saved to the workspace. Returns exit_code,
    stdout, stderr and the files written."""
    cfg = _config
    if len(code) > cfg.max_code_chars:
        raise ToolError(f"the code is {len(code)} characters; the limit is {cfg.max_code_chars}")
    if "\x00" in code:
        raise ToolError("the code contains a NUL byte")
    problem = _unavailable()
    if problem:
        raise ToolError(problem)
    if cfg.unsafe:
        logger.warning(UNSAFE_BANNER)
    with tempfile.TemporaryDirectory(prefix="horizon-run-") as tmp, contextlib.ExitStack() as mounted:
        root = Path(tmp)
        workdir = root / "workspace"
        workdir.mkdir()
        if not cfg.unsafe:  # unmounted (the stack exits first) before the directory goes
            mounted.enter_context(jail.sized_workspace(workdir, cfg.workspace_bytes, WORKSPACE_MAX_FILES))
        code_dir = root / "code"
        code_dir.mkdir(mode=0o755)
        (code_dir / "guard.py").write_text(GUARD, encoding="utf-8")
        (code_dir / "main.py").write_text(code, encoding="utf-8")
        before = _materialise(ctx, workdir)
        if not cfg.unsafe and os.geteuid() == 0:
            # bwrap runs as uid 65534 (jail.Launch): the workspace copy is that user's.
            for dirpath, _dirs, names in os.walk(workdir):
                os.chown(dirpath, jail.SANDBOX_UID, jail.SANDBOX_UID)
                for name in names:
                    os.chown(os.path.join(dirpath, name), jail.SANDBOX_UID, jail.SANDBOX_UID)
        run = _run(cfg, root, workdir, code_dir)
        stderr = _text(run.stderr, run.stderr_size, cfg.max_output_bytes)
        killed_by = _signal_of(run.returncode, not cfg.unsafe)
        if run.timed_out:
            raise ToolError(f"killed: the code ran past the wall-time limit of {cfg.wall_seconds:g} s")
        if run.over_quota:
            raise ToolError(f"killed: the code wrote {run.over_quota} into its workspace")
        if killed_by in (signal.SIGXCPU, signal.SIGKILL):
            raise ToolError(f"killed: the code used up its CPU time limit of {cfg.cpu_seconds} s")
        if "MemoryError" in stderr:
            raise ToolError(f"killed: the code went past its memory limit of {cfg.memory_mb} MiB\n{stderr[-2000:]}")
        if killed_by == signal.SIGXFSZ:
            raise ToolError(f"killed: the code wrote a file past the limit of {cfg.max_file_bytes} bytes")
        if killed_by:
            raise ToolError(f"killed by signal {signal.Signals(killed_by).name}\n{stderr[-2000:]}")
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
        "isolation": UNSAFE_BANNER if cfg.unsafe else "bubblewrap: user, mount, pid, net, ipc and uts namespaces; seccomp",
    }
