"""Durable waits on the in-memory store with a fake clock: sleep_for, sleep_until, wait_for_signal.

A wait is a journaled tool call in two phases (agents/waits.py): the first tick records its spec and
deadline and commits the task WAITING; a later tick (the timer due, or a signal ringing it)
re-evaluates it against the inbox and the clock. The model's calls before the wait come from the
journal then, so the model is never asked the same thing twice. Every test also checks that the
last checkpoint equals a replay of the log.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from agents import events as ev
from agents.events import rebuild
from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner, TickOutcome
from agents.status import TaskStatus
from agents.types import JSON, LLMResponse, OperatorChange
from tests.support.clock import START, FakeClock
from tests.support.queue_model import QueueModel, call, final, plan

HOUR = 3600.0


class Harness:
    """One task on an in-memory store and a runner that share a fake clock."""

    def __init__(self, step: list[LLMResponse | str], titles: tuple[str, ...] = ("a",), **profile: Any) -> None:
        self.clock = FakeClock()
        self.store = InMemoryStore(clock=self.clock)
        self.model = QueueModel(plan=[plan(*titles)], step=step)
        profiles = {"default": AgentProfile(name="default", **profile)}
        self.runner = Runner(self.store, self.model, profiles=profiles, clock=self.clock)
        self.task_id = self.runner.create("wait for the right moment")
        planned = self.tick()
        assert planned.decision == "plan" and planned.committed

    def tick(self) -> TickOutcome:
        outcome = self.runner.tick(self.task_id)
        if outcome.committed:
            self.assert_replayable()
        return outcome

    def assert_replayable(self) -> None:
        checkpoint = self.store.latest_checkpoint(self.task_id)
        assert checkpoint is not None
        assert rebuild(None, self.store.events(self.task_id)).to_json() == checkpoint.state

    @property
    def status(self) -> str:
        return self.store.get_task(self.task_id).status

    def events(self, type_: str | None = None) -> list[Any]:
        return [e for e in self.store.events(self.task_id) if type_ is None or e.type == type_]

    def signal(self, name: str, payload: JSON = None) -> None:
        """What signal_send does: the payload in the inbox, signal.received, and a waiting task rung."""
        record = self.store.signal_put(self.task_id, name, payload)
        self.store.operator_change(
            self.task_id,
            OperatorChange(
                event=ev.new_event(ev.SIGNAL_RECEIVED, {"name": name, "signal_id": record.id}),
                from_statuses=TaskStatus.ACTIVE,
                wake=self.status == TaskStatus.WAITING,
            ),
        )

    def tool_results(self, request: int = -1) -> list[Any]:
        """The tool results the model saw in one of its step requests (the last by default)."""
        steps = [r for r in self.model.requests if r.purpose == "step"]
        return [json.loads(str(m["content"])) for m in steps[request].messages if m["role"] == "tool"]


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


# --- timers ------------------------------------------------------------------------------------


def test_sleep_for_waits_until_its_deadline_then_resumes_the_step_from_the_journal() -> None:
    h = Harness([call("sleep_for", {"seconds": HOUR}), final("woke up")])
    waited = h.tick()
    assert waited.committed and waited.status == TaskStatus.WAITING and not waited.runnable
    assert h.status == TaskStatus.WAITING
    (waiting,) = h.events(ev.TASK_WAITING)
    assert waiting.payload["kind"] == "timer" and waiting.payload["deadline"] == at(HOUR)
    assert h.store.steps(h.task_id)[0].status == "running"
    assert not h.tick().claimed  # not due yet
    h.clock.advance(HOUR / 2)
    assert not h.tick().claimed  # half way: still not due
    assert h.status == TaskStatus.WAITING and [e.payload["deadline"] for e in h.events(ev.TASK_WAITING)] == [at(HOUR)]

    h.clock.advance(HOUR / 2 + 1)
    resumed = h.tick()
    assert resumed.claimed, "the timer is due: the waiting task must be claimable again"
    assert resumed.status == TaskStatus.COMPLETED and resumed.output == "woke up"
    assert h.model.by_purpose["step"] == 2  # the call that asked for the sleep came from the journal
    assert resumed.journal_hits >= 1
    assert h.tool_results() == [{"slept_until": at(HOUR)}]
    assert h.store.steps(h.task_id)[0].status == "completed"
    assert [e.type for e in h.events()][-2:] == [ev.STEP_COMPLETED, ev.TASK_COMPLETED]


def test_a_waiting_task_woken_early_keeps_its_deadline_and_waits_again() -> None:
    h = Harness([call("sleep_for", {"seconds": HOUR}), final("woke up")])
    h.tick()
    h.clock.advance(HOUR / 2)
    h.signal("unrelated")  # a stray signal rings the waiting task before its timer is due
    early = h.tick()
    assert early.claimed and early.status == TaskStatus.WAITING
    first, second = h.events(ev.TASK_WAITING)
    assert second.payload["deadline"] == first.payload["deadline"] == at(HOUR)  # not pushed back by the re-evaluation
    assert second.payload["key"] == first.payload["key"]
    assert h.model.by_purpose["step"] == 1  # the early tick asked the model nothing
    assert not h.tick().claimed
    assert h.status == TaskStatus.WAITING


def test_after_the_deadline_the_sleep_completes_without_asking_the_model_again() -> None:
    """The journal half of the resume, independent of how the task is rung (a signal here)."""
    h = Harness([call("sleep_for", {"seconds": HOUR}), final("woke up")])
    h.tick()
    h.clock.advance(HOUR)
    h.signal("ring")
    resumed = h.tick()
    assert resumed.status == TaskStatus.COMPLETED and resumed.output == "woke up"
    assert h.model.by_purpose["step"] == 2
    assert h.tool_results() == [{"slept_until": at(HOUR)}]
    # A second resume replays nothing more: the wait's journal entry is completed.
    entry = h.store.journal_get(h.events(ev.TASK_WAITING)[0].payload["key"])
    assert entry is not None and entry.status == "completed"
    assert entry.result == {"ok": True, "output": {"slept_until": at(HOUR)}}


def test_usage_of_a_step_that_waited_is_counted_once() -> None:
    """Every model call of a step that waited is charged once, however often the wait is re-evaluated.

    The resumed step replays its earlier calls from the journal and charges them (step.completed), so
    task.waiting must not charge them too. This failed when apply() added task.waiting's usage (5
    model calls counted for 3 asked); fixed by making that usage informational in agents/events.py.
    """
    h = Harness([call("sleep_for", {"seconds": HOUR}), final("woke up")])
    h.tick()
    h.clock.advance(HOUR / 2)
    h.signal("early")
    h.tick()  # re-evaluated early: waits again
    h.clock.advance(HOUR)
    h.signal("late")
    assert h.tick().status == TaskStatus.COMPLETED
    state = rebuild(None, h.store.events(h.task_id))
    asked = h.model.by_purpose["plan"] + h.model.by_purpose["step"]
    assert asked == 3
    assert state.model_calls == asked


def test_sleep_until_a_past_time_completes_in_the_same_tick() -> None:
    h = Harness([call("sleep_until", {"when": "2025-06-01T12:00:00+00:00"}), final("no wait")])
    done = h.tick()
    assert done.status == TaskStatus.COMPLETED and done.output == "no wait"
    assert h.events(ev.TASK_WAITING) == []
    assert h.tool_results() == [{"slept_until": "2025-06-01T12:00:00+00:00"}]


def test_sleep_until_a_future_time_waits_until_exactly_then() -> None:
    h = Harness([call("sleep_until", {"when": "2026-01-01T09:30:00+01:00"}), final("ok")])
    assert h.tick().status == TaskStatus.WAITING
    assert h.events(ev.TASK_WAITING)[0].payload["deadline"] == "2026-01-01T09:30:00+01:00"  # 08:30 UTC
    h.clock.advance(8 * HOUR + 29 * 60)
    h.signal("ring")
    assert h.tick().status == TaskStatus.WAITING  # one minute early
    h.clock.advance(60)
    h.signal("ring")
    assert h.tick().status == TaskStatus.COMPLETED


def test_invalid_wait_arguments_go_back_to_the_model_as_tool_errors() -> None:
    h = Harness(
        [
            call("sleep_until", {"when": "2026-03-01T09:00:00"}),
            call("sleep_until", {"when": "next tuesday"}),
            call("sleep_until", {"when": "2028-01-01T00:00:00+00:00"}),
            call("sleep_for", {"seconds": -5}),
            call("wait_for_signal", {"names": []}),
            call("wait_for_signal", {"names": ["go"], "timeout_seconds": -1}),
            final("gave up waiting"),
        ],
        max_model_calls_per_step=10,
    )
    done = h.tick()
    assert done.status == TaskStatus.COMPLETED and done.output == "gave up waiting"
    errors = [r["error"] for r in h.tool_results()]
    assert len(errors) == 6
    assert "needs a timezone" in errors[0]
    assert "not an ISO 8601 time" in errors[1] and "next tuesday" in errors[1]
    assert "more than a year away" in errors[2]
    assert "seconds must be between 0" in errors[3]
    assert "names must be a non-empty list" in errors[4]
    assert "timeout_seconds must be between 0" in errors[5]
    assert h.events(ev.TASK_WAITING) == []


# --- signals -----------------------------------------------------------------------------------


def test_a_signal_sent_before_the_wait_is_kept_and_consumed_once() -> None:
    h = Harness(
        [
            call("wait_for_signal", {"names": ["approved"]}),
            final("first"),
            call("wait_for_signal", {"names": ["approved"]}),
            final("second"),
        ],
        titles=("a", "b"),
    )
    h.signal("approved", {"by": "alice"})  # the task is running (just planned): it stays in the inbox
    assert h.status == TaskStatus.RUNNING
    first = h.tick()
    assert first.status == TaskStatus.RUNNING and first.output == "first"
    assert h.tool_results() == [{"timed_out": False, "signals": {"approved": {"by": "alice"}}}]
    assert h.store.signals_pending(h.task_id, ["approved"]) == []

    second = h.tick()  # the same name again: the signal was consumed, so this wait waits
    assert second.status == TaskStatus.WAITING
    assert h.events(ev.TASK_WAITING)[-1].payload["names"] == ["approved"]
    assert h.model.by_purpose["step"] == 3


def test_a_wait_without_timeout_sleeps_until_a_signal_rings_it() -> None:
    h = Harness([call("wait_for_signal", {"names": ["go"]}), final("went")])
    assert h.tick().status == TaskStatus.WAITING
    (waiting,) = h.events(ev.TASK_WAITING)
    assert waiting.payload["deadline"] is None and waiting.payload["mode"] == "any"
    h.clock.advance(400 * 24 * HOUR)  # no timer: time alone never makes it due
    assert not h.tick().claimed
    assert h.store.due_tasks(limit=10) == []

    h.signal("go", {"n": 7})
    received = h.events(ev.SIGNAL_RECEIVED)
    assert [e.payload["name"] for e in received] == ["go"]
    assert h.store.due_tasks(limit=10) == [h.task_id]
    done = h.tick()
    assert done.status == TaskStatus.COMPLETED and done.output == "went"
    assert h.tool_results() == [{"timed_out": False, "signals": {"go": {"n": 7}}}]
    assert h.model.by_purpose["step"] == 2
    assert h.store.signals_pending(h.task_id, ["go"]) == []


def test_a_signal_for_another_name_does_not_satisfy_the_wait() -> None:
    h = Harness([call("wait_for_signal", {"names": ["go"]}), final("went")])
    h.tick()
    h.signal("stop")
    assert h.tick().status == TaskStatus.WAITING
    assert [p.name for p in h.store.signals_pending(h.task_id, ["stop"])] == ["stop"]  # left for its own wait
    h.signal("go")
    assert h.tick().status == TaskStatus.COMPLETED


def test_a_signal_wait_times_out_and_the_step_goes_on() -> None:
    h = Harness([call("wait_for_signal", {"names": ["go"], "timeout_seconds": 60}), final("went on without it")])
    assert h.tick().status == TaskStatus.WAITING
    assert h.events(ev.TASK_WAITING)[0].payload["deadline"] == at(60)
    h.clock.advance(61)
    h.signal("unrelated")  # rings the task after its deadline (the timer's own ringing is tested above)
    done = h.tick()
    assert done.status == TaskStatus.COMPLETED and done.output == "went on without it"
    assert h.tool_results() == [{"timed_out": True, "signals": {}}]
    # A signal that arrives after the timeout is not consumed by the finished wait.
    h.store.signal_put(h.task_id, "go", 1)
    assert len(h.store.signals_pending(h.task_id, ["go"])) == 1


def test_mode_all_waits_for_every_name() -> None:
    h = Harness([call("wait_for_signal", {"names": ["a", "b"], "mode": "all"}), final("both")])
    h.tick()
    h.signal("a", 1)
    assert h.tick().status == TaskStatus.WAITING  # b is missing
    assert len(h.store.signals_pending(h.task_id, ["a"])) == 1  # a is not consumed by an unsatisfied wait
    h.signal("b", 2)
    assert h.tick().status == TaskStatus.COMPLETED
    assert h.tool_results() == [{"timed_out": False, "signals": {"a": 1, "b": 2}}]
    assert h.store.signals_pending(h.task_id, ["a", "b"]) == []


def test_mode_any_takes_the_oldest_signal_and_leaves_the_rest() -> None:
    h = Harness([call("wait_for_signal", {"names": ["a", "b"]}), final("one")])
    h.store.signal_put(h.task_id, "b", "older")
    h.store.signal_put(h.task_id, "a", "newer")
    h.store.signal_put(h.task_id, "b", "newest")
    assert h.tick().status == TaskStatus.COMPLETED
    assert h.tool_results() == [{"timed_out": False, "signals": {"b": "older"}}]
    left = h.store.signals_pending(h.task_id, ["a", "b"])
    assert [(s.name, s.payload) for s in left] == [("a", "newer"), ("b", "newest")]
