"""Shared fixtures. The suite needs PostgreSQL and Redis: if either is missing the run fails, never skips."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import lru_cache

import pytest
from django.conf import settings

from agents.heartbeat import Heartbeat
from agents.inmemory_store import InMemoryStore
from agents.scripted import ScriptedModel, validate_scenario
from tests.support.broker import Broker


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append(
            f"the default database is {settings.DATABASES['default']['ENGINE']}, not PostgreSQL "
            "(run the suite with scripts/test.sh, which points DATABASE_URL at PostgreSQL)"
        )
    else:
        db = settings.DATABASES["default"]
        try:
            import psycopg

            psycopg.connect(
                host=db.get("HOST") or "127.0.0.1",
                port=db.get("PORT") or 5432,
                user=db.get("USER") or "postgres",
                password=db.get("PASSWORD") or None,
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except Exception as exc:  # noqa: BLE001 - any failure means the PostgreSQL tests cannot run
            problems.append(f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')} cannot be reached: {exc}")
    if "sqlite" not in settings.DATABASES:
        problems.append("the 'sqlite' database alias is missing (scripts/test.sh sets HORIZON_TEST_SQLITE_ALIAS=1)")
    try:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the Redis tests cannot run
        problems.append(f"Redis at {settings.CELERY_BROKER_URL} cannot be reached: {exc}")
    if problems:
        raise pytest.UsageError("the test environment is incomplete:\n  " + "\n  ".join(problems))


def make_scenario(steps: int = 3, *, tool_steps: dict[int, list[dict]] | None = None, name: str = "test") -> dict:
    """A scenario of `steps` steps; each step answers with a final text unless tool_steps says otherwise."""
    data = {
        "name": name,
        "plan": [{"title": f"Step {i}", "instructions": f"Do part {i}."} for i in range(steps)],
        "steps": {str(i): actions for i, actions in (tool_steps or {}).items()},
        "default_step": [{"final": "done: {title}"}],
    }
    return validate_scenario(data)


@pytest.fixture
def inmemory_store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def scripted_model() -> ScriptedModel:
    return ScriptedModel(make_scenario(3))


@pytest.fixture
def broker() -> Iterator[Broker]:
    """The test broker (Redis db 15 under scripts/test.sh), purged of Horizon's queue before and after."""
    probe = Broker(settings.CELERY_BROKER_URL)
    probe.purge()
    yield probe
    probe.purge()
    probe.client.close()


@pytest.fixture
def one_pooled_connection() -> Iterator[None]:
    """A pool of one connection for this test: with several, a thread's statements take turns over them
    (tasks_app/db_pool.py), and a test that reads what its own session did (prepared statements,
    statistics it flushes) must see them all in one session. The pool is rebuilt before and after."""
    from django.db import connection

    options = connection.settings_dict["OPTIONS"]
    pool = options.get("pool")
    if pool:
        options["pool"] = {**pool, "min_size": 1, "max_size": 1}
    connection.close()
    if connection.pool is not None:
        connection.close_pool()
    yield
    if pool:
        options["pool"] = pool
    connection.close()
    if connection.pool is not None:
        connection.close_pool()


def _inside_one_transaction(request: pytest.FixtureRequest) -> bool:
    """The test's database work is one transaction rolled back at its end (pytest-django's `db`)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        return not (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    names = set(request.fixturenames)
    return "db" in names and not names & {"transactional_db", "live_server"}


@lru_cache(maxsize=4)
def _heartbeat_that_waits_to_be_called(using: str) -> Heartbeat:
    from tasks_app.store import store_for

    return Heartbeat(store_for(using), lease_seconds=settings.HORIZON_LEASE_SECONDS, interval=threading.TIMEOUT_MAX)


@pytest.fixture(autouse=True)
def _no_heartbeat_thread_inside_one_transaction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat renews leases from its own thread, on its own connection, which cannot see a
    task written inside the test's uncommitted transaction: it would report the lease lost whenever
    it beat during a tick, and the tick would stop (the task left running, a drive ending early).
    Such tests get a heartbeat whose thread never beats by itself; transactional tests keep the real one."""
    if _inside_one_transaction(request):
        from tasks_app import runtime

        monkeypatch.setattr(runtime, "heartbeat", _heartbeat_that_waits_to_be_called)
