"""Operator control and signals on PostgreSQL: signal_send, cancel (with descendants), pause, resume,
their commands, and the fencing of a tick that is in flight when a cancel lands.

Ticks run with the real runner over DjangoStore and a scripted QueueModel; the operator's writes go
through the services, as the admin and the commands do. transaction=True throughout: the tests that
cancel from another thread need committed rows, and the others then see the same database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from agents import events as ev
from agents.errors import InvalidInput, LeaseLost, ModelRejected, TaskNotFound
from agents.profiles import AgentProfile
from agents.runner import Runner, TickOutcome
from agents.status import TaskStatus
from agents.store import CommitResult
from agents.tools.registry import ToolContext, ToolRegistry, default_registry
from agents.types import JournalEntry, LLMRequest, LLMResponse, NewTask, StepUpdate, TickCommit
from tasks_app.models import AgentTask, Event, Signal, WorkspaceFile
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.control import agent_task_cancel, agent_task_pause, agent_task_resume, signal_send
from tasks_app.store import DjangoStore
from tests.support.processes import REPO, database_url
from tests.support.queue_model import QueueModel, call, final, plan

pytestmark = pytest.mark.django_db(transaction=True)

PROFILES = {"default": AgentProfile(name="default", replan_on_failure=False)}


def make_runner(model: Any, tools: ToolRegistry = default_registry) -> Runner:
    return Runner(DjangoStore(), model, tools, profiles=PROFILES)


def row(task_id: str) -> AgentTask:
    return AgentTask.objects.get(pk=task_id)


def event_types(task_id: str) -> list[str]:
    return list(Event.objects.filter(task_id=task_id).order_by("seq").values_list("type", flat=True))


def tool_results(model: QueueModel) -> list[Any]:
    last = [r for r in model.requests if r.purpose == "step"][-1]
    return [json.loads(str(m["content"])) for m in last.messages if m["role"] == "tool"]


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def completed_task() -> str:
    runner = make_runner(QueueModel(plan=[plan("a")]))
    result = runner.start("finish quickly")
    assert result.status == "completed"
    return result.task_id


def planned_task(*titles: str, step: list[LLMResponse | str] | None = None) -> tuple[Runner, QueueModel, str]:
    """A task whose plan is committed: RUNNING, due, its first step next."""
    model = QueueModel(plan=[plan(*titles)], step=step or [])
    runner = make_runner(model)
    task_id = runner.create("do the thing")
    assert runner.tick(task_id).decision == "plan"
    return runner, model, task_id


def nothing_written(task_id: str, seq: int) -> None:
    assert row(task_id).last_event_seq == seq
    assert Event.objects.filter(task_id=task_id).count() == seq
    assert not Signal.objects.filter(task_id=task_id).exists()


# --- signals -----------------------------------------------------------------------------------


def test_a_signal_wakes_a_waiting_task_and_its_next_tick_delivers_the_payload() -> None:
    runner, model, task_id = planned_task("a", step=[call("wait_for_signal", {"names": ["approved"]}), final("went on")])
    assert runner.tick(task_id).status == TaskStatus.WAITING
    task = row(task_id)
    assert task.status == TaskStatus.WAITING and task.next_run_at is None  # no timer: only a signal wakes it
    assert not runner.tick(task_id).claimed

    signal = signal_send(task_id=task_id, name="approved", payload={"by": "alice"})
    task = row(task_id)
    assert task.next_run_at is not None and task.next_run_at <= timezone.now()
    received = Event.objects.get(task_id=task_id, type=ev.SIGNAL_RECEIVED)
    assert received.payload == {"name": "approved", "signal_id": signal.id} and received.worker == "operator"

    done = runner.tick(task_id)
    assert done.status == TaskStatus.COMPLETED and done.output == "went on"
    assert tool_results(model) == [{"timed_out": False, "signals": {"approved": {"by": "alice"}}}]
    consumed = Signal.objects.get(pk=signal.id)
    assert consumed.consumed_key and consumed.consumed_key.endswith("/s0/c1") and consumed.consumed_at is not None


def test_a_signal_to_a_running_task_stays_in_the_inbox_until_a_wait_consumes_it() -> None:
    runner, model, task_id = planned_task(
        "a", "b", step=[final("a done"), call("wait_for_signal", {"names": ["go"]}), final("b")]
    )
    before = row(task_id).next_run_at
    signal = signal_send(task_id=task_id, name="go", payload=[1, 2])
    task = row(task_id)
    assert task.status == TaskStatus.RUNNING and task.next_run_at == before
    assert Signal.objects.get(pk=signal.id).consumed_key is None

    assert runner.tick(task_id).output == "a done"  # step a does not wait: the signal stays
    assert Signal.objects.get(pk=signal.id).consumed_key is None
    done = runner.tick(task_id)
    assert done.status == TaskStatus.COMPLETED  # step b's wait found it at once: no waiting
    assert ev.TASK_WAITING not in event_types(task_id)
    assert tool_results(model) == [{"timed_out": False, "signals": {"go": [1, 2]}}]
    assert Signal.objects.get(pk=signal.id).consumed_key is not None


def test_a_signal_to_a_finished_task_is_refused_and_writes_nothing() -> None:
    task_id = completed_task()
    seq = row(task_id).last_event_seq
    with pytest.raises(InvalidInput, match="completed: it will never read a signal"):
        signal_send(task_id=task_id, name="go")
    nothing_written(task_id, seq)


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("", None, "a signal name is 1 to 100 characters"),
        ("   ", None, "a signal name is 1 to 100 characters"),
        ("x" * 101, None, "a signal name is 1 to 100 characters"),
        ("go", "x" * (64 * 1024), "bytes as JSON; the limit is 65536"),
        ("go", {"when": timezone.now}, "not JSON-serialisable"),
    ],
)
def test_bad_signals_are_refused_and_nothing_is_written(name: str, payload: Any, message: str) -> None:
    _, _, task_id = planned_task("a")
    seq = row(task_id).last_event_seq
    with pytest.raises(InvalidInput, match=message):
        signal_send(task_id=task_id, name=name, payload=payload)
    nothing_written(task_id, seq)


def test_a_signal_to_an_unknown_task_is_refused() -> None:
    with pytest.raises(TaskNotFound):
        signal_send(task_id="00000000-0000-0000-0000-000000000000", name="go")
    assert not Signal.objects.exists()


def test_send_signal_command_happy_path() -> None:
    runner, model, task_id = planned_task("a", step=[call("wait_for_signal", {"names": ["go"]}), final("ok")])
    runner.tick(task_id)
    output = command("send_signal", task_id, "go", "--payload", '{"n": 3}')
    signal = Signal.objects.get(task_id=task_id)
    assert output.strip() == f"signal go #{signal.id} sent to {task_id}"
    assert signal.payload == {"n": 3}
    assert runner.tick(task_id).status == TaskStatus.COMPLETED
    assert tool_results(model) == [{"timed_out": False, "signals": {"go": {"n": 3}}}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["go", "--payload", "{oops"], "--payload is not valid JSON"),
        (["x" * 101], "a signal name is 1 to 100 characters"),
        (["go", "--payload", json.dumps("x" * 70_000)], "the limit is 65536"),
    ],
)
def test_send_signal_command_errors(args: list[str], message: str) -> None:
    _, _, task_id = planned_task("a")
    seq = row(task_id).last_event_seq
    with pytest.raises(CommandError, match=message):
        command("send_signal", task_id, *args)
    nothing_written(task_id, seq)


def test_send_signal_command_refuses_unknown_and_finished_tasks() -> None:
    with pytest.raises(CommandError, match="no task with id 'nope'"):
        command("send_signal", "nope", "go")
    done = completed_task()
    with pytest.raises(CommandError, match="it will never read a signal"):
        command("send_signal", done, "go")
    assert not Signal.objects.exists()


def test_the_commands_exit_non_zero_with_a_clear_message_as_a_user_runs_them() -> None:
    done = completed_task()
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "HORIZON_DISPATCH": "inprocess"}
    for args, message in [
        (["send_signal", done, "go"], f"CommandError: task {done} is completed: it will never read a signal"),
        (["send_signal", done, "go", "--payload", "{"], "CommandError: --payload is not valid JSON"),
        (["task_control", "pause", done], f"CommandError: task {done} is completed; this needs one of"),
    ]:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not Signal.objects.exists() and row(done).status == TaskStatus.COMPLETED


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_ends_the_task_records_why_and_bumps_the_lease_epoch() -> None:
    runner, _, task_id = planned_task("a", "b")
    epoch = row(task_id).lease_epoch
    assert agent_task_cancel(task_id=task_id, reason="wrong customer", by="alice") == [task_id]
    task = row(task_id)
    assert task.status == TaskStatus.CANCELLED and task.status_reason == "wrong customer"
    assert task.lease_epoch == epoch + 1 and task.lease_owner is None and task.next_run_at is None
    cancelled = Event.objects.filter(task_id=task_id).order_by("seq").last()
    assert cancelled is not None and cancelled.type == ev.TASK_CANCELLED
    assert cancelled.payload == {"reason": "wrong customer", "by": "alice"}
    assert not runner.tick(task_id).claimed
    assert runner.result(task_id, duration_s=0).status == "aborted"


def test_cancel_cancels_children_and_grandchildren_but_not_finished_ones() -> None:
    store = DjangoStore()
    parent = store.create_task(NewTask(goal="parent"))
    child = store.create_task(NewTask(goal="child", parent_id=parent))
    grandchild = store.create_task(NewTask(goal="grandchild", parent_id=child))
    done_child = completed_task()
    AgentTask.objects.filter(pk=done_child).update(parent_id=parent)

    ids = agent_task_cancel(task_id=parent, reason="budget cut")
    assert set(ids) == {parent, child, grandchild}
    assert ids[-1] == parent and ids.index(grandchild) < ids.index(child)  # descendants first
    for task_id in (parent, child, grandchild):
        assert row(task_id).status == TaskStatus.CANCELLED
        assert event_types(task_id)[-1] == ev.TASK_CANCELLED
    assert "its parent was cancelled: budget cut" in row(child).status_reason
    assert row(done_child).status == TaskStatus.COMPLETED and event_types(done_child)[-1] == ev.TASK_COMPLETED


def test_cancelling_a_finished_task_is_refused_and_writes_nothing() -> None:
    task_id = completed_task()
    seq = row(task_id).last_event_seq
    with pytest.raises(InvalidInput, match="completed"):
        agent_task_cancel(task_id=task_id)
    nothing_written(task_id, seq)
    cancelled = DjangoStore().create_task(NewTask(goal="x"))
    agent_task_cancel(task_id=cancelled)
    with pytest.raises(InvalidInput, match="cancelled"):
        agent_task_cancel(task_id=cancelled)
    assert event_types(cancelled) == [ev.TASK_CREATED, ev.TASK_CANCELLED]


def test_a_cancel_with_an_oversized_reason_is_refused_and_cancels_nothing() -> None:
    store = DjangoStore()
    parent = store.create_task(NewTask(goal="parent"))
    child = store.create_task(NewTask(goal="child", parent_id=parent))
    with pytest.raises(InvalidInput, match="the limit is 2000"):
        agent_task_cancel(task_id=parent, reason="x" * 3000)
    for task_id in (parent, child):
        assert row(task_id).status == TaskStatus.PENDING and event_types(task_id) == [ev.TASK_CREATED]


def test_a_tick_in_flight_when_the_cancel_lands_is_fenced_and_writes_nothing() -> None:
    """Simulated step by step: the claim, the cancel, then every write of the old lease."""
    _, _, task_id = planned_task("a")
    store = DjangoStore()
    lease = store.claim(task_id, owner="zombie", lease_seconds=300)
    assert lease is not None
    agent_task_cancel(task_id=task_id, reason="stop")
    after_cancel = row(task_id)
    seq, step_before = after_cancel.last_event_seq, store.step(task_id, 0)

    state = store.latest_checkpoint(task_id).state  # type: ignore[union-attr]
    commit = TickCommit(
        base_event_seq=seq - 1,  # what the zombie loaded, before the cancel
        base_checkpoint_seq=after_cancel.checkpoint_seq,
        events=(ev.new_event(ev.STEP_COMPLETED, {"index": 0, "title": "a", "output": "late"}),),
        checkpoint_state=state,
        status=TaskStatus.RUNNING,
        runnable=True,
        step_update=StepUpdate(index=0, status="completed", attempts=1, result={"output": "late"}),
    )
    assert store.commit(lease, commit) is CommitResult.FENCED
    # Even a commit built on the latest log is fenced: the epoch moved, not only the log.
    assert store.commit(lease, TickCommit(**{**commit.__dict__, "base_event_seq": seq})) is CommitResult.FENCED

    entry = JournalEntry(key=f"{task_id}/p1/s0/c0", kind="tool", name="note", request_digest="d", status="started")
    with pytest.raises(LeaseLost):
        store.journal_begin(lease, entry)
    with pytest.raises(LeaseLost):
        store.journal_complete(lease, JournalEntry(**{**entry.__dict__, "status": "completed", "result": {"ok": True}}))

    def transactional_tool() -> Any:
        store.workspace_write(task_id, "late.txt", "written after the cancel")
        return {"ok": True, "output": "wrote"}

    with pytest.raises(LeaseLost):
        store.journal_run(lease, entry, transactional_tool)
    assert not WorkspaceFile.objects.filter(task_id=task_id).exists()
    assert not JournalRow.objects.filter(task_id=task_id, kind="tool").exists()
    task = row(task_id)
    assert task.status == TaskStatus.CANCELLED and task.last_event_seq == seq
    assert event_types(task_id)[-1] == ev.TASK_CANCELLED
    assert store.step(task_id, 0) == step_before
    assert not store.release(lease)


def cancelling_registry(cancels: list[threading.Thread]) -> ToolRegistry:
    """`stop_me` lands an operator's cancel in the middle of a tick; `keep_note` is transactional and
    asks for a cancel from another thread while its own transaction is open."""
    registry = ToolRegistry()

    @registry.tool(idempotent=True)
    def stop_me(ctx: ToolContext) -> str:
        """Stands in for an operator cancelling the task while this tick runs."""
        agent_task_cancel(task_id=ctx.task_id, reason="operator stop")
        return "cancel requested"

    @registry.tool(idempotent=True, transactional=True, risk="write")
    def keep_note(ctx: ToolContext, text: str) -> str:
        """Write a note into the task's workspace."""
        ctx.store.workspace_write(ctx.task_id, "note.txt", text)

        def operator() -> None:
            try:
                agent_task_cancel(task_id=ctx.task_id, reason="operator stop")
            finally:
                connection.close()

        thread = threading.Thread(target=operator)
        thread.start()
        thread.join(0.5)
        # The tool's transaction holds the task row: the cancel waits for it, never lands inside it.
        assert thread.is_alive(), "the cancel landed inside a transactional tool's transaction"
        cancels.append(thread)
        return "kept"

    return registry


def test_a_runner_tick_cancelled_mid_step_is_fenced_at_its_next_write() -> None:
    model = QueueModel(plan=[plan("a", "b")], step=[call("stop_me"), call("keep_note", {"text": "late"}), final("a")])
    runner = make_runner(model, cancelling_registry([]))
    task_id = runner.create("do the thing")
    runner.tick(task_id)
    outcome = runner.tick(task_id)
    assert outcome.fenced and not outcome.committed
    task = row(task_id)
    assert task.status == TaskStatus.CANCELLED and event_types(task_id)[-1] == ev.TASK_CANCELLED
    # stop_me's own completion was the first fenced write: its entry stays "started".
    assert list(JournalRow.objects.filter(task_id=task_id, kind="tool").values_list("name", "status")) == [("stop_me", "started")]
    assert not WorkspaceFile.objects.filter(task_id=task_id).exists()
    assert DjangoStore().step(task_id, 0).status == "pending"
    assert model.by_purpose["step"] == 1  # nothing ran after the fenced write
    assert not runner.tick(task_id).claimed


class AfterTheCancel(QueueModel):
    """Answers the step's second call only once the operator's cancel has landed (deterministic order)."""

    def __init__(self, cancels: list[threading.Thread], **queues: list[LLMResponse | str]) -> None:
        super().__init__(**queues)
        self.cancels = cancels

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and self.cancels:
            self.cancels[0].join(10)
        return super().complete(request)


def test_a_cancel_waits_for_a_transactional_tool_and_fences_the_rest_of_the_tick() -> None:
    """The tool's write and its journal row commit together before the cancel; the tick writes nothing after."""
    cancels: list[threading.Thread] = []
    model = AfterTheCancel(cancels, plan=[plan("a", "b")], step=[call("keep_note", {"text": "before"}), final("a done")])
    runner = make_runner(model, cancelling_registry(cancels))
    task_id = runner.create("do the thing")
    runner.tick(task_id)
    outcome = runner.tick(task_id)
    (cancel,) = cancels
    assert not cancel.is_alive()
    assert outcome.fenced and not outcome.committed
    assert WorkspaceFile.objects.get(task_id=task_id, path="note.txt").content == "before"
    assert list(JournalRow.objects.filter(task_id=task_id, kind="tool").values_list("name", "status")) == [
        ("keep_note", "completed")
    ]
    assert row(task_id).status == TaskStatus.CANCELLED
    assert event_types(task_id)[-1] == ev.TASK_CANCELLED and ev.STEP_COMPLETED not in event_types(task_id)
    assert DjangoStore().step(task_id, 0).status == "pending"
    # The model's next call is made, but recording its answer is the tick's first fenced write.
    assert model.by_purpose["step"] == 2
    assert not JournalRow.objects.filter(task_id=task_id, key__endswith="/s0/c2").exists()


class GatedModel(QueueModel):
    """Blocks inside the model call of one step until the test lets it go."""

    def __init__(self, gate_step: str, **queues: list[LLMResponse | str]) -> None:
        super().__init__(**queues)
        self.gate_step = gate_step
        self.entered = threading.Event()
        self.release = threading.Event()

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and request.step_title == self.gate_step and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "the test never released the model"
        return super().complete(request)


def test_a_goal_cancelled_mid_way_runs_nothing_after_the_cancel() -> None:
    """The runner drives a real goal; an operator in another thread cancels while step b's model
    call is in flight. The tick is fenced, the run stops, and no step completes after task.cancelled."""
    model = GatedModel("b", plan=[plan("a", "b", "c")])
    runner = make_runner(model)
    task_id = runner.create("three steps")
    outcomes: list[TickOutcome] = []
    result: dict[str, Any] = {}

    def drive() -> None:
        try:
            result["run"] = runner.run(task_id, on_tick=outcomes.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=drive)
    worker.start()
    try:
        assert model.entered.wait(30), "step b never started"
        agent_task_cancel(task_id=task_id, reason="changed my mind")
    finally:
        model.release.set()
        worker.join(30)
    assert not worker.is_alive() and "error" not in result, result.get("error")

    assert result["run"].status == "aborted" and result["run"].reason == "changed my mind"
    types = event_types(task_id)
    cancel_seq = types.index(ev.TASK_CANCELLED) + 1
    assert types[cancel_seq - 1 :] == [ev.TASK_CANCELLED]  # nothing after the cancel
    completed = Event.objects.filter(task_id=task_id, type=ev.STEP_COMPLETED)
    assert [e.payload["index"] for e in completed] == [0]
    assert all(e.seq < cancel_seq for e in completed)
    assert [s.status for s in DjangoStore().steps(task_id)] == ["completed", "pending", "pending"]
    assert outcomes[-1].fenced
    assert [r.step_title for r in model.requests if r.purpose == "step"] == ["a", "b"]  # step c never asked


# --- pause and resume --------------------------------------------------------------------------


def test_a_paused_task_is_not_claimable_until_resumed_then_it_completes() -> None:
    runner, _, task_id = planned_task("a", "b")
    epoch = row(task_id).lease_epoch
    agent_task_pause(task_id=task_id, reason="holiday", by="bob")
    task = row(task_id)
    assert task.status == TaskStatus.PAUSED and task.status_reason == "holiday" and task.next_run_at is None
    assert task.lease_epoch == epoch + 1
    paused = Event.objects.get(task_id=task_id, type=ev.TASK_PAUSED)
    assert paused.payload == {"reason": "holiday", "by": "bob"}
    assert not runner.tick(task_id).claimed
    assert runner.run(task_id).status == TaskStatus.PAUSED  # the driver stops: nothing to claim

    agent_task_resume(task_id=task_id, by="bob")
    task = row(task_id)
    assert task.status == TaskStatus.RUNNING and task.status_reason == ""
    assert task.next_run_at is not None and task.next_run_at <= timezone.now()
    assert Event.objects.get(task_id=task_id, type=ev.TASK_CONTINUED).payload == {"by": "bob"}
    result = runner.run(task_id)
    assert result.status == "completed" and [s.status for s in result.steps] == ["completed", "completed"]
    checkpoint = DjangoStore().latest_checkpoint(task_id)
    assert checkpoint is not None
    assert ev.rebuild(None, DjangoStore().events(task_id)).to_json() == checkpoint.state


def test_a_paused_waiting_task_keeps_its_signal_and_consumes_it_after_resume() -> None:
    runner, model, task_id = planned_task("a", step=[call("wait_for_signal", {"names": ["go"]}), final("ok")])
    runner.tick(task_id)
    agent_task_pause(task_id=task_id)
    signal_send(task_id=task_id, name="go", payload="p")  # paused: kept, not rung
    assert row(task_id).next_run_at is None and not runner.tick(task_id).claimed
    agent_task_resume(task_id=task_id)
    assert runner.run(task_id).status == "completed"
    assert tool_results(model) == [{"timed_out": False, "signals": {"go": "p"}}]


class RejectedOnce(QueueModel):
    """The endpoint refuses the first step call (a permanent error: the task escalates to a person)."""

    rejected = False

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and not self.rejected:
            self.rejected = True
            raise ModelRejected("401: the API key was revoked")
        return super().complete(request)


def test_resume_retries_an_escalated_task() -> None:
    model = RejectedOnce(plan=[plan("a")])
    runner = make_runner(model)
    result = runner.start("needs a person first")
    assert result.status == "requires_human" and "API key was revoked" in result.reason
    assert not runner.tick(result.task_id).claimed

    agent_task_resume(task_id=result.task_id)
    assert row(result.task_id).status == TaskStatus.RUNNING
    retried = runner.run(result.task_id)
    assert retried.status == "completed" and retried.steps[0].output == "ok: a"
    assert event_types(result.task_id)[-3:] == [ev.TASK_CONTINUED, ev.STEP_COMPLETED, ev.TASK_COMPLETED]


def test_pause_and_resume_refuse_the_wrong_states() -> None:
    done = completed_task()
    seq = row(done).last_event_seq
    with pytest.raises(InvalidInput, match="completed"):
        agent_task_pause(task_id=done)
    with pytest.raises(InvalidInput, match="completed"):
        agent_task_resume(task_id=done)
    nothing_written(done, seq)
    _, _, running = planned_task("a")
    with pytest.raises(InvalidInput, match="running"):
        agent_task_resume(task_id=running)
    agent_task_pause(task_id=running)
    with pytest.raises(InvalidInput, match="paused"):
        agent_task_pause(task_id=running)


# --- task_control ------------------------------------------------------------------------------


def test_task_control_command_cancels_pauses_and_resumes() -> None:
    _, _, task_id = planned_task("a")
    assert command("task_control", "pause", task_id, "--reason", "lunch").strip() == f"paused {task_id}"
    assert row(task_id).status == TaskStatus.PAUSED and row(task_id).status_reason == "lunch"
    assert command("task_control", "resume", task_id).strip() == f"resumed {task_id}"
    assert row(task_id).status == TaskStatus.RUNNING

    child = DjangoStore().create_task(NewTask(goal="child", parent_id=task_id))
    output = command("task_control", "cancel", task_id, "--reason", "done with it")
    assert output.strip() == f"cancelled 2 task(s): {child}, {task_id}"
    assert row(task_id).status == row(child).status == TaskStatus.CANCELLED
    assert row(task_id).status_reason == "done with it"


@pytest.mark.parametrize(
    ("action", "message"),
    [("cancel", "is completed"), ("pause", "is completed"), ("resume", "is completed")],
)
def test_task_control_command_refuses_a_finished_task(action: str, message: str) -> None:
    done = completed_task()
    seq = row(done).last_event_seq
    with pytest.raises(CommandError, match=message):
        command("task_control", action, done)
    nothing_written(done, seq)


def test_task_control_command_errors() -> None:
    with pytest.raises(CommandError, match="no task with id 'not-a-uuid'"):
        command("task_control", "cancel", "not-a-uuid")
    with pytest.raises(CommandError, match="no task with id"):
        command("task_control", "pause", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(CommandError, match="invalid choice: 'stop'"):
        command("task_control", "stop", "00000000-0000-0000-0000-000000000000")
    _, _, task_id = planned_task("a")
    with pytest.raises(CommandError, match="the limit is 2000"):
        command("task_control", "pause", task_id, "--reason", "x" * 2001)
    assert row(task_id).status == TaskStatus.RUNNING


def test_a_timer_wait_on_postgresql_is_due_at_its_deadline() -> None:
    """The Django store schedules a WAITING task at its wait's deadline (wake_at -> next_run_at)."""
    runner, model, task_id = planned_task("a", step=[call("sleep_for", {"seconds": 3600}), final("woke")])
    before = timezone.now()
    assert runner.tick(task_id).status == TaskStatus.WAITING
    task = row(task_id)
    assert task.next_run_at is not None
    assert before + timedelta(seconds=3599) <= task.next_run_at <= timezone.now() + timedelta(seconds=3601)
    assert not runner.tick(task_id).claimed
    # Pretend the hour passed (the database clock decides due-ness), then it resumes from the journal.
    AgentTask.objects.filter(pk=task_id).update(next_run_at=timezone.now() - timedelta(seconds=1))
    journal_rows = JournalRow.objects.filter(task_id=task_id, kind="tool").count()
    assert journal_rows == 1
    outcome = runner.tick(task_id)
    assert outcome.status == TaskStatus.WAITING  # the runner's clock says the deadline is an hour away
    assert row(task_id).next_run_at == task.next_run_at  # re-evaluated early: the deadline did not move
    assert model.by_purpose["step"] == 1


# --- compensation of a cancelled task ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_with_compensation_undoes_the_recorded_side_effects_once() -> None:
    """`task_control cancel --compensate`: the bookings of a cancelled task are undone in reverse
    order under a lease on the ended task, each undo journaled; a second compensation undoes nothing."""
    from tasks_app.services.control import compensate_cancelled

    world: list[str] = []

    def unbook(ctx: ToolContext, arguments: dict, output: object) -> str:
        world.append(f"unbook {arguments['what']}")
        return "ok"

    @default_registry.tool(name="test_book", idempotent=True, undo=unbook)
    def test_book(ctx: ToolContext, what: str) -> str:
        """Book something (test only)."""
        world.append(f"book {what}")
        return what

    try:
        runner, model, task_id = planned_task(
            "a",
            "b",
            "c",
            step=[call("test_book", {"what": "hotel"}), final("a"), call("test_book", {"what": "car"}), final("b")],
        )
        runner.tick(task_id)
        runner.tick(task_id)
        call_command("task_control", "cancel", task_id, "--compensate", stdout=StringIO())
        assert world == ["book hotel", "book car", "unbook car", "unbook hotel"]
        compensated = [e for e in Event.objects.filter(task_id=task_id, type="task.compensated")]
        assert len(compensated) == 1 and len(compensated[0].payload["undone"]) == 2
        assert AgentTask.objects.get(pk=task_id).status == "cancelled"
        again = compensate_cancelled(task_id=task_id)  # the undos are journaled: replayed, not run again
        assert len(again["undone"]) == 2 and world.count("unbook car") == 1 and world.count("unbook hotel") == 1
    finally:
        default_registry.tools.pop("test_book", None)
