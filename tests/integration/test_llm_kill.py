"""A worker SIGKILLed between the model's response and the step's commit: the resumed run reuses the response.

The model is a real HTTP server (tests.support.fake_openai) that counts requests, reached by the
real OpenAI client in a real `manage.py drive` process. Step 0's first model call answers with a
call to the `hold` tool (tests.support.blocking_tools), which parks the process while a marker
file exists: by then the response is journaled and the step is not committed. The test SIGKILLs
the process's whole group there, removes the marker and drives the task again in a new process.

The resumed run must take step 0's first response from the journal instead of asking the server
again: the server sees each distinct call exactly once. Were the response recorded only at the
step's commit (or not at all), the test would fail on the missing journal row before the kill;
were the journal not read on resume, it would find step 0's first request twice among the
server's recorded request bodies. (Both were checked by patching the drive processes.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from agents.events import STEP_COMPLETED, TASK_COMPLETED, TASK_RESUMED
from agents.status import StepStatus, TaskStatus
from tasks_app.models import AgentTask, Event, JournalEntry, Step
from tasks_app.services.tasks import agent_task_create
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import REPO, database_url

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

BLOCKING_TOOLS = "tests.support.blocking_tools"  # imported by the drive processes only; see its docstring
PARKED_TIMEOUT = 20.0  # plan + one step call + a Django start-up, on a slow machine
RESUME_TIMEOUT = 30.0
HOLD_NOTE = "parked by the kill test"

PLAN = {
    "steps": [
        {
            "title": "Park the worker",
            "instructions": "Call hold once, then report.",
            "depends_on": [],
            "expected_minutes": None,
            "needs_approval": False,
        },
        {
            "title": "Write the result",
            "instructions": "Summarise.",
            "depends_on": [1],
            "expected_minutes": None,
            "needs_approval": False,
        },
    ]
}


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    """Poll `check` until it returns something truthy; fail early if the process has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the drive process exited with {proc.returncode} before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {what} after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def drive(task_id: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "drive", "--task", task_id, *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that the SIGKILL reaches all of it
        )


def is_step_request(body: dict[str, Any], number: int) -> bool:
    return "response_format" not in body and any(
        isinstance(m.get("content"), str) and f"Step {number} of 2:" in m["content"] for m in body.get("messages", [])
    )


@pytest.mark.django_db(transaction=True)  # committed rows: the drive processes are other processes
def test_sigkill_after_the_model_answered_reuses_the_journaled_response(fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    started = time.monotonic()
    hold_file = tmp_path / "hold"
    hold_file.touch()
    hold_log = tmp_path / "hold.log"
    env = {
        **os.environ,
        # The pytest test database, not the DATABASE_URL pytest itself was given.
        "DATABASE_URL": database_url(connection.settings_dict),
        "HORIZON_TEST_SQLITE_ALIAS": "",
        "HORIZON_DISPATCH": "inprocess",
        "HORIZON_VAR_DIR": str(tmp_path / "var"),
        "HORIZON_TOOL_MODULES": BLOCKING_TOOLS,
        "HORIZON_TEST_HOLD_FILE": str(hold_file),
        "HORIZON_TEST_HOLD_LOG": str(hold_log),
        "OPENAI_BASE_URL": fake_llm.url,
        "OPENAI_API_KEY": "test",
        "HORIZON_LLM_MAX_RETRIES": "0",  # a retried request would count twice; none is expected here
        "HORIZON_LLM_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
    }
    # In order: the plan, then step 0's first call asks for the tool. Everything after (step 0's
    # answer once the tool has run, step 1) is the server's default "done: <title>".
    fake_llm.script(
        {"content": json.dumps(PLAN)},
        {"tool_calls": [{"id": "call_hold", "name": "hold", "arguments": {"note": HOLD_NOTE}}]},
    )
    task_id = str(agent_task_create(goal="Prove that a killed worker's model response is reused").id)
    first_call = f"{task_id}/p1/s0/c0"
    tool_call = f"{task_id}/p1/s0/c1"

    first_log = tmp_path / "drive-1.log"
    first = drive(task_id, env, first_log)
    try:
        # Parked: the tool has been entered, which the executor does only after journaling c0.
        wait_for("entry into the hold tool", hold_log.exists, timeout=PARKED_TIMEOUT, proc=first, log=first_log)
        journaled = JournalEntry.objects.filter(key=first_call).first()
        assert journaled is not None and journaled.status == "completed", "step 0's first response is not journaled"
        assert journaled.result["tool_calls"][0]["name"] == "hold"
        tool_entry = JournalEntry.objects.get(key=tool_call)
        assert tool_entry.status == "started"  # the tool's outcome is unknown at the kill
        assert Step.objects.get(task_id=task_id, index=0).status == StepStatus.PENDING
        assert not Event.objects.filter(task_id=task_id, type=STEP_COMPLETED).exists()
        requests_before = fake_llm.count()
        step0_first = [b for b in fake_llm.requests() if is_step_request(b, 1)]
        assert requests_before == 2, f"expected the plan and step 0's first call, got {requests_before}"
        assert len(step0_first) == 1
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    killed_at = time.monotonic()

    # The dead process's lease is still on the row (300 s by default): the second drive reaps it,
    # since its pid no longer exists on this host.
    leased = AgentTask.objects.get(pk=task_id)
    assert leased.lease_owner and f":{first.pid}:" in leased.lease_owner
    hold_file.unlink()
    second_log = tmp_path / "drive-2.log"
    second = drive(task_id, env, second_log, "--json")
    try:
        second.wait(timeout=RESUME_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(timeout=10)
        pytest.fail(f"the resumed drive did not finish in {RESUME_TIMEOUT:.0f}s:\n{second_log.read_text()[-3000:]}")
    resumed_s = time.monotonic() - killed_at
    assert second.returncode == 0, second_log.read_text()[-3000:]

    task = AgentTask.objects.get(pk=task_id)
    assert task.status == TaskStatus.COMPLETED, (task.status, task.status_reason)

    # The server saw each distinct call once: the plan, step 0's first call, step 0's call after
    # the tool, step 1. The bodies tell them apart; the total alone would not catch a resumed run
    # that asked step 0's first call again, since that second ask gets the server's default final
    # answer, so the tool call and the follow-up never happen and the total is 4 as well.
    requests = fake_llm.requests()
    step0 = [b for b in requests if is_step_request(b, 1)]
    step0_first_asks = [b for b in step0 if not any(m.get("role") == "tool" for m in b["messages"])]
    assert len(step0_first_asks) == 1, "step 0's first model call was asked again after the kill"
    assert len(requests) == fake_llm.count() == 4, [json.dumps(b)[:300] for b in requests]
    assert len(step0) == 2 and any(m.get("role") == "tool" and HOLD_NOTE in m["content"] for m in step0[1]["messages"])
    # The resumed process built its follow-up from the journaled response: the same tool call id.
    assistant = next(m for m in step0[1]["messages"] if m.get("role") == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_hold"
    assert sum(is_step_request(b, 2) for b in requests) == 1

    # The tool is idempotent and its outcome was unrecorded at the kill: it ran again, once, in
    # the second process, and the journal now holds its result.
    runs = hold_log.read_text().split()
    assert runs == [str(first.pid), tool_call, str(second.pid), tool_call], runs
    assert JournalEntry.objects.get(key=tool_call).status == "completed"
    entries = dict(JournalEntry.objects.filter(task_id=task_id).values_list("key", "status"))
    assert entries == {
        f"{task_id}/p1/plan/c0": "completed",
        first_call: "completed",
        tool_call: "completed",
        f"{task_id}/p1/s0/c2": "completed",
        f"{task_id}/p1/s1/c0": "completed",
    }

    events = list(Event.objects.filter(task_id=task_id).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, task.last_event_seq + 1)), "event seqs have a gap"
    resumed = [e for e in events if e.type == TASK_RESUMED]
    assert len(resumed) == 1 and f":{first.pid}:" in resumed[0].payload["previous_owner"]
    completed = {e.payload["index"]: e.payload for e in events if e.type == STEP_COMPLETED}
    assert completed[0]["journal_hits"] == 1  # c0; the tool was only "started", so it ran instead
    assert completed[0]["attempt"] == 2
    assert completed[1]["journal_hits"] == 0
    assert events[-1].type == TASK_COMPLETED
    step = Step.objects.get(task_id=task_id, index=0)
    assert step.status == StepStatus.COMPLETED and step.result["tool_calls"] == 1

    total_s = time.monotonic() - started
    print(
        f"\nkill after the model answered: {requests_before} requests before the kill, {len(requests)} in all "
        f"(step 0's first call asked once); resumed in {resumed_s:.1f}s; test {total_s:.1f}s"
    )
