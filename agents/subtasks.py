"""Sub-agents: a step spawns child tasks and waits, without holding a process, until all have ended.

`spawn_subtasks` is resolved by the step executor in the journal's two phases, like the waits
(agents/waits.py):

- the first time the call is seen, its children are validated and created together with a
  *started* journal entry holding the wait's spec, in one fenced transaction
  (`Store.spawn_children`). Each child's id is derived from the journal key and its index, and
  creating a task under an existing id creates nothing: a resumed tick (the worker died after that
  transaction and before the tick's commit) finds the entry and spawns nobody twice, and a zombie
  whose lease was taken over spawns nobody at all;
- each later pass reads the children's statuses. While one is still active, `WaitRequested` ends
  the tick: the task is WAITING. When all have ended, the entry is completed with their statuses,
  results and usage, which the step receives as the tool's result.

Doorbells: a child that ends appends `child.ended` to its parent's log and wakes the parent if it
is waiting (`ring_parent`, after the child's commit). The append also makes a parent tick that
is about to commit its wait conflict and re-check, so a child that ends between the parent's
check and its commit is not missed. If the doorbell itself is lost (the process died between the
child's commit and the ring), the wait's own re-check timer, kept in next_run_at, brings the
parent back through the sweeper: at `recheck` seconds at first, then at half the time waited so
far (at most an hour), so a long wait costs a logarithmic number of re-checks.

Budgets: each child gets a share of the parent's *remaining* token, cost and step budget (its
frozen profile's limits become the share). When the children end, their actual usage (tokens,
cost, steps) is added to the step's usage, so the parent's usage includes its children's.

Failure policy (`on_child_failure`): `fail_parent` fails the parent (ChildFailed), `continue`
gives the step the failures as data, `escalate` sends the parent to a person (ChildEscalation);
when the person resumes it, the step goes on with the failures as data.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agents import events as ev
from agents.errors import ChildEscalation as ChildEscalation
from agents.errors import ChildFailed as ChildFailed  # re-exported: defined in agents.errors
from agents.errors import InvalidInput, TaskNotFound
from agents.journal import Journal
from agents.json_value import as_list, as_object, as_scalar, as_str
from agents.profiles import AgentProfile, profile_to_json
from agents.status import JournalStatus, TaskStatus
from agents.store import ControlStore, TaskReads
from agents.tools.registry import ToolError
from agents.types import JSON, NewTask, OperatorChange, TaskRecord, ToolCall
from agents.usage import Spent
from agents.waits import WaitRequested, wait_entry

if TYPE_CHECKING:
    from agents.events import TaskState

POLICIES = ("fail_parent", "continue", "escalate")
MAX_CHILDREN = 20
MAX_DEPTH = 5  # sub-agents of sub-agents...: a task this many levels below a root spawns no more
MAX_RECHECK_SECONDS = 3600.0
_NAMESPACE = uuid.UUID("6f1d4c2e-8a57-4c1b-9d0e-5b3a7c9e2f10")


def child_id(key: str, index: int) -> str:
    """The id of the index-th child spawned by the call under journal `key`: the same on every try."""
    return str(uuid.uuid5(_NAMESPACE, f"{key}#{index}"))


def _remaining(profile: AgentProfile, state: TaskState, spent: Spent) -> dict[str, float | None]:
    """What is left of each budget the parent has (None: that budget has no limit)."""
    return {
        "tokens": profile.max_tokens - (state.prompt_tokens + state.completion_tokens + spent.tokens)
        if profile.max_tokens
        else None,
        "cost": profile.max_cost_usd - (state.cost_usd + spent.cost_usd) if profile.max_cost_usd else None,
        # The step running now is one of the parent's step runs: it is not shared.
        "steps": profile.max_steps - state.steps_run - 1 if profile.max_steps else None,
    }


def _shares(items: list[dict[str, JSON]]) -> list[float]:
    given = [item.get("budget_share") for item in items]
    for share in given:
        if share is not None and (not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1):
            raise ToolError("budget_share must be a number greater than 0 and at most 1")
    total = sum(float(as_scalar(s)) for s in given if s is not None)
    if total > 1 + 1e-9:
        raise ToolError(f"the budget shares add up to {total:g}; they may add up to at most 1")
    unset = sum(1 for s in given if s is None)
    if unset and 1 - total <= 1e-9:
        raise ToolError("the given budget shares use the whole budget: the children without a share would get none")
    rest = (1 - total) / unset if unset else 0.0
    return [float(as_scalar(s)) if s is not None else rest for s in given]


def child_profile(base: AgentProfile, share: float, remaining: dict[str, float | None]) -> dict[str, JSON]:
    """The child's frozen profile: its own profile as of now, its limits cut down to its share."""
    tokens, cost, steps = remaining["tokens"], remaining["cost"], remaining["steps"]
    profile = base
    if tokens is not None:
        quota = max(1, math.floor(share * tokens))
        profile = replace(profile, max_tokens=min(profile.max_tokens, quota) if profile.max_tokens else quota)
    if cost is not None:
        quota_usd = round(share * cost, 8) or 1e-8
        profile = replace(profile, max_cost_usd=min(profile.max_cost_usd, quota_usd) if profile.max_cost_usd else quota_usd)
    if steps is not None:
        quota_steps = max(1, math.floor(share * steps))
        profile = replace(profile, max_steps=min(profile.max_steps, quota_steps) if profile.max_steps else quota_steps)
    return profile_to_json(profile)


def spawn_plan(
    *,
    key: str,
    call: ToolCall,
    task: TaskRecord,
    state: TaskState,
    spent: Spent,
    profile: AgentProfile,
    profiles: Mapping[str, AgentProfile],
    now: datetime,
    depth: int = 0,
) -> tuple[dict[str, JSON], list[NewTask]]:
    """The wait's spec and the children to create. Raises ToolError (the model hears why) on bad input."""
    # Local: importing agents.runner runs its package, which imports the executor, which imports this.
    from agents.runner.intake import validate_new_task

    if depth >= MAX_DEPTH:
        raise ToolError(f"this task is a sub-agent {depth} levels deep: it may not spawn more (the limit is {MAX_DEPTH})")
    given = call.arguments.get("children")
    if not isinstance(given, list) or not given or not all(isinstance(i, dict) for i in given):
        raise ToolError("children must be a non-empty list of objects with a goal")
    items = [i for i in given if isinstance(i, dict)]  # every one, checked above: typed as objects
    if len(items) > MAX_CHILDREN:
        raise ToolError(f"at most {MAX_CHILDREN} children per call")
    policy = call.arguments.get("on_child_failure", "fail_parent")
    if policy not in POLICIES:
        raise ToolError(f"on_child_failure must be one of {', '.join(POLICIES)}")
    for item in items:
        unknown = sorted(set(item) - {"goal", "context", "profile", "budget_share"})
        if unknown:
            raise ToolError(f"unknown child settings: {', '.join(unknown)}")
    shares = _shares(items)
    remaining = _remaining(profile, state, spent)
    exhausted = [name for name, left in remaining.items() if left is not None and left <= 0]
    if exhausted:
        raise ToolError(f"no {' or '.join(exhausted)} budget is left to share with sub-agents")
    children: list[NewTask] = []
    for index, (item, share) in enumerate(zip(items, shares, strict=True)):
        name = item.get("profile") or task.profile
        if not isinstance(name, str) or name not in profiles:
            raise ToolError(f"child {index}: unknown profile {name!r}; configured: {', '.join(sorted(profiles))}")
        goal, context = item.get("goal"), item.get("context")
        new = NewTask(
            goal=goal if isinstance(goal, str) else "",
            context=as_object(context) if context is not None else {},
            profile=name,
            max_steps=task.max_steps,
            max_attempts=task.max_attempts,
            parent_id=task.id,
            task_id=child_id(key, index),
        )
        try:
            new = validate_new_task(new, profiles)
        except InvalidInput as exc:
            raise ToolError(f"child {index}: {exc}") from None
        children.append(replace(new, profile_config=child_profile(profiles[name], share, remaining)))
    spec: dict[str, JSON] = {
        "kind": "children",
        "children": [c.task_id for c in children],
        "policy": policy,
        "started": now.isoformat(),
        "deadline": None,
    }
    return spec, children


def _depth(store: TaskReads, task: TaskRecord) -> int:
    """How many ancestors the task has (read only when it spawns)."""
    depth, parent = 0, task.parent_id
    while parent is not None and depth <= MAX_DEPTH:
        depth += 1
        parent = store.get_task(parent).parent_id
    return depth


def _recheck_at(spec: dict[str, JSON], now: datetime, recheck: float) -> datetime:
    waited = (now - datetime.fromisoformat(str(spec["started"]))).total_seconds()
    return now + timedelta(seconds=min(max(recheck, waited / 2), max(recheck, MAX_RECHECK_SECONDS)))


def _outcome(store: TaskReads, ids: list[str]) -> dict[str, JSON] | None:
    """The children's statuses, results and usage once every one has ended; None while one is active."""
    records = [store.get_task(i) for i in ids]
    if any(r.status not in TaskStatus.TERMINAL for r in records):
        return None
    children: list[JSON] = []
    total = Spent()
    for record in records:
        checkpoint = store.latest_checkpoint(record.id)
        state = dict(checkpoint.state) if checkpoint else {}
        # A child's own usage includes its sub-agents' (its steps took theirs on in turn).
        used: dict[str, JSON] = {
            "prompt_tokens": int(as_scalar(state.get("prompt_tokens", 0))),
            "completion_tokens": int(as_scalar(state.get("completion_tokens", 0))),
            "cost_usd": float(as_scalar(state.get("cost_usd", 0.0))),
            "child_steps": int(as_scalar(state.get("steps_run", 0))),
        }
        total.merge(used)
        children.append(
            {
                "task_id": record.id,
                "goal": record.goal,
                "status": record.status,
                "reason": record.status_reason,
                "result": record.result,
                "usage": used,
            }
        )
    failed = sum(1 for c in records if c.status != TaskStatus.COMPLETED)
    # Only tokens, cost and steps go to the parent: the children's model calls are theirs, not the
    # parent step's (which has its own per-step call limit).
    usage: dict[str, JSON] = {
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "cost_usd": round(total.cost_usd, 8),
        "child_steps": total.child_steps,
    }
    return {"ok": True, "output": {"children": children, "failed": failed}, "usage": usage}


def resolve_children(
    journal: Journal,
    key: str,
    call: ToolCall,
    *,
    task: TaskRecord,
    state: TaskState,
    spent: Spent,
    profile: AgentProfile,
    profiles: Mapping[str, AgentProfile],
    now: datetime,
    recheck: float,
) -> dict[str, JSON]:
    """The children's outcome once all have ended; spawns them the first time; else raises WaitRequested."""
    request_digest, entry, replayed = journal.tool_recorded(key, call)
    if replayed is not None:
        return replayed
    store = journal.store
    if entry is None:
        try:
            spec, children = spawn_plan(
                key=key,
                call=call,
                task=task,
                state=state,
                spent=spent,
                profile=profile,
                profiles=profiles,
                now=now,
                depth=_depth(store, task),
            )
        except ToolError as exc:
            return {"ok": False, "error": str(exc)}
        entry = wait_entry(key, call, request_digest, spec)
        store.spawn_children(journal.lease, entry, children)
        # What the store kept is the spec (a crash and a retry keep the first one, ids included);
        # a store may also answer at once (a regression replay answers from its recording).
        kept = store.journal_get(key)
        if kept is not None and kept.status == JournalStatus.COMPLETED:
            return dict(as_object(kept.result))
        if kept is not None:
            entry = kept
    spec = dict(as_object(as_object(entry.result)["wait"]))
    outcome = _outcome(store, [str(i) for i in as_list(spec["children"])])
    if outcome is None:
        raise WaitRequested(key, spec, _recheck_at(spec, now, recheck))
    outcome["policy"] = spec["policy"]
    journal.complete(entry, outcome)
    return outcome


def apply_policy(result: dict[str, JSON], *, key: str, state: TaskState) -> None:
    """Raise what the spawn's failure policy asks for, when a child did not complete."""
    output = as_object(result.get("output") or {})
    if not result.get("ok") or not output.get("failed"):
        return
    children = [as_object(c) for c in as_list(output["children"])]
    failures = [
        f"{as_str(c['goal'])[:80]!r} {c['status']}: {as_str(c['reason'])[:200]}"
        for c in children
        if c["status"] != TaskStatus.COMPLETED
    ]
    summary = f"{len(failures)} of {len(children)} sub-agents did not complete: " + "; ".join(failures)
    policy = result.get("policy", "fail_parent")
    if policy == "fail_parent":
        raise ChildFailed(summary)
    if policy == "escalate" and key not in as_list(state.extra.get("children_acknowledged", [])):
        raise ChildEscalation(summary, key=key)


def ring_parent(store: ControlStore, *, parent_id: str, child_id: str, status: str) -> bool:
    """A child ended: tell its parent (an event in its log) and wake it if it waits. False if it has ended."""
    try:
        store.operator_change(
            parent_id,
            OperatorChange(
                event=ev.new_event(ev.CHILD_ENDED, {"child": child_id, "status": status}),
                from_statuses=TaskStatus.ACTIVE,
                wake_if_waiting=True,
            ),
        )
    except (InvalidInput, TaskNotFound):
        return False
    return True
