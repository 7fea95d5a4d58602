"""run_python's limits, each ending in a clear tool error: CPU, wall time, memory, network, writes
outside the workspace, links, reads and listings outside it; and the workspace: its files are the
code's, its changes come back."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.tools import jail, sandbox
from agents.tools.registry import ToolContext, ToolError
from agents.tools.sandbox import run_python
from agents.types import NewTask
from tests.conftest import make_scenario

pytestmark = pytest.mark.usefixtures("tool_limits")


@pytest.fixture
def ctx() -> ToolContext:
    store = InMemoryStore()
    task_id = store.create_task(NewTask(goal="g"))
    store.workspace_write(task_id, "data/input.txt", "three\nlines\nhere\n")
    return ToolContext(task_id=task_id, step_index=0, idempotency_key="k", store=store)


def test_the_code_runs_on_the_workspace_and_its_files_come_back(ctx: ToolContext) -> None:
    code = (
        "import os\n"
        "lines = open('data/input.txt').read().splitlines()\n"
        "open('data/count.txt', 'w').write(str(len(lines)))\n"
        "print('cwd files:', sorted(os.listdir('.')))\n"
        "print('env:', sorted(os.environ))\n"
    )
    out = run_python(ctx, code=code)
    assert out["exit_code"] == 0, out
    assert "cwd files: ['data']" in out["stdout"]
    # Nothing of the worker's environment (API keys, database URL) reaches the code.
    assert "env: ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']" in out["stdout"]
    assert out["written"] == ["data/count.txt"]
    assert ctx.store.workspace_read(ctx.task_id, "data/count.txt") == "3"


def test_an_exception_is_reported_with_its_traceback(ctx: ToolContext) -> None:
    out = run_python(ctx, code="raise ValueError('nope')")
    assert out["exit_code"] == 1 and "ValueError: nope" in out["stderr"]


def test_a_runaway_loop_is_killed_by_the_cpu_limit(ctx: ToolContext) -> None:
    sandbox.configure(cpu_seconds=1, wall_seconds=60)
    with pytest.raises(ToolError, match="killed: the code used up its CPU time limit of 1 s"):
        run_python(ctx, code="while True:\n    pass\n")


def test_a_sleeper_is_killed_by_the_wall_time_limit(ctx: ToolContext) -> None:
    sandbox.configure(wall_seconds=1)
    with pytest.raises(ToolError, match="killed: the code ran past the wall-time limit of 1 s"):
        run_python(ctx, code="import time\ntime.sleep(60)\n")


def test_a_memory_hog_is_stopped_by_the_memory_limit(ctx: ToolContext) -> None:
    sandbox.configure(memory_mb=128)
    with pytest.raises(ToolError, match="killed: the code went past its memory limit of 128 MiB"):
        run_python(ctx, code="blocks = [bytearray(32 * 1024 * 1024) for _ in range(64)]\n")


def test_output_is_capped(ctx: ToolContext) -> None:
    sandbox.configure(max_output_bytes=1000)
    out = run_python(ctx, code="print('x' * 100000)")
    assert len(out["stdout"]) < 1200 and "output truncated: 100001 bytes, the limit is 1000" in out["stdout"]


@pytest.fixture
def listener() -> tuple[int, list[bytes]]:
    """A TCP server on 127.0.0.1 that records whatever reaches it."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)

    def accept() -> None:
        for _ in range(100):
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            received.append(conn.recv(100))
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1], received


def test_a_network_attempt_fails(ctx: ToolContext, listener: tuple[int, list[bytes]]) -> None:
    # The sandbox's network namespace has a loopback device with nothing on it: the worker's port is not there.
    port, received = listener
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')\nprint('sent')\n"
    with pytest.raises(ToolError, match="refused: the sandbox has no network access .*Connection refused"):
        run_python(ctx, code=code)
    with pytest.raises(ToolError, match="refused: the sandbox has no network access"):
        run_python(ctx, code="import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)")
    assert received == []


def test_code_that_catches_a_refusal_goes_on_and_hears_why(ctx: ToolContext) -> None:
    code = "try:\n    open('/tmp/horizon-escape.txt', 'w')\nexcept PermissionError as e:\n    print('caught:', e)\n"
    out = run_python(ctx, code=code)
    assert out["exit_code"] == 0
    assert "caught: sandbox: writing outside the workspace is refused: /tmp/horizon-escape.txt" in out["stdout"]


REFUSED = (
    r"^refused: (writing outside the workspace|os\.remove outside the workspace|links are refused"
    r"|\S+ is refused \(no new processes, no ctypes\))"
)


@pytest.mark.parametrize(
    "code",
    [
        "open('../escape.txt', 'w').write('x')",
        "open('/tmp/horizon-escape.txt', 'w').write('x')",
        "import os\nos.open('/tmp/horizon-escape.txt', os.O_CREAT | os.O_WRONLY)",
        "import os\nos.remove('/etc/hostname')",
        "import os\nos.symlink('/etc/passwd', 'passwd')",
        "import subprocess\nsubprocess.run(['sh', '-c', 'echo x > /tmp/horizon-escape.txt'])",
        "import os\nos.system('echo x > /tmp/horizon-escape.txt')",
        "import ctypes",
    ],
)
def test_writes_outside_the_workspace_links_and_new_processes_are_refused(ctx: ToolContext, code: str) -> None:
    with pytest.raises(ToolError, match=REFUSED):
        run_python(ctx, code="open('written-before.txt', 'w').write('x')\n" + code)
    assert not Path("/tmp/horizon-escape.txt").exists()
    assert ctx.store.workspace_list(ctx.task_id) == ["data/input.txt"]  # a stopped run saves nothing


def test_code_limits_are_checked_before_anything_runs(ctx: ToolContext) -> None:
    sandbox.configure(max_code_chars=10)
    with pytest.raises(ToolError, match="the code is 19 characters; the limit is 10"):
        run_python(ctx, code="print('0123456789')")
    with pytest.raises(ToolError, match="NUL byte"):
        run_python(ctx, code="\x00")


def test_copying_back_skips_symlinks_and_binary_files(ctx: ToolContext, tmp_path: Path) -> None:
    # The audit hook refuses links; should one appear anyway, it is never followed back into the workspace.
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    (tmp_path / "linked-dir").symlink_to("/etc")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    written, refused = sandbox._collect(ctx, tmp_path, {})
    assert written == ["ok.txt"]
    assert sorted(refused) == ["blob.bin: not UTF-8 text", "linked-dir: a symlink", "passwd: a symlink or special file"]
    assert ctx.store.workspace_read(ctx.task_id, "passwd") is None


def test_a_limit_that_is_hit_reaches_the_model_as_the_tools_error() -> None:
    # An operator's profile that lets run_python through without approval: the limits still hold.
    sandbox.configure(cpu_seconds=1, wall_seconds=60)
    scenario = make_scenario(
        1, tool_steps={0: [{"tool": "run_python", "arguments": {"code": "while True:\n    pass\n"}}, {"final": "gave up"}]}
    )
    store = InMemoryStore()
    profiles = {"default": AgentProfile(name="default", approval_risks=())}
    result = Runner(store, ScriptedModel(scenario), profiles=profiles).start("Loop forever")
    assert result.status == "completed"
    [step] = store.steps(result.task_id)
    tool_messages = [m for m in step.transcript if m["role"] == "tool"]
    assert tool_messages == [
        {
            "role": "tool",
            "tool_call_id": tool_messages[0]["tool_call_id"],
            "content": json.dumps({"error": "killed: the code used up its CPU time limit of 1 s"}),
        }
    ]
    [entry] = [e for e in store.journal_entries(result.task_id) if e.name == "run_python"]
    assert entry.result == {"ok": False, "error": "killed: the code used up its CPU time limit of 1 s"}


# --- only the task's workspace: reads and listings -------------------------------------------------
# The audit hook answers these first, with a readable refusal; the kernel's answer to the same reads
# with the hook disarmed is tests/security/test_redteam.py's.

REPO = Path(__file__).resolve().parents[2]
MANAGE_PY = str(REPO / "manage.py")


@pytest.mark.parametrize(
    ("code", "refusal"),
    [
        (f"open({MANAGE_PY!r}).read()", f"reading outside the workspace is refused: {MANAGE_PY}"),
        ("open('/etc/passwd').read()", "reading outside the workspace is refused: /etc/passwd"),
        ("open('/proc/1/environ', 'rb').read()", "reading outside the workspace is refused: /proc/1/environ"),
        ("open('/proc/self/environ', 'rb').read()", "reading outside the workspace is refused: /proc/self/environ"),
        ("import os\nos.open('/etc/hostname', os.O_RDONLY)", "reading outside the workspace is refused: /etc/hostname"),
        ("open('../code/main.py').read()", "reading outside the workspace is refused: ../code/main.py"),
        ("import os\nos.listdir('/')", "listing outside the workspace is refused: /"),
        (f"import os\nos.listdir({str(REPO)!r})", f"listing outside the workspace is refused: {REPO}"),
        ("import os\nlist(os.scandir('/etc'))", "listing outside the workspace is refused: /etc"),
        ("import os\nos.listdir('/proc/1')", "listing outside the workspace is refused: /proc/1"),
        ("import glob\nglob.glob('/etc/*')", "listing outside the workspace is refused: /etc/*"),
        ("import pathlib\nlist(pathlib.Path('/root').iterdir())", "listing outside the workspace is refused: /root"),
        ("import os\nos.chdir('/')\nopen('etc/passwd').read()", "os.chdir outside the workspace is refused: /"),
    ],
)
def test_reads_and_listings_outside_the_workspace_are_refused(ctx: ToolContext, code: str, refusal: str) -> None:
    with pytest.raises(ToolError, match="^refused: " + re.escape(refusal) + "$"):
        run_python(ctx, code=code)


def test_the_stdlib_and_the_workspace_still_work(ctx: ToolContext) -> None:
    code = (
        "import csv, datetime, decimal, glob, json, math, os, pathlib, tempfile\n"
        "rows = list(csv.reader(open('data/input.txt')))\n"
        "os.mkdir('out')\n"
        "result = {'rows': len(rows), 'pi': round(math.pi, 2), 'twice': str(decimal.Decimal('1.10') * 2),"
        " 'day': datetime.date(2026, 1, 2).isoformat()}\n"
        "json.dump(result, open('out/result.json', 'w'), sort_keys=True)\n"
        "with tempfile.NamedTemporaryFile('w') as scratch:\n"
        "    scratch.write('gone afterwards')\n"
        "print(sorted(os.listdir('.')), sorted(os.listdir('data')), [e.name for e in os.scandir('out')])\n"
        "print(sorted(glob.glob('*/*')), sorted(p.name for p in pathlib.Path('.').iterdir()))\n"
        "open('/dev/null', 'w').write('discarded')\n"
        "print(len(os.urandom(4)), len(open('/dev/urandom', 'rb').read(4)), open('/dev/null').read() == '')\n"
    )
    out = run_python(ctx, code=code)
    assert out["exit_code"] == 0, out
    assert out["stdout"].splitlines() == [
        "['data', 'out'] ['input.txt'] ['result.json']",
        "['data/input.txt', 'out/result.json'] ['data', 'out']",
        "4 4 True",
    ]
    expected = {"day": "2026-01-02", "pi": 3.14, "rows": 3, "twice": "2.20"}
    assert ctx.store.workspace_read(ctx.task_id, "out/result.json") == json.dumps(expected, sort_keys=True)


def test_the_code_runs_in_its_namespaces_under_the_kernel_limits(ctx: ToolContext) -> None:
    # What the code sees of itself; and, from the host, that its processes are not root there either.
    marker = f"hzuid{os.getpid() % 100000}"
    code = (
        "import __main__ as g\ng._hook.__code__ = (lambda event, args: None).__code__\n"  # ctypes past the guard
        "import ctypes, os, resource, socket, time\n"
        "libc = ctypes.CDLL(None)\n"
        f"libc.prctl(15, b'{marker}', 0, 0, 0)\n"
        "print(os.getuid(), os.getgid(), os.getpid(), socket.gethostname(), os.path.exists('/proc'))\n"
        "print(libc.prctl(39, 0, 0, 0, 0), libc.prctl(21, 0, 0, 0, 0))\n"  # PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP
        "print([resource.getrlimit(getattr(resource, 'RLIMIT_' + n)) for n in ('CPU', 'AS', 'FSIZE', 'NOFILE', 'NPROC')])\n"
        "print(sorted(os.listdir('/')), sorted(os.environ))\n"
        "time.sleep(1.5)\n"
    )
    seen: list[str] = []

    def watch() -> None:
        for _ in range(100):
            for entry in Path("/proc").iterdir():
                with contextlib.suppress(OSError):
                    if entry.name.isdigit() and (entry / "comm").read_text().strip() == marker:
                        seen.extend(line for line in (entry / "status").read_text().splitlines() if line.startswith("Uid:"))
                        return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = run_python(ctx, code=code)
    watcher.join()
    lines = out["stdout"].splitlines()
    uid, gid, pid, hostname, proc = lines[0].split()
    assert (uid, gid, hostname, proc) == ("65534", "65534", "sandbox", "False") and int(pid) < 10
    assert lines[1] == "1 2"  # no_new_privs, seccomp filter mode
    mib = 1024 * 1024
    assert lines[2] == str([(5, 6), (256 * mib, 256 * mib), (16 * mib, 16 * mib), (64, 64), (32, 32)])
    # The root holds what the sandbox mounts and nothing else: the top directories of the interpreter's
    # paths and libraries (/usr, /lib, a pyenv's /root...), /etc (ld.so.cache), /dev, /tmp, the code, the workspace.
    interp = jail.interpreter(sandbox.config().python)
    paths = [interp.executable, *interp.read_dirs, *(dest for _src, dest in interp.libraries), *(p for _t, p in interp.links)]
    tops = sorted({p.split("/")[1] for p in paths} | {"dev", "etc", "sandbox", "tmp", "workspace"})
    assert lines[3] == f"{tops} ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"
    host_uid = os.geteuid() if os.geteuid() != 0 else 65534
    assert seen and seen[0].split()[1:] == [str(host_uid)] * 4


RUN_AND_WAIT = """
import sys
from agents.inmemory_store import InMemoryStore
from agents.tools import sandbox
from agents.tools.registry import ToolContext
from agents.types import NewTask
sandbox.configure(wall_seconds=60)
store = InMemoryStore()
ctx = ToolContext(task_id=store.create_task(NewTask(goal="g")), step_index=0, idempotency_key="k", store=store)
sandbox.run_python(ctx, code=sys.argv[1])
"""


def _named(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == marker:
                found.append(int(entry.name))
    return found


def test_nothing_the_code_started_outlives_a_worker_killed_mid_call() -> None:
    # The worker's process dies by SIGKILL while the code and a detached grandchild run: bwrap dies
    # with its parent, and the PID namespace with bwrap.
    marker = f"hzkill{os.getpid() % 100000}"
    code = (
        "import __main__ as g\ng._hook.__code__ = (lambda event, args: None).__code__\n"
        "import ctypes, os, time\nlibc = ctypes.CDLL(None)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        libc.prctl(15, b'{marker}', 0, 0, 0)\n        time.sleep(60)\n    os._exit(0)\n"
        f"libc.prctl(15, b'{marker}', 0, 0, 0)\ntime.sleep(60)\n"
    )
    # Its temporary directory is the test's: a root worker killed mid-call leaves the workspace's tmpfs
    # mounted there (jail.sized_workspace), which the test unmounts afterwards. (Traversable by uid
    # 65534, as a worker's TMPDIR must be: pytest's own tmp_path is not.)
    tmp_path = Path(tempfile.mkdtemp(prefix="horizon-killed-worker-"))
    tmp_path.chmod(0o711)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "TMPDIR": str(tmp_path)}
    worker = subprocess.Popen([sys.executable, "-c", RUN_AND_WAIT, code], env=env)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while len(_named(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_named(marker)) == 2, "the code did not start"
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 5
        while _named(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _named(marker) == []
    finally:
        worker.kill()
        for pid in _named(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        for line in Path("/proc/mounts").read_text().splitlines():
            if line.split()[1].startswith(f"{tmp_path}/"):
                subprocess.run(["umount", "-l", line.split()[1]], check=True)  # noqa: S603, S607
        shutil.rmtree(tmp_path, ignore_errors=True)
