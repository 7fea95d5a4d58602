"""Regression replay: run a recorded task again on the current code, fed its recorded answers.

The recorded task's goal, context and profile (as it started with it) go into a fresh
InMemoryStore, and a Runner built by the caller drives that copy to its end. Nothing real is
asked: every model call is answered from the recording's journal, and so is every tool call
(and every undo), every wait (a timer or a signal: what came back, at once) and every sub-agent
spawn, by the journal key the new run uses, mapped to the recorded task's key. The
first of these stops the replay with a divergence:

- the new code makes a call the recording never made (another key, or more calls);
- it asks a recorded key a different request (a changed prompt, tool schema, argument...).

When the replay runs to its end, its decision trail (the events that say what the agent decided:
plans, steps and their outcomes, reviews, the task's end) is compared with the recording's;
timestamps, workers, attempts and usage numbers are left out. The first differing event is the
divergence.

Why not pre-seed the fresh store's journal and let it replay: a first claim skips journal
lookups (`Journal.fresh`), so the new run would call the model. The seams here (a model and a tool
registry answering from the recording) work whatever the journal skips.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from agents import events as ev
from agents.canonical import tool_request
from agents.errors import Diverged as Diverged  # re-exported: defined in agents.errors
from agents.inmemory_store import InMemoryStore
from agents.journal import Journal
from agents.json_value import as_object
from agents.model import Model
from agents.runner import Runner
from agents.status import JournalStatus
from agents.store import CommitResult, Store, TaskReads
from agents.tools import default_registry
from agents.tools.registry import Tool, ToolContext, ToolError, ToolRegistry
from agents.types import (
    JSON,
    EventRecord,
    JournalEntry,
    Lease,
    LLMRequest,
    LLMResponse,
    NewTask,
    TickCommit,
    ToolCall,
    digest,
)
from agents.waits import WaitResolver, resolve_wait

RunnerFactory = Callable[[Store, Model, ToolRegistry], Runner]

# The events that record a decision of the agent, and the fields of each that say what was decided.
# Operational events (a lease taken over, a stall, a signal's arrival, an operator's action) depend
# on when and where the task ran, not on the code's decisions, and are left out.
DECISION_FIELDS: dict[str, tuple[str, ...]] = {
    ev.PLAN_CREATED: ("version", "steps"),
    ev.PLAN_REVISED: ("version", "from_index", "steps", "reason"),
    ev.STEP_REVIEWED: ("index", "round", "kind", "approved", "critique"),
    ev.STEP_COMPLETED: ("index", "title", "output"),
    ev.STEP_FAILED: ("index", "title", "error"),
    ev.TASK_COMPLETED: ("result",),
    ev.TASK_ESCALATED: ("reason", "error", "step_index"),
    ev.TASK_FAILED: ("reason",),
    ev.TASK_WAITING: ("index", "key", "kind"),
    ev.TASK_COMPENSATED: ("undone", "failed", "unknown"),
}


@dataclass(frozen=True)
class Divergence:
    kind: str  # "model_call", "tool_call", "event"
    message: str
    key: str = ""  # the recorded journal key, for a call
    seq: int | None = None  # the recorded event's seq, for an event (None: the recording has no more)
    recorded: JSON = None
    replayed: JSON = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "kind": self.kind,
            "message": self.message,
            "key": self.key,
            "seq": self.seq,
            "recorded": self.recorded,
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class RegressionReport:
    task_id: str
    replay_task_id: str
    divergence: Divergence | None
    model_calls: int = 0  # answered from the recording
    tool_calls: int = 0
    recorded_events: int = 0  # decision events compared
    replayed_events: int = 0
    replay_status: str = ""
    notes: list[str] = field(default_factory=list)
    changes: list[dict[str, JSON]] = field(default_factory=list)  # requests rendered differently (tolerated)

    @property
    def diverged(self) -> bool:
        return self.divergence is not None

    def to_json(self) -> dict[str, JSON]:
        return {
            "task_id": self.task_id,
            "replay_task_id": self.replay_task_id,
            "diverged": self.diverged,
            "divergence": self.divergence.to_json() if self.divergence else None,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "recorded_events": self.recorded_events,
            "replayed_events": self.replayed_events,
            "replay_status": self.replay_status,
            "notes": list(self.notes),
            "changes": list(self.changes),
        }


class _Recording:
    """The recorded journal, addressed by the new run's keys."""

    def __init__(self, recorded_id: str, entries: list[JournalEntry]) -> None:
        self.recorded_id = recorded_id
        self.replay_id = ""  # set once the copy exists
        self.by_key = {e.key: e for e in entries if e.status == JournalStatus.COMPLETED}
        self.unfinished = {e.key for e in entries if e.status != JournalStatus.COMPLETED}  # e.g. a wait still waiting
        self.llm = deque(e for e in entries if e.kind == "llm" and e.status == JournalStatus.COMPLETED)
        self.model_calls = 0
        self.tool_calls = 0
        self.pending_llm: JournalEntry | None = None  # answered, not yet journaled by the new run
        self.tolerate_changes = False  # the deploy gate's replay: a changed request is reused, and noted
        self.changes: list[dict[str, JSON]] = []

    def mapped(self, key: str) -> str:
        prefix = self.replay_id + "/"
        return self.recorded_id + "/" + key[len(prefix) :] if key.startswith(prefix) else key

    def answer_tool(self, ctx: ToolContext, request_digest: str | None) -> JSON:
        key = self.mapped(ctx.idempotency_key)
        entry = self.by_key.get(key)
        if entry is None or entry.kind != "tool" or not isinstance(entry.result, dict):
            raise Diverged(f"the new code makes a tool call the recording never made (key {key})", kind="tool_call", key=key)
        if request_digest is not None and entry.request_digest != request_digest:
            raise Diverged(f"the tool call differs at key {key} (another tool or other arguments)", kind="tool_call", key=key)
        self.tool_calls += 1
        if not entry.result.get("ok"):
            raise ToolError(str(entry.result.get("error", "")))
        return entry.result.get("output")


class RecordedModel:
    """Answers each model call with the recording's next one, if the request is the recorded request.

    The model does not see the journal key; the calls come in the recorded order, and the store
    checks the key when the new run journals the answer (`_ReplayStore.journal_complete`).
    """

    name = "recorded"

    def __init__(self, recording: _Recording) -> None:
        self.recording = recording

    def complete(self, request: LLMRequest) -> LLMResponse:
        rec = self.recording
        if not rec.llm:
            raise Diverged(
                "the new code asks a model call the recording never made (the recording has no more)", kind="model_call"
            )
        entry = rec.llm.popleft()
        now = request.digest()
        if entry.request_digest != now and rec.tolerate_changes:
            rec.changes.append({"key": entry.key, "recorded": entry.request_digest, "now": now})
        elif entry.request_digest != now:
            raise Diverged(
                f"the model request differs at key {entry.key} (e.g. a prompt or a tool schema changed)",
                kind="model_call",
                key=entry.key,
            )
        rec.pending_llm = entry
        rec.model_calls += 1
        return replace(LLMResponse.from_json(as_object(entry.result)), model=entry.name)


class _ReplayStore(InMemoryStore):
    """The copy's store: checks that each model answer is journaled under the recorded call's key."""

    recording: _Recording

    def _check_answer(self, entry: JournalEntry) -> None:
        rec = self.recording
        if entry.kind != "llm":
            return
        expected, rec.pending_llm = rec.pending_llm, None
        key = rec.mapped(entry.key)
        if expected is None or expected.key != key:
            where = expected.key if expected else "none"
            raise Diverged(
                f"the new code asks a model call the recording never made (key {key}; the recording's next was {where})",
                kind="model_call",
                key=key,
            )

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None:
        self._check_answer(entry)
        super().journal_complete(lease, entry)

    def commit(self, lease: Lease, commit: TickCommit) -> CommitResult:
        # A tick's last model answer is journaled by its commit (agents/journal.py): checked here.
        for entry in commit.journal:
            self._check_answer(entry)
        return super().commit(lease, commit)

    def spawn_children(self, lease: Lease, entry: JournalEntry, children: list[NewTask]) -> None:
        # A replay spawns nobody: the recorded sub-agents' outcome is the spawn's recorded result.
        rec = self.recording
        key = rec.mapped(entry.key)
        recorded = rec.by_key.get(key)
        if recorded is None or recorded.name != entry.name:
            raise Diverged(f"the new code spawns sub-agents the recording never spawned (key {key})", kind="tool_call", key=key)
        if recorded.request_digest != entry.request_digest:
            raise Diverged(f"the spawn differs at key {key} (other sub-agents or another policy)", kind="tool_call", key=key)
        rec.tool_calls += 1
        super().journal_complete(lease, replace(entry, status=JournalStatus.COMPLETED, result=recorded.result))


def recorded_waits(rec: _Recording) -> WaitResolver:
    """Answers each wait (a timer or a signal) with the recording's outcome, at once.

    The recorded task waited for a time or a person; the replay need not: what came back (the
    signals' payloads, a timeout) is in the recording's journal, and the new code must ask for the
    same wait under the same key. Where the recording is still waiting, the replay waits too.
    """

    def resolve(journal: Journal, key: str, call: ToolCall, task_id: str, now: datetime) -> dict[str, JSON]:
        recorded_key = rec.mapped(key)
        if recorded_key in rec.unfinished:
            return resolve_wait(journal, key, call, task_id, now)
        recorded = rec.by_key.get(recorded_key)
        if recorded is None or recorded.name != call.name:
            raise Diverged(
                f"the new code waits where the recording never did (key {recorded_key})", kind="tool_call", key=recorded_key
            )
        request_digest = digest(tool_request(call.name, call.arguments))
        if recorded.request_digest != request_digest:
            raise Diverged(f"the wait differs at key {recorded_key} (other arguments)", kind="tool_call", key=recorded_key)
        rec.tool_calls += 1
        answer = JournalEntry(
            key=key,
            kind="tool",
            name=call.name,
            request_digest=request_digest,
            status=JournalStatus.COMPLETED,
            result=recorded.result,
        )
        journal.store.journal_complete(journal.lease, answer)
        return dict(as_object(recorded.result))

    return resolve


def _recorded_tool(tool: Tool, rec: _Recording) -> Tool:
    def run(ctx: ToolContext, **arguments: JSON) -> JSON:
        return rec.answer_tool(ctx, digest(tool_request(tool.name, arguments)))

    undo = None
    if tool.undo is not None:

        def undo(ctx: ToolContext, arguments: dict[str, JSON], output: JSON) -> JSON:
            # The undo's journal entry is keyed `<call key>/undo` with no arguments of its own.
            return rec.answer_tool(ctx, None)

    # A recorded call never has an unknown outcome: reconciling would look at the real world.
    return replace(tool, fn=run, undo=undo, reconcile=None)


def recorded_registry(tools: ToolRegistry, recording: _Recording) -> ToolRegistry:
    """The same tools and schemas; each answers from the recording instead of running."""
    return ToolRegistry(tools={name: _recorded_tool(t, recording) for name, t in tools.tools.items()})


def decision_trail(events: list[EventRecord], task_id: str) -> list[tuple[int, dict[str, JSON]]]:
    """(seq, what was decided) for each decision event; the task's own id is written as <task>."""
    trail = []
    for event in events:
        fields = DECISION_FIELDS.get(event.type)
        if fields is None:
            continue
        if event.type == ev.TASK_WAITING:
            # Whether and how often a task waited (for its sub-agents, a timer or a signal) is timing:
            # the replay answers waits at once, and checks each wait call by its key and arguments.
            continue
        decided = {"type": event.type, **{f: event.payload[f] for f in fields if f in event.payload}}
        text = json.dumps(decided, sort_keys=True, default=str).replace(task_id, "<task>")
        trail.append((event.seq, json.loads(text)))
    return trail


def _first_difference(
    recorded: list[tuple[int, dict[str, JSON]]], replayed: list[tuple[int, dict[str, JSON]]]
) -> Divergence | None:
    for i in range(max(len(recorded), len(replayed))):
        old = recorded[i] if i < len(recorded) else None
        new = replayed[i] if i < len(replayed) else None
        if old is not None and new is not None and old[1] == new[1]:
            continue
        if old is None:
            assert new is not None
            message = f"the replay decided more than the recording: {new[1]['type']} (replayed seq {new[0]})"
        elif new is None:
            message = f"the replay stopped before the recording's {old[1]['type']} (seq {old[0]})"
        else:
            message = f"the decisions differ at the recording's event seq {old[0]}: {old[1]['type']} vs {new[1]['type']}"
        return Divergence(
            kind="event",
            message=message,
            seq=old[0] if old else None,
            recorded=old[1] if old else None,
            replayed=new[1] if new else None,
        )
    return None


def default_runner_factory(store: Store, model: Model, tools: ToolRegistry) -> Runner:
    return Runner(store, model, tools)


def regress(
    recorded_store: TaskReads,
    task_id: str,
    *,
    tools: ToolRegistry | None = None,
    runner_factory: RunnerFactory = default_runner_factory,
    max_ticks: int = 1000,
    tolerate_changes: bool = False,
) -> RegressionReport:
    """Replay `task_id` of `recorded_store` on the current code and report the first divergence.

    `tools`: the registry whose schemas the current code offers (default: the default registry);
    its tools are answered from the recording. `runner_factory` builds the runner of the current
    code around the copy's store, the recorded model and the recorded tools.
    """
    task = recorded_store.get_task(task_id)
    recording = _Recording(task.id, recorded_store.journal_entries(task.id))
    recording.tolerate_changes, store = tolerate_changes, _ReplayStore()
    store.recording = recording
    copy_id = store.create_task(
        NewTask(
            goal=task.goal,
            context=task.context,
            profile=task.profile,
            max_steps=task.max_steps,
            max_attempts=task.max_attempts,
            profile_config=task.profile_config,
        )
    )
    recording.replay_id = copy_id
    runner = runner_factory(store, RecordedModel(recording), recorded_registry(tools or default_registry, recording))
    runner.executor.resolve_wait = recorded_waits(recording)
    notes: list[str] = []
    if task.profile_config is None:
        notes.append(f"the task kept no profile snapshot: replayed with the profile {task.profile!r} as configured now")

    divergence: Divergence | None = None
    try:
        runner.run(copy_id, max_ticks=max_ticks)
    except Diverged as exc:
        divergence = Divergence(kind=exc.kind, message=str(exc), key=exc.key)
    recorded_trail = decision_trail(recorded_store.events(task.id), task.id)
    replayed_trail = decision_trail(store.events(copy_id), copy_id)
    if divergence is None:
        if recording.llm:
            notes.append(f"{len(recording.llm)} recorded model call(s) were not asked again")
        divergence = _first_difference(recorded_trail, replayed_trail)
    return RegressionReport(
        task_id=task.id,
        replay_task_id=copy_id,
        divergence=divergence,
        model_calls=recording.model_calls,
        tool_calls=recording.tool_calls,
        recorded_events=len(recorded_trail),
        replayed_events=len(replayed_trail),
        replay_status=store.get_task(copy_id).status,
        notes=notes,
        changes=recording.changes,
    )


__all__ = ["Divergence", "Diverged", "RecordedModel", "RegressionReport", "decision_trail", "recorded_registry", "regress"]
