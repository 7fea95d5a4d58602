"""run_python's red team: escape attempts, each a piece of code and a way to tell that it got out.

Every attempt except the guard one-liners first disarms the in-process audit hook (DISARM: the
hook's code is replaced by a no-op, which the code can do because the hook lives in its own
interpreter), so what is tested is the kernel's boundary alone. An attempt "escaped" when its
effect is seen: a secret printed, a file on the host, a connection received, a process that outlived
the call, a system call that returned success, a resource that was not capped.

Only the standard library and agents/ are needed, so that the same list runs in pytest
(tests/security/test_redteam.py) and as another user: `python -m tests.security.redteam --json`
prints {"uid": its uid, "results": {attempt: {"escaped": bool, "detail": str}}} (`--unsafe`: under
HORIZON_SANDBOX_UNSAFE's mode); without arguments it prints docs/security.md's Markdown table (the
suite's user, the unprivileged worker user, the unsafe mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.inmemory_store import InMemoryStore
from agents.tools import sandbox, seccomp
from agents.tools.registry import ToolContext, ToolError
from agents.types import NewTask
from tests.security.redteam_attacks import ATTACKS, Attack

REPO = Path(__file__).resolve().parents[2]
DISARM = "import __main__ as g\ng._hook.__code__ = (lambda event, args: None).__code__\n"
# Fast limits: the attempts that run into them need not take the production defaults' seconds.
LIMITS = {"cpu_seconds": 2, "wall_seconds": 4.0, "memory_mb": 256, "workspace_bytes": 32 * 1024 * 1024}


@dataclass
class Outcome:
    escaped: bool
    detail: str


@dataclass
class Host:
    """What lies outside the sandbox for the attempts to reach: secrets, listeners, a victim process."""

    token: str = field(default_factory=lambda: secrets.token_hex(8))
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="horizon-redteam-")))
    hits: list[str] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    victim: subprocess.Popen[bytes] | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def secret(self) -> str:
        return f"hzsecret-{self.token}"

    @property
    def marker(self) -> str:
        return f"hz{self.token[:10]}"  # a process name (comm: 15 characters at most)

    def values(self) -> dict[str, Any]:
        return {
            "SECRET": self.secret,
            "SECRET_FILE": str(self.dir / "secret.txt"),
            "HOST_DIR": str(self.dir),
            "REPO": str(REPO),
            "WORKER_PID": os.getpid(),
            "VICTIM_PID": self.victim.pid if self.victim else 0,
            "MARKER": self.marker,
            "UNIX_PATH": str(self.dir / "listener.sock"),
            "ABSTRACT": f"horizon-redteam-{self.token}",
            "PORT_TCP6": 0,
            **{f"PORT_{k.upper()}": v for k, v in self.ports.items()},
            **{f"NR_{name}": nr for name, nr in seccomp.SYSCALLS[platform.machine()].items()},
        }

    def _serve(self, sock: socket.socket, name: str, stream: bool = True) -> None:
        sock.settimeout(0.2)
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    if stream:
                        conn, _ = sock.accept()
                        self.hits.append(name)
                        conn.close()
                    else:
                        sock.recvfrom(100)
                        self.hits.append(name)
                except (TimeoutError, OSError):
                    continue

        threading.Thread(target=loop, daemon=True).start()

        def close() -> None:
            stop.set()
            sock.close()

        self._closers.append(close)

    def __enter__(self) -> Host:
        self.dir.chmod(0o755)
        secret_file = self.dir / "secret.txt"
        secret_file.write_text(self.secret)
        secret_file.chmod(0o644)
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        self.ports["tcp"] = tcp.getsockname()[1]
        self._serve(tcp, "tcp")
        with contextlib.suppress(OSError):
            tcp6 = socket.socket(socket.AF_INET6)
            tcp6.bind(("::1", 0))
            tcp6.listen()
            self.ports["tcp6"] = tcp6.getsockname()[1]
            self._serve(tcp6, "tcp6")
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        self.ports["udp"] = udp.getsockname()[1]
        self._serve(udp, "udp", stream=False)
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(str(self.dir / "listener.sock"))
        os.chmod(self.dir / "listener.sock", 0o777)
        unix.listen()
        self._serve(unix, "unix")
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind("\0" + self.values()["ABSTRACT"])
        abstract.listen()
        self._serve(abstract, "abstract")
        self.victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # noqa: S603
        self._previous = signal.signal(signal.SIGUSR1, lambda signum, frame: self.signals.append(signum))
        self._env = {k: os.environ.get(k) for k in ("DATABASE_URL", "OPENAI_API_KEY")}
        os.environ["DATABASE_URL"] = f"postgres://horizon:{self.secret}@127.0.0.1:5432/horizon"
        os.environ["OPENAI_API_KEY"] = f"sk-{self.secret}"
        return self

    def survivors(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and (entry / "comm").read_text().strip() == self.marker:
                    found.append(int(entry.name))
        return found

    def __exit__(self, *exc: object) -> None:
        for pid in self.survivors():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for close in self._closers:
            close()
        if self.victim is not None:
            self.victim.kill()
            self.victim.wait()
        signal.signal(signal.SIGUSR1, self._previous)
        for name, value in self._env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)  # noqa: S603, S607


def attempt(attack: Attack, host: Host) -> Outcome:
    """Run one attempt through the real tool; tell whether it got out."""
    store = InMemoryStore()
    task_id = store.create_task(NewTask(goal="red team"))
    store.workspace_write(task_id, "data/input.txt", "data\n")
    ctx = ToolContext(task_id=task_id, step_index=0, idempotency_key="k", store=store)
    code = (DISARM if attack.disarm else "") + attack.code.format(**host.values())
    hits_before, signals_before = len(host.hits), len(host.signals)
    started = time.monotonic()
    try:
        out = sandbox.run_python(ctx, code=code)
        text = out["stdout"] + out["stderr"]
    except ToolError as exc:
        text = f"tool error: {exc}"
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # a connection or a signal in flight lands
    deadline = time.monotonic() + 1.5
    survivors = host.survivors()
    while survivors and time.monotonic() < deadline:
        time.sleep(0.1)
        survivors = host.survivors()
    evidence = []
    if "ESCAPED" in text:
        evidence.append(text[text.index("ESCAPED") :].splitlines()[0][:160])
    if host.secret in text:
        evidence.append("a secret of the worker was printed")
    if len(host.hits) > hits_before:
        evidence.append(f"the host's {host.hits[hits_before]} listener was reached")
    if len(host.signals) > signals_before:
        evidence.append("the worker received a signal")
    if host.victim is not None and host.victim.poll() is not None:
        evidence.append("the victim process outside was killed")
        host.victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # noqa: S603
    if survivors:
        evidence.append(f"{len(survivors)} process(es) outlived the call")
        for pid in survivors:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    if elapsed > LIMITS["wall_seconds"] + 10:
        evidence.append(f"the call took {elapsed:.0f} s")
    if attack.host_check is not None:
        seen = attack.host_check(host.values())
        if seen:
            evidence.append(seen)
    last = text.strip().splitlines()[-1][:160] if text.strip() else "(no output)"
    return Outcome(bool(evidence), "; ".join(evidence) if evidence else last)


@contextlib.contextmanager
def configured(unsafe: bool) -> Iterator[None]:
    saved = sandbox.config()
    sandbox.configure(**LIMITS, unsafe=unsafe)
    try:
        yield
    finally:
        sandbox.configure(**saved.__dict__)


def run_all(*, unsafe: bool = False, names: list[str] | None = None) -> dict[str, Outcome]:
    results = {}
    with configured(unsafe), Host() as host:
        for attack in ATTACKS:
            if names is None or attack.name in names:
                started = time.monotonic()
                results[attack.name] = attempt(attack, host)
                if os.environ.get("HORIZON_REDTEAM_VERBOSE"):
                    print(f"{time.monotonic() - started:5.1f}s {attack.name}: {results[attack.name]}", file=sys.stderr)
    return results


def _as_worker_user() -> dict[str, dict[str, Any]]:
    from tests.security.worker_user import as_worker_user

    argv = as_worker_user([sys.executable, "-m", "tests.security.redteam", "--json"])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=True)  # noqa: S603
    results: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    return results


def _cell(escaped: bool, detail: str) -> str:
    # The table goes into docs/: this machine's checkout and interpreter paths become placeholders.
    repo = str(Path(__file__).resolve().parents[2])
    detail = detail.replace(repo, "<repo>").replace(sys.base_prefix, "<python>")
    detail = detail.replace("|", "/").replace("\n", " ")[:90]
    return f"**ESCAPED**: {detail}" if escaped else f"held: {detail}"


def main(argv: list[str]) -> int:
    if "--json" in argv:
        results = run_all(unsafe="--unsafe" in argv)
        print(json.dumps({"uid": os.geteuid(), "results": {k: v.__dict__ for k, v in results.items()}}))
        return 0
    # The table of docs/security.md: the suite's user, the unprivileged worker user, the unsafe mode.
    mine, unsafe = run_all(), run_all(unsafe=True)
    worker = _as_worker_user()
    print(f"| attempt | uid {os.geteuid()} | worker user | unsafe mode (uid {os.geteuid()}) |\n|---|---|---|---|")
    for attack in ATTACKS:
        row = [_cell(mine[attack.name].escaped, mine[attack.name].detail)]
        row.append(_cell(bool(worker[attack.name]["escaped"]), str(worker[attack.name]["detail"])))
        row.append(_cell(unsafe[attack.name].escaped, unsafe[attack.name].detail))
        print(f"| {attack.name} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
