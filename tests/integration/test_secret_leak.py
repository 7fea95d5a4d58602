"""A planted API key never lands anywhere but the Authorization header of the requests to the LLM.

A real `celery worker` (PostgreSQL, Redis, DEBUG logging) runs a goal against the local
OpenAI-compatible server with OPENAI_API_KEY set to a unique planted value. The key is also
planted in the goal and its context (created by `manage.py create_goal` in its own process), in a
tool's result (the tool reads the worker's environment) and in the model's answer (which repeats
it). Afterwards the key is searched for in a pg_dump of the test database, the worker's log, this
test's captured logs and every key and value of the Redis database (message bodies decoded), and in
every request body the LLM server received: it is nowhere. The server saw it in every request's
Authorization header, which proves it was the key in use. Each search is first shown to find a
marker that is there, so that an empty search means something.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from agents.redaction import REDACTED
from agents.status import TaskStatus
from tasks_app.models import AgentTask
from tests.support.broker import Broker
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import REPO, CeleryWorker, database_url

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

WAIT_TIMEOUT = 90.0
LEAKY_TOOLS = "tests.security.leaky_tools"
BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]{16,}$")


def _decoded(raw: bytes) -> Iterator[bytes]:
    """The value and whatever it carries encoded: JSON strings, base64 message bodies, recursively."""
    yield raw
    if BASE64.match(raw):
        with contextlib.suppress(binascii.Error, ValueError):
            yield from _decoded(base64.b64decode(raw, validate=False))
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.encode() != raw:
            yield from _decoded(item.encode())


def redis_values(client: redis.Redis) -> Iterator[bytes]:
    """Every key and every value of the database, read by type, plus each key's DUMP."""
    for key in client.scan_iter(count=500):
        yield key
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = [member for member, _score in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            values = [json.dumps({k.decode(): v.decode() for k, v in f.items()}).encode() for _i, f in client.xrange(key)]
        else:
            values = []
        dumped = client.dump(key)
        values.append(dumped or b"")
        for value in values:
            yield from _decoded(value)


def found_in_redis(client: redis.Redis, needle: bytes) -> list[bytes]:
    return [v[:200] for v in redis_values(client) if needle in v]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.mark.django_db(transaction=True)
def test_a_planted_key_appears_only_in_the_authorization_header(
    fake_llm: FakeOpenAI, broker: Broker, worker_env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Not shaped like an OpenAI key: only its being configured can get it redacted.
    key = f"hzk-{secrets.token_hex(20)}"
    env = {
        **worker_env,
        "OPENAI_BASE_URL": fake_llm.url,
        "OPENAI_API_KEY": key,
        "HORIZON_TOOL_MODULES": LEAKY_TOOLS,
        "HORIZON_LOG_LEVEL": "DEBUG",
        "OPENAI_LOG": "debug",  # the SDK logs its requests too
        "HORIZON_LLM_MAX_RETRIES": "0",
        "HORIZON_LLM_TIMEOUT": "20",
    }
    plan = {
        "steps": [
            {
                "title": "Read the configuration",
                "instructions": "Call read_config and report what it says.",
                "depends_on": [],
                "expected_minutes": None,
                "needs_approval": False,
            }
        ]
    }
    fake_llm.script(
        {"content": json.dumps(plan)},
        {"tool_calls": [{"id": "call_cfg", "name": "read_config", "arguments": {}}]},
        {"content": f"The configured key is {key}."},  # a model that repeats what it was shown
    )

    # The goal is created by another process, configured with the same key, as a web process would be.
    created = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_goal",
            f"Check that the service works with the key {key}",
            "--context",
            json.dumps({"api_key": key, "notes": [f"header: Bearer {key}"]}),
        ],
        cwd=REPO,
        env={**os.environ, **env, "HORIZON_DISPATCH": "celery"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    task_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", created.stdout).group(0)  # type: ignore[union-attr]
    assert key not in created.stdout + created.stderr

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    seen_in_redis: list[bytes] = []
    worker = CeleryWorker(env=env, name="leak", log_dir=tmp_path, extra_args=("--loglevel=DEBUG",))
    with worker:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            seen_in_redis += found_in_redis(client, key.encode())  # while messages are in flight too
            task = AgentTask.objects.get(pk=task_id)
            if task.status in TaskStatus.TERMINAL | {TaskStatus.REQUIRES_HUMAN}:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"task {task.status} after {WAIT_TIMEOUT}s:\n{worker.log()[-4000:]}")
            time.sleep(0.3)
    assert task.status == TaskStatus.COMPLETED, (task.status, task.status_reason, worker.log()[-4000:])

    # The key was in use: every request to the model carried it, in the header.
    assert fake_llm.count() == 3
    assert fake_llm.authorizations() == [f"Bearer {key}"] * 3
    # ...and nowhere in what the model was sent: goal, context, tool result all redacted.
    bodies = json.dumps(fake_llm.requests())
    assert key not in bodies
    assert f"OPENAI_API_KEY={REDACTED}" in bodies and f"with the key {REDACTED}" in bodies

    # The database: a pg_dump of all of it. It holds the task (marker), redacted.
    db = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            db.get("HOST") or "127.0.0.1",
            "-p",
            str(db.get("PORT") or 5432),
            "-U",
            db.get("USER") or "postgres",
            db["NAME"],
        ],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    assert task_id.encode() in dump and f"The configured key is {REDACTED}.".encode() in dump
    assert key.encode() not in dump

    # The worker's log (DEBUG, the SDK's request logging included), and this test's own logs.
    log = worker.log_path.read_bytes()
    assert b"Task horizon.tick[" in log and b"DEBUG" in log
    assert key.encode() not in log
    assert key not in caplog.text

    # Redis: every key and value, message bodies decoded. The search finds a planted probe...
    probe = f"probe-{secrets.token_hex(8)}"
    body = base64.b64encode(json.dumps([[f"args {probe}"], {}, {}]).encode()).decode()
    client.lpush("leak-test-probe", json.dumps({"body": body, "content-encoding": "utf-8"}))
    try:
        assert found_in_redis(client, probe.encode())
    finally:
        client.delete("leak-test-probe")
    # ...and not the key, neither now nor at any poll during the run.
    assert found_in_redis(client, key.encode()) == []
    assert seen_in_redis == []
    assert database_url(db)  # the worker used this database (worker_env), the one dumped above
