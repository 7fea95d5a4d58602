"""Real Celery worker and beat processes for integration tests, fault tests and benchmarks.

A worker runs `celery -A horizon_project worker` in its own process group, so that a test can
SIGKILL the whole worker (parent and pool children) the way a crashed machine would; a beat runs
`celery beat` with the DatabaseScheduler, the sweeper's schedule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Short timeouts for fault tests, so that a killed worker's work comes back within seconds, still in
# the order start-up checks (horizon_project/checks.py): one model call < soft < hard < lease, and
# lease + hard < visibility. The scripted model makes no HTTP calls: the LLM timeout only has to fit.
FAULT_TIMEOUTS = {
    "HORIZON_LLM_TIMEOUT": 1,
    "HORIZON_LLM_MAX_RETRIES": 0,
    "CELERY_TASK_SOFT_TIME_LIMIT": 3,
    "CELERY_TASK_TIME_LIMIT": 4,
    "HORIZON_LEASE_SECONDS": 6,
    "CELERY_VISIBILITY_TIMEOUT": 12,
}


# The documented default worker (README, docker-compose.yml, scripts/stack.sh): one process whose
# threads each run a tick; ticks wait for models and tools without a process or a connection each.
DEFAULT_POOL = "threads"
DEFAULT_CONCURRENCY = 500


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is using now (the test database inside pytest)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


class _CeleryProcess:
    """What a worker and a beat share: one `celery` command in its own process group (so that a
    signal reaches the pool children too), logging to a file, ready once its log shows a marker,
    and stopped with SIGTERM, then SIGKILL if it will not go."""

    kind = ""  # "worker" or "beat", for messages
    stop_timeout = 20.0

    def __init__(self, *, env: dict[str, str], name: str, log_path: Path) -> None:
        self.env = {**os.environ, **env, "HORIZON_DISPATCH": "celery", "PYTHONUNBUFFERED": "1"}
        self.name = name
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "horizon_project", *args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_for(self, marker: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.kind} {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if marker in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.kind} {self.name} not ready after {timeout}s; see {self.log_path}")

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class CeleryWorker(_CeleryProcess):
    """One `celery worker` process tree. Use as a context manager; `kill()` sends SIGKILL to all of it."""

    kind = "worker"

    def __init__(
        self,
        *,
        env: dict[str, str],
        name: str = "w1",
        concurrency: int = 1,
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        pool: str = "prefork",
    ) -> None:
        log_dir = log_dir or Path(os.environ.get("HORIZON_VAR_DIR", REPO / "var"))
        super().__init__(env=env, name=name, log_path=log_dir / f"worker-{name}.log")
        self.concurrency = concurrency
        self.extra_args = extra_args
        self.pool = pool
        self.starts = 0

    def start(self, *, ready_timeout: float = 30.0) -> CeleryWorker:
        self.starts += 1
        self._spawn(
            [
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                f"--pool={self.pool}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.name}-{self.starts}@%h",
                "-Q",
                "horizon,horizon.control",  # the ticks' queue and the sweep's (settings.CELERY_TASK_ROUTES)
                *self.extra_args,
            ]
        )
        self._wait_for(b" ready.", ready_timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the worker's whole process group (SIGKILL: a crash, nothing cleans up)."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=30)

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CeleryBeat(_CeleryProcess):
    """One `celery beat` process on the DatabaseScheduler, with its own pidfile and schedule file."""

    kind = "beat"
    stop_timeout = 15.0

    def __init__(self, *, env: dict[str, str], name: str, run_dir: Path) -> None:
        super().__init__(env=env, name=name, log_path=run_dir / f"{name}.log")
        self.run_dir = run_dir

    def start(self, *, ready_timeout: float = 30.0) -> CeleryBeat:
        self._spawn(
            [
                "beat",
                "--loglevel=INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                f"--pidfile={self.run_dir / f'{self.name}.pid'}",
                f"--schedule={self.run_dir / f'{self.name}-schedule'}",
            ]
        )
        self._wait_for(b"beat: Starting", ready_timeout)
        return self

    def sent(self) -> int:
        """How many sweeps this beat sent (its log says so for each)."""
        return self.log().count("Sending due task horizon.sweep")
