"""The call journal: every model call and tool call of a step, recorded under a deterministic key.

Keys are `task/p<plan version>/s<step>/c<call index>` (or `task/p<version>/plan/c<n>`). The call
index counts calls within the step, independent of the attempt, so a resumed step asks for the
same keys in the same order and gets recorded answers back instead of paying again.

Recorded history wins (docs/deploys.md). A recorded model answer or tool result is a fact: a
resumed step gets it back even when the code now renders the request differently (a deploy
edited a prompt, a tool description, the tool list...). The journal notes each such key with the
recorded and the current digest (`changes`), which the runner records as a `code.changed` event.
Digests are computed over canonical values (agents/canonical.py), so a store's encoding alone
never shows up as a change. What cannot be honoured is refused by name (JournalMismatch): a key
recorded for another tool than the one the replayed answer calls, or a recorded answer this code
cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents import boundary
from agents.canonical import tool_request
from agents.errors import JournalMismatch, OutcomeUnknown
from agents.json_value import as_object
from agents.model import Model
from agents.redaction import redact
from agents.status import JournalStatus
from agents.store import Store
from agents.tools.registry import Tool, ToolContext, ToolError
from agents.types import JSON, JournalEntry, Lease, LLMRequest, LLMResponse, ToolCall, digest


def call_key(task_id: str, plan_version: int, scope: str, index: int) -> str:
    return f"{task_id}/p{plan_version}/{scope}/c{index}"


@dataclass
class Journal:
    store: Store  # the whole store: phases reach approvals, signals, spawns and tools through the journal
    lease: Lease
    # True when nothing can have been journaled for this unit of work yet: its first claim, on the
    # tick's first pass. Lookups are skipped then (a round trip per call saved on the happy path);
    # any retry, redelivery or takeover claims again, which makes the attempt counter exceed 1.
    fresh: bool = False
    hits: int = 0  # calls answered from the journal instead of being made again
    # Model answers not written yet. The tick's commit writes them in its own statement (a round
    # trip less per tick); anything that happens first (another model call, a tool call, an
    # approval) writes them before it starts, so a worker that dies during a call, or a tool whose
    # key must match its answer on resume, always finds every earlier answer recorded. A worker that
    # dies between its last answer and the commit has done nothing since but compute: the
    # resumed tick asks the model once more, with no side effect in between.
    unwritten: list[JournalEntry] = field(default_factory=list)
    # Keys whose recorded request renders differently under this code: {key, kind, recorded, now}.
    changes: list[dict[str, JSON]] = field(default_factory=list)

    def flush(self) -> None:
        """Write the answers kept for the commit now: something is about to happen before it."""
        while self.unwritten:
            self.store.journal_complete(self.lease, self.unwritten[0])
            self.unwritten.pop(0)

    def take_unwritten(self) -> tuple[JournalEntry, ...]:
        """The answers for the commit to write (and forget them here)."""
        entries, self.unwritten = tuple(self.unwritten), []
        return entries

    def lookup(self, key: str) -> JournalEntry | None:
        """The entry under a key, if anything can have been recorded for this unit of work."""
        return None if self.fresh else self.store.journal_get(key)

    def recorded(self, key: str, request_digest: str, *, name: str = "") -> JournalEntry | None:
        """The entry under `key`; one recorded under another digest is kept, and the change noted.

        `name` (a tool call's): an entry recorded for another tool is another call, not a changed
        rendering of this one, and cannot stand for it."""
        entry = self.lookup(key)
        if entry is None or entry.request_digest == request_digest:
            return entry
        if name and entry.name != name:
            raise JournalMismatch(
                f"journal key {key} recorded a call to {entry.name!r} where the recorded conversation now calls {name!r}: "
                "the history cannot be honoured"
            )
        self.changes.append({"key": key, "kind": entry.kind, "recorded": entry.request_digest, "now": request_digest})
        return entry

    def tool_recorded(self, key: str, call: ToolCall) -> tuple[str, JournalEntry | None, dict[str, JSON] | None]:
        """A tool call's request digest, its entry, and its result if it completed (a hit).

        The shared opening of every journaled tool-like call (tool_call, waits, sub-agent spawns):
        a completed entry answers the call again instead of running it."""
        self.flush()  # the answer that asked for this call is recorded before anything of the call
        request_digest = digest(tool_request(call.name, call.arguments))
        entry = self.recorded(key, request_digest, name=call.name)
        if entry is not None and entry.status == JournalStatus.COMPLETED:
            self.hits += 1
            return request_digest, entry, dict(as_object(entry.result))
        return request_digest, entry, None

    def model_call(self, key: str, model: Model, request: LLMRequest) -> LLMResponse:
        request_digest = request.digest()
        entry = self.recorded(key, request_digest)
        if entry is not None and entry.status == JournalStatus.COMPLETED:
            self.hits += 1
            try:
                return LLMResponse.from_json(as_object(entry.result))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise JournalMismatch(f"the model answer recorded under {key} cannot be read by this build: {exc!r}") from None
        self.flush()  # a call may take minutes: the answers before it are recorded first
        # Redacted before it is used or recorded: a secret the model repeats never reaches the
        # journal, a tool's arguments or the next prompt, and a replay sees the same answer. Checked
        # at the boundary first (agents/boundary.py): text PostgreSQL cannot store never gets this far.
        response = LLMResponse.from_json(redact(boundary.model_response(model.complete(request).to_json())))
        self.unwritten.append(
            JournalEntry(
                key=key,
                kind="llm",
                name=response.model or model.name,  # the model that answered: a fallback, when one did
                request_digest=request_digest,
                status=JournalStatus.COMPLETED,
                result=response.to_json(),
            )
        )
        return response

    def tool_call(self, key: str, tool: Tool, call: ToolCall, ctx: ToolContext) -> dict[str, JSON]:
        """Run a validated tool call at most once per key; returns {"ok": bool, "output"|"error": ...}."""
        request_digest, entry, replayed = self.tool_recorded(key, call)
        if replayed is not None:
            return replayed
        pending = JournalEntry(key=key, kind="tool", name=tool.name, request_digest=request_digest, status=JournalStatus.STARTED)
        # A tool that can be undone keeps its arguments with its result: the undo needs them.
        kept: dict[str, JSON] = {"arguments": call.arguments} if tool.undo is not None else {}
        if entry is not None and not tool.idempotent and not tool.transactional:
            # Started before and never recorded: the effect may or may not have happened.
            if tool.reconcile is None:
                raise OutcomeUnknown(f"tool {tool.name} (key {key}) was started but its outcome was never recorded")
            try:
                found = tool.reconcile(ctx, call.arguments)
            except Exception as exc:  # a reconciliation that cannot tell leaves it to a person
                raise OutcomeUnknown(
                    f"tool {tool.name} (key {key}): the outcome is unknown and reconciling failed: {exc}"
                ) from exc
            if found is not None:
                result: dict[str, JSON] = {"ok": True, "output": redact(boundary.clean(found)), "reconciled": True, **kept}
                self.complete(pending, result)
                return result
            # Reconciliation says it did not happen: running it now is the first time.

        def run() -> dict[str, JSON]:
            try:
                # Cleaned: whatever a page or a file held, the result can be recorded and shown.
                return {"ok": True, "output": redact(boundary.clean(tool.run(ctx, call.arguments))), **kept}
            except ToolError as exc:
                return {"ok": False, "error": redact(boundary.clean_text(str(exc)))}

        if tool.transactional:
            return dict(as_object(self.store.journal_run(self.lease, pending, run).result))
        if entry is None:
            self.store.journal_begin(self.lease, pending)
        result = run()
        self.complete(pending, result)
        return result

    def complete(self, started: JournalEntry, result: dict[str, JSON]) -> None:
        """Record the result of a call whose entry was begun (a fenced write, like every other)."""
        self.store.journal_complete(self.lease, JournalEntry(**{**started.__dict__, "status": "completed", "result": result}))
