"""Regression replay: a recorded task re-run on the current code, fed the recording's answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from agents.inmemory_store import InMemoryStore
from agents.regression import regress
from agents.runner import Runner
from agents.status import TaskStatus
from agents.tools import default_registry
from agents.tools.registry import Tool, ToolRegistry
from agents.types import EventRecord, JournalEntry, LLMResponse
from tests.agents.test_waits import HOUR, Harness
from tests.support.queue_model import QueueModel, call, final, plan


def _recorded() -> tuple[InMemoryStore, str]:
    store = InMemoryStore()
    model = QueueModel(
        plan=[plan("write it", "say it")], step=[call("write_file", {"path": "a.txt", "content": "x"}), final("wrote a.txt")]
    )
    result = Runner(store, model).start("write a file, then say so")
    assert result.status == "completed"
    return store, result.task_id


def test_a_recorded_task_replays_without_divergence_and_without_running_its_tools() -> None:
    store, task_id = _recorded()
    report = regress(store, task_id)
    assert report.divergence is None, report.divergence
    assert report.model_calls == 4  # plan, step 0 twice, step 1
    assert report.tool_calls == 1
    assert report.replay_status == "completed"
    assert report.recorded_events == report.replayed_events > 0
    assert report.to_json()["diverged"] is False


def test_tools_are_answered_from_the_recording_never_run() -> None:
    store, task_id = _recorded()

    def explode(ctx: object, **arguments: object) -> None:
        raise AssertionError("a replayed tool ran")

    tools = ToolRegistry(tools=dict(default_registry.tools))
    tools.register(replace(default_registry.tools["write_file"], fn=explode))
    report = regress(store, task_id, tools=tools)
    assert report.divergence is None, report.divergence
    assert report.tool_calls == 1


def test_a_changed_tool_schema_diverges_at_the_first_step_request() -> None:
    store, task_id = _recorded()
    tools = ToolRegistry(tools=dict(default_registry.tools))
    tools.register(
        Tool(name="new_tool", description="added since", parameters={"type": "object", "properties": {}}, fn=lambda ctx: "x")
    )
    report = regress(store, task_id, tools=tools)
    assert report.divergence is not None
    assert report.divergence.kind == "model_call"
    assert report.divergence.key == f"{task_id}/p1/s0/c0"
    assert "request differs" in report.divergence.message


def _with_journal(store: InMemoryStore, edit: Callable[[list[JournalEntry]], list[JournalEntry]]) -> InMemoryStore:
    """The recorded task as regress reads it, its journal passed through `edit` (a doctored recording)."""

    class Edited(InMemoryStore):
        def journal_entries(self, tid: str) -> list[JournalEntry]:
            return edit(store.journal_entries(tid))

    edited = Edited()
    edited.get_task = store.get_task  # type: ignore[method-assign]
    edited.events = store.events  # type: ignore[method-assign]
    return edited


def test_a_model_call_the_recording_never_made_stops_the_replay() -> None:
    store, task_id = _recorded()
    truncated = _with_journal(store, lambda entries: [e for e in entries if not e.key.endswith("/s1/c0")])
    report = regress(truncated, task_id)
    assert report.divergence is not None
    assert report.divergence.kind == "model_call"
    assert "never made" in report.divergence.message


def test_a_model_answer_journaled_under_another_key_diverges_even_when_the_commit_writes_it() -> None:
    """Step 1's only answer is the last of its tick, so the tick's commit journals it (not a
    journal write of its own): its key is checked there too."""
    store, task_id = _recorded()
    moved = _with_journal(store, lambda entries: [replace(e, key=e.key.replace("/s1/c0", "/s1/c7")) for e in entries])
    report = regress(moved, task_id)
    assert report.divergence is not None
    assert report.divergence.kind == "model_call"
    assert report.divergence.key == f"{task_id}/p1/s1/c0"
    assert f"the recording's next was {task_id}/p1/s1/c7" in report.divergence.message


def test_a_different_decision_is_reported_at_its_recorded_event() -> None:
    store, task_id = _recorded()
    recorded = store.events(task_id)
    changed_seq = next(e.seq for e in recorded if e.type == "step.completed")

    class Rewritten(InMemoryStore):
        def events(self, tid: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
            return [
                replace(e, payload={**e.payload, "output": "something else"}) if e.seq == changed_seq else e for e in recorded
            ]

    rewritten = Rewritten()
    rewritten.get_task = store.get_task  # type: ignore[method-assign]
    rewritten.journal_entries = store.journal_entries  # type: ignore[method-assign]
    report = regress(rewritten, task_id)
    assert report.divergence is not None
    assert report.divergence.kind == "event"
    assert report.divergence.seq == changed_seq
    assert report.divergence.recorded["output"] == "something else"  # type: ignore[index]
    assert report.divergence.replayed["output"] == "wrote a.txt"  # type: ignore[index]


def test_a_replay_that_decides_more_than_the_recording_is_reported() -> None:
    store, task_id = _recorded()
    recorded = store.events(task_id)

    class Shorter(InMemoryStore):
        def events(self, tid: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
            return [e for e in recorded if e.type != "task.completed"]

    shorter = Shorter()
    shorter.get_task = store.get_task  # type: ignore[method-assign]
    shorter.journal_entries = store.journal_entries  # type: ignore[method-assign]
    report = regress(shorter, task_id)
    assert report.divergence is not None
    assert report.divergence.seq is None
    assert "more than the recording" in report.divergence.message


# --- waits: the recorded task waited for a signal or a timer; the replay answers at once -----------


def _waited(first: LLMResponse) -> Harness:
    h = Harness([first, final("went on")])
    h.tick()
    assert h.status == TaskStatus.WAITING
    return h


def _finish(h: Harness) -> None:
    while h.status not in TaskStatus.TERMINAL:
        assert h.tick().committed
    assert h.status == TaskStatus.COMPLETED


def test_a_task_that_waited_for_a_signal_replays_to_its_end_with_the_recorded_payload() -> None:
    h = _waited(call("wait_for_signal", {"names": ["go"]}))
    h.signal("go", {"approved_by": "ops"})
    _finish(h)
    report = regress(h.store, h.task_id)
    assert report.divergence is None, report.divergence
    assert report.replay_status == "completed" and report.tool_calls == 1
    # The replayed step read the signal's payload from the recording, exactly as the original did.
    recorded = [e for e in h.store.journal_entries(h.task_id) if e.name == "wait_for_signal"]
    assert recorded[0].result["output"]["signals"] == {"go": {"approved_by": "ops"}}


def test_a_task_that_slept_replays_to_its_end_without_sleeping() -> None:
    h = _waited(call("sleep_for", {"seconds": HOUR}))
    h.clock.advance(HOUR + 1)
    _finish(h)
    report = regress(h.store, h.task_id)
    assert report.divergence is None, report.divergence
    assert report.replay_status == "completed" and report.tool_calls == 1


def test_a_wait_with_other_arguments_diverges_at_its_key() -> None:
    h = _waited(call("wait_for_signal", {"names": ["go"]}))
    h.signal("go")
    _finish(h)
    [entry] = [e for e in h.store.journal_entries(h.task_id) if e.name == "wait_for_signal"]
    # As if the recording had waited for something else under that key.
    h.store._journal[entry.key] = replace(entry, request_digest="another wait")
    report = regress(h.store, h.task_id)
    assert report.divergence is not None and report.divergence.kind == "tool_call"
    assert "wait differs" in report.divergence.message and report.divergence.key == entry.key


def test_a_recording_still_waiting_replays_to_the_same_wait() -> None:
    h = _waited(call("wait_for_signal", {"names": ["go"]}))
    report = regress(h.store, h.task_id)
    assert report.divergence is None, report.divergence
    assert report.replay_status == "waiting"
