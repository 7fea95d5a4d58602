"""Deploys with tasks in flight, on real `celery worker` processes, PostgreSQL and Redis (issue 15).

The deploy test: 100 goals in flight on the old build, in every kind of wait (a signal, a timer, an
approval, sub-agents waiting for a signal) and between or inside the steps of a tool loop; the old
workers are SIGKILLed and replaced by workers running changed code (tests/support/deploy_code.py:
an edited system prompt, an edited tool description, a tool added, an unused tool removed, an
optional plan-schema field added; and a changed profile default). Then the signals and approvals
are given. Every task completes without a person, every side effect ran once (one row per call,
keyed by its journal key), every event chain verifies, and the tasks whose step resumed on the new
build say so (code.changed).

The rolling-deploy test: an old-build and a new-build worker consume one queue; once the new build
has ticked a task the old one never does, and nothing strands when the old worker stops.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import override_settings

from agents import events as ev
from agents.status import TaskStatus
from tasks_app.models import AgentTask, Approval, Event, JournalEntry
from tasks_app.services.approvals import approval_decide
from tasks_app.services.audit import events_verify
from tasks_app.services.control import signal_send
from tasks_app.services.sweep import sweep
from tasks_app.services.tasks import agent_task_create
from tests.integration.conftest import scratch_table
from tests.support.broker import Broker
from tests.support.processes import FAULT_TIMEOUTS, CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

DEPLOY_CODE = "tests.support.deploy_code"
TABLE = "it_deploy_effect"  # deploy_code.TABLE; not imported here, see that module's docstring
KINDS = ("loop", "signal", "timer", "approval", "children")
PER_KIND = 20
TIMER_SECONDS = 12
EFFECT = {"tool": "deploy_effect", "arguments": {}}


def scenario() -> dict:
    signal = {"tool": "wait_for_signal", "arguments": {"names": ["go"]}}
    children = [{"goal": f"child part {i}", "context": {"part": i}} for i in range(2)]
    goals = {
        "kind signal": {
            "plan": [{"title": "Wait for go"}, {"title": "Finish"}],
            "steps": {"0": [EFFECT, signal, {"final": "went"}]},
        },
        "kind timer": {
            "plan": [{"title": "Sleep"}, {"title": "Finish"}],
            "steps": {"0": [EFFECT, {"tool": "sleep_for", "arguments": {"seconds": TIMER_SECONDS}}, {"final": "slept"}]},
        },
        "kind approval": {
            "plan": [{"title": "Prepare"}, {"title": "Ship", "needs_approval": True}],
            "default_step": [EFFECT, {"final": "ok"}],
        },
        "kind children": {
            "plan": [{"title": "Fan out"}, {"title": "Report"}],
            "steps": {"0": [EFFECT, {"tool": "spawn_subtasks", "arguments": {"children": children}}, {"final": "children done"}]},
        },
        "child part": {"plan": [{"title": "Wait for go"}], "steps": {"0": [EFFECT, signal, {"final": "child went"}]}},
    }
    loop = [{"title": f"Loop {i}"} for i in range(5)]
    return {"name": "deploy", "plan": loop, "steps": {}, "default_step": [EFFECT, EFFECT, {"final": "looped"}], "goals": goals}


@pytest.fixture
def effect_table(transactional_db: None) -> Iterator[str]:
    with scratch_table(TABLE, "(key text PRIMARY KEY, task_id text NOT NULL, step int NOT NULL)") as table:
        yield table


def build_env(worker_env: dict[str, str], tmp_path: Path, build: str, sequence: int) -> dict[str, str]:
    path = tmp_path / "deploy.json"
    path.write_text(json.dumps(scenario()))
    env = {
        **worker_env,
        **{k: str(v) for k, v in FAULT_TIMEOUTS.items()},
        "HORIZON_SCENARIO": str(path),
        "HORIZON_TOOL_MODULES": DEPLOY_CODE,
        "HORIZON_TEST_DEPLOY_CODE": build,
        "HORIZON_BUILD_ID": f"{build}-build",
        "HORIZON_BUILD_SEQUENCE": str(sequence),
    }
    if build == "new":
        profiles = tmp_path / "profiles.json"  # a changed profile default: only tasks created from now on take it
        profiles.write_text(json.dumps({"default": {"system_prompt": "Answer in one sentence.", "max_replans": 1}}))
        env["HORIZON_PROFILES_FILE"] = str(profiles)
    return env


def approver() -> User:
    user = User.objects.create_user("deployer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="decide_approval"))
    return User.objects.get(pk=user.pk)


def waits_reached() -> Counter[str]:
    """How many tasks sit in each kind of wait (children: parents waiting on their sub-agents)."""
    waiting = Counter[str]()
    for goal, status in AgentTask.objects.values_list("goal", "status"):
        kind = goal.split()[1] if goal.startswith("kind ") else "child"
        if status in (TaskStatus.WAITING, TaskStatus.REQUIRES_HUMAN):
            waiting[kind] += 1
    return waiting


def settle(deadline: float, workers: list[CeleryWorker], user: User) -> None:
    """Sweep, give every signal and approval asked for, until every task has ended (or fail)."""
    signalled: set[str] = set()
    while AgentTask.objects.exclude(status__in=TaskStatus.TERMINAL).exists():
        if time.monotonic() > deadline:
            rows = Counter(AgentTask.objects.values_list("status", flat=True))
            reasons = list(AgentTask.objects.filter(status=TaskStatus.REQUIRES_HUMAN).values_list("status_reason", flat=True)[:5])
            pytest.fail(f"not settled: {rows} {reasons}\n" + "\n".join(w.log()[-2000:] for w in workers))
        sweep()  # what beat does every few seconds: stalled leases of the killed workers, due timers
        for task_id, payload in Event.objects.filter(type=ev.TASK_WAITING).values_list("task_id", "payload"):
            if payload.get("kind") == "signal" and str(task_id) not in signalled:
                signal_send(task_id=str(task_id), name="go", payload={"by": "deploy test"})
                signalled.add(str(task_id))
        for approval in Approval.objects.filter(status=Approval.Status.PENDING):
            if AgentTask.objects.filter(pk=approval.task_id, status=TaskStatus.REQUIRES_HUMAN).exists():
                approval_decide(approval_id=approval.pk, user=user, approve=True, comment="deploy test")
        time.sleep(0.5)


@pytest.mark.django_db(transaction=True)
def test_a_hundred_tasks_in_flight_survive_a_deploy_of_changed_code(
    broker: Broker, effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    logs = tmp_path / "logs"
    old_env, new_env = build_env(worker_env, tmp_path, "old", 1), build_env(worker_env, tmp_path, "new", 2)
    old = [CeleryWorker(env=old_env, name=f"old{i}", concurrency=2, log_dir=logs) for i in (1, 2)]
    new = [CeleryWorker(env=new_env, name=f"new{i}", concurrency=2, log_dir=logs) for i in (1, 2)]
    user = approver()
    try:
        for w in old:
            w.start()
        with override_settings(HORIZON_DISPATCH="celery"):
            for i in range(PER_KIND):
                for kind in KINDS:
                    agent_task_create(goal=f"kind {kind} #{i}")
        # In flight: every wait kind reached by most of its tasks (the rest are on their way).
        deadline = time.monotonic() + 60
        while True:
            waiting = waits_reached()
            if all(waiting[k] >= PER_KIND * 3 // 4 for k in ("signal", "approval", "children", "timer")):
                break
            assert time.monotonic() < deadline, f"the waits were not reached: {waiting}"
            time.sleep(0.2)
        for w in old:
            w.kill()  # the old build goes away at once, whatever its ticks were doing
        before = Counter(AgentTask.objects.values_list("status", flat=True))
        # Steps paused inside their tool loop on the old build: they resume on the new one.
        paused = AgentTask.objects.filter(status=TaskStatus.WAITING, goal__regex=r"^(kind signal|kind timer|child part)")
        paused_ids = {str(pk) for pk in paused.values_list("pk", flat=True)}
        deployed_at = time.monotonic()
        for w in new:
            w.start()
        with override_settings(HORIZON_DISPATCH="celery"):  # the sweep, signals and approvals ring the workers
            settle(time.monotonic() + 150, [*old, *new], user)
    finally:
        for w in (*old, *new):
            w.stop()
    duration = time.monotonic() - started

    tasks = list(AgentTask.objects.all())
    assert len([t for t in tasks if t.parent_id is None]) == PER_KIND * len(KINDS)
    statuses = Counter(t.status for t in tasks)
    assert statuses == {TaskStatus.COMPLETED: len(tasks)}, [t.status_reason for t in tasks if t.status != "completed"][:5]
    assert not Event.objects.filter(type=ev.TASK_ESCALATED).exclude(payload__has_key="approval_id").exists()
    # Every side effect once: one row per call (the key is the primary key), one row per recorded call.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key FROM {TABLE}")
        rows = {r[0] for r in cursor.fetchall()}
    recorded = set(JournalEntry.objects.filter(name="deploy_effect", status="completed").values_list("key", flat=True))
    assert rows == recorded
    assert all(report.ok for report in events_verify())
    # The tasks whose step resumed on the new build continued from their recorded conversation and said so.
    changed = {
        str(t) for t in Event.objects.filter(type=ev.CODE_CHANGED, payload__build="new-build").values_list("task_id", flat=True)
    }
    assert paused_ids and paused_ids <= changed
    touched_by_both = [t for t in tasks if t.builds.split() == ["old-build", "new-build"]]
    assert len(touched_by_both) >= PER_KIND * 3
    assert not [t for t in tasks if t.builds.split() not in (["old-build"], ["new-build"], ["old-build", "new-build"])]
    print(
        f"\ndeploy test: {len(tasks)} tasks ({PER_KIND * len(KINDS)} goals + {len(tasks) - PER_KIND * len(KINDS)} sub-agents); "
        f"at the deploy {dict(before)}, {len(paused_ids)} of them paused mid-step; "
        f"{len(changed)} recorded code.changed; {len(rows)} side effects, each once; "
        f"0 escalations; settled {time.monotonic() - deployed_at:.1f} s after the deploy, {duration:.1f} s in all"
    )


@pytest.mark.django_db(transaction=True)
def test_a_rolling_deploy_never_moves_a_task_back_to_the_old_build(
    broker: Broker, effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    old = CeleryWorker(env=build_env(worker_env, tmp_path, "old", 1), name="old", concurrency=2, log_dir=logs)
    new = CeleryWorker(env=build_env(worker_env, tmp_path, "new", 2), name="new", concurrency=2, log_dir=logs)
    try:
        old.start()
        with override_settings(HORIZON_DISPATCH="celery"):
            ids = [str(agent_task_create(goal=f"kind loop #{i}").pk) for i in range(12)]
        time.sleep(1.5)
        new.start()  # both builds consume the queue for a while
        time.sleep(6)
        old.stop()  # then the old build goes away
        deadline = time.monotonic() + 90
        with override_settings(HORIZON_DISPATCH="celery"):
            while AgentTask.objects.filter(pk__in=ids).exclude(status__in=TaskStatus.TERMINAL).exists():
                assert time.monotonic() < deadline, Counter(AgentTask.objects.values_list("status", flat=True))
                sweep()
                time.sleep(0.5)
    finally:
        old.stop()
        new.stop()
    tasks = list(AgentTask.objects.filter(pk__in=ids))
    assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * len(ids)
    # Which build ran each committed tick: the worker names in the log, in order. Once a task's log
    # shows the new build, it never shows the old one again.
    for task in tasks:
        workers = [w for w in Event.objects.filter(task=task).order_by("seq").values_list("worker", flat=True) if w]
        builds = [w.rsplit(":", 1)[1] for w in workers]  # host:pid:nonce:build (agents.runner.worker_identity)
        assert set(builds) <= {"old-build", "new-build"}, builds
        if "new-build" in builds:
            assert "old-build" not in builds[builds.index("new-build") :], builds
    mixed = [t for t in tasks if t.builds.split() == ["old-build", "new-build"]]
    print(f"\nrolling deploy: {len(tasks)} tasks, {len(mixed)} ticked by both builds (old first), none moved back")
    assert mixed, "no task was ticked by both builds: the rolling test proved nothing"
