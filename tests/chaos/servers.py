"""Private PostgreSQL and Redis servers for the chaos suite, started and restarted by the test itself.

The chaos test restarts both servers on purpose. Doing that to the machine's shared servers would
break every other test (and every other user) of them, so the suite runs its own: a Redis child
process without persistence (a restart wipes the queue, which is the fault under test) and a
PostgreSQL cluster in a temporary directory, both on free ports of 127.0.0.1.

Nothing here skips: a missing binary or a server that does not come up raises, so the test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s (last error: {last})")


class PrivateRedis:
    """`redis-server` as a child process in its own process group; `restart()` loses every key."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the chaos suite needs it to run a private Redis")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        # No RDB snapshots and no AOF: a restart comes back empty, as a Redis without persistence does.
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(self.workdir), "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            _wait(f"redis on port {self.port}", lambda: self.proc.poll() is None and client.ping(), 20)
        finally:
            client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """A crash and a fresh start on the same port: the queue and the unacked hash are gone."""
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()


def _postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for directory in candidates:
        if (Path(directory) / "pg_ctl").exists() and (Path(directory) / "initdb").exists():
            return Path(directory)
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found: the chaos suite needs them to run a private cluster")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb in a temporary directory) that the test may restart.

    PostgreSQL refuses to run as root, so when the suite runs as root every server command runs as
    the `postgres` system user, in a directory that user owns.
    """

    def __init__(self, port: int | None = None, *, max_connections: int = 100) -> None:
        self.max_connections = max_connections
        self.bindir = _postgres_bindir()
        self.port = port or free_port()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run a private PostgreSQL as") from None
        # Under /tmp, not pytest's tmp_path: that one is private to root, and the server user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="horizon-chaos-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log_path = self.root / "postgres.log"
        self.restarts = 0

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs: dict = {}
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            **kwargs,
        )
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stdout.decode(errors='replace')}\n{log}")

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, connect_timeout=3, **kwargs)

    def start(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            for path in (self.root, self.sockets):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.sockets}'\n"
                # Durability of this throw-away cluster is not under test; a clean restart loses nothing anyway.
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                f"max_connections = {self.max_connections}\n"
            )
        self._start()

    def _start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "start")
        _wait(f"postgres on port {self.port}", lambda: self.connect().close() is None, 30)

    def restart(self) -> None:
        """A fast restart: every connection is cut, in-flight transactions roll back."""
        self.restarts += 1
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "restart", "-l", str(self.log_path))
        _wait(f"postgres on port {self.port}", lambda: self.connect().close() is None, 30)

    def create_database(self, name: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
