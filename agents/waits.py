"""Durable waits: sleep_for, sleep_until and wait_for_signal are rows, not processes.

A wait tool call is journaled like any tool call, but in two phases. The first time it is seen,
its spec (kind, deadline, signal names, mode) is recorded as a *started* journal entry; the
deadline is fixed then, so re-evaluating the wait later never pushes it back. Each time the step
runs it is evaluated against the inbox and the clock:

- satisfied (the signals are there, or the deadline passed): the entry is completed with the
  result, and the consumed signals are marked in the same transaction (`journal_run`), so a
  signal is consumed exactly once;
- not yet: `WaitRequested` ends the tick. The runner commits the task as WAITING with
  next_run_at at the deadline (or none, for a wait without timeout); the sweeper rings it then,
  and a signal rings it at once. No process sleeps and no broker message waits.

A signal sent before the wait begins stays in the inbox and satisfies the wait when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from agents.errors import WaitRequested as WaitRequested  # re-exported: defined in agents.errors
from agents.journal import Journal
from agents.json_value import as_list, as_object, as_scalar, as_str, json_list
from agents.redaction import redact
from agents.status import JournalStatus
from agents.tools.registry import ToolError
from agents.tools.waits import SLEEP_FOR, SLEEP_UNTIL
from agents.types import JSON, JournalEntry, SignalRecord, ToolCall

MAX_WAIT = timedelta(days=365)


def wait_spec(call: ToolCall, now: datetime) -> dict[str, JSON]:
    """The wait a call asks for, with its deadline fixed from `now`. Raises ToolError on bad values."""
    args = call.arguments
    if call.name == SLEEP_FOR:
        seconds = float(as_scalar(args["seconds"]))
        if not 0 <= seconds <= MAX_WAIT.total_seconds():
            raise ToolError(f"seconds must be between 0 and {int(MAX_WAIT.total_seconds())}")
        return {"kind": "timer", "deadline": (now + timedelta(seconds=seconds)).isoformat()}
    if call.name == SLEEP_UNTIL:
        try:
            when = datetime.fromisoformat(str(args["when"]))
        except ValueError:
            raise ToolError(f"when is not an ISO 8601 time: {args['when']!r}") from None
        if when.tzinfo is None:
            raise ToolError("when needs a timezone (for example +00:00)")
        if when - now > MAX_WAIT:
            raise ToolError("when is more than a year away")
        return {"kind": "timer", "deadline": when.isoformat()}
    names = [str(n) for n in as_list(args["names"])]
    if not names or any(not n.strip() or len(n) > 100 for n in names):
        raise ToolError("names must be a non-empty list of signal names of 1 to 100 characters")
    timeout = args.get("timeout_seconds")
    if timeout is not None and not 0 <= float(as_scalar(timeout)) <= MAX_WAIT.total_seconds():
        raise ToolError(f"timeout_seconds must be between 0 and {int(MAX_WAIT.total_seconds())}")
    deadline = (now + timedelta(seconds=float(as_scalar(timeout)))).isoformat() if timeout is not None else None
    return {"kind": "signal", "names": json_list(sorted(set(names))), "mode": args.get("mode", "any"), "deadline": deadline}


def _chosen(spec: dict[str, JSON], pending: list[SignalRecord]) -> list[SignalRecord]:
    """The signals that satisfy the wait (oldest first), or [] if it is not satisfied yet."""
    first: dict[str, SignalRecord] = {}
    for signal in sorted(pending, key=lambda s: s.id):
        first.setdefault(signal.name, signal)
    if spec["mode"] == "all":
        names = [as_str(n) for n in as_list(spec["names"])]
        return [first[n] for n in names] if all(n in first for n in names) else []
    return [min(first.values(), key=lambda s: s.id)] if first else []


def wait_entry(key: str, call: ToolCall, request_digest: str, spec: dict[str, JSON]) -> JournalEntry:
    """The journal row of a wait as it begins: its spec (deadline included) is what a retry finds again."""
    return JournalEntry(
        key=key,
        kind="tool",
        name=call.name,
        request_digest=request_digest,
        status=JournalStatus.STARTED,
        result={"wait": spec},
    )


WaitResolver = Callable[[Journal, str, ToolCall, str, datetime], dict[str, JSON]]


def resolve_wait(journal: Journal, key: str, call: ToolCall, task_id: str, now: datetime) -> dict[str, JSON]:
    """The wait's result ({"ok": True, "output": ...}) if it is satisfied; else raise WaitRequested."""
    request_digest, entry, replayed = journal.tool_recorded(key, call)
    if replayed is not None:
        return replayed
    store = journal.store
    if entry is None:
        try:
            spec = wait_spec(call, now)
        except ToolError as exc:
            return {"ok": False, "error": str(exc)}
        entry = wait_entry(key, call, request_digest, spec)
        store.journal_begin(journal.lease, entry)
    else:
        spec = dict(as_object(as_object(entry.result)["wait"]))
    deadline = datetime.fromisoformat(as_str(spec["deadline"])) if spec.get("deadline") else None

    if spec["kind"] == "signal":
        chosen = _chosen(spec, store.signals_pending(task_id, [as_str(n) for n in as_list(spec["names"])]))
        if chosen:

            def consume() -> JSON:
                store.signals_consume(task_id, [s.id for s in chosen], key)
                # A signal's payload comes from outside (an operator, a webhook): redacted like a tool's output.
                signals = redact({s.name: s.payload for s in chosen})
                return {"ok": True, "output": {"timed_out": False, "signals": signals}}

            return dict(as_object(store.journal_run(journal.lease, entry, consume).result))
    if deadline is not None and now >= deadline:
        output: JSON = {"timed_out": True, "signals": {}} if spec["kind"] == "signal" else {"slept_until": spec["deadline"]}
        result: dict[str, JSON] = {"ok": True, "output": output}
        journal.complete(entry, result)
        return result
    raise WaitRequested(key, spec, deadline)
