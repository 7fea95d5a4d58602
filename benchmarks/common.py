"""What the benchmarks of the suite share: Django set-up on a benchmark database, the machine's
description, result files and a printed table. Every benchmark runs as its own process (Django
settings are per process), creates the database it is given, and run_all drops it afterwards."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/horizon_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"


def configure_django(database_url: str, *, broker_url: str = DEFAULT_BROKER_URL, dispatch: str = "inprocess", **env: str) -> None:
    """Point this process (and the workers it starts, which inherit the environment) at the benchmark database."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "horizon_project.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "HORIZON_DISPATCH": dispatch,
            "DJANGO_DEBUG": "0",  # as in production; with DEBUG Django also keeps every query
            "HORIZON_TEST_SQLITE_ALIAS": "",
            **env,
        }
    )
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        os.environ.pop(name, None)  # the offline scripted model answers
    import django

    django.setup()


def migrate(database_url: str) -> None:
    if database_url.startswith("postgres"):
        from benchmarks import bench_db

        bench_db.ensure_database(database_url)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "horizon_project.settings"}
    env.pop("HORIZON_TEST_SQLITE_ALIAS", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def drop_database(url: str) -> None:
    """Drop a benchmark database (and the connections still open to it)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def noop_scenario(path: Path, steps: int, *, step: list[dict[str, Any]] | None = None) -> Path:
    scenario = {
        "name": f"bench-noop-{steps}",
        "plan": [{"title": f"Step {i}", "instructions": ""} for i in range(steps)],
        "default_step": step or [{"final": "ok"}],
    }
    path.write_text(json.dumps(scenario))
    return path


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, and the versions of what was measured (PostgreSQL and Redis when reachable)."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if line.startswith("model name")), ""
    )
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0)
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu or platform.processor(),
        "cpu_count": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }
    try:
        import psycopg

        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", connect_timeout=3) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # a description, not a requirement
        info["postgresql"] = f"unknown ({exc.__class__.__name__})"
    try:
        import redis

        info["redis"] = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=3).info("server")["redis_version"]
    except Exception as exc:
        info["redis"] = f"unknown ({exc.__class__.__name__})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        info["git_commit"] = commit
    except OSError:
        pass
    return info


def write_result(name: str, data: dict[str, Any], out: Path | None = None) -> Path:
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2, default=str) + "\n")
    print(f"results written to {path}")
    return path


def table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print("  " + " | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "-+-".join("-" * w for w in widths))
    for r in cells:
        print("  " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]
