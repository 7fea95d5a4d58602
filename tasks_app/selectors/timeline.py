"""What the timeline shows about steps: every plan version, and per step its timings, usage and tool calls.

Step rows hold only the current plan (a re-plan deletes the rows it replaces), so earlier versions are
rebuilt from the plan events, and what a step did from the journal: its model answers carry the tool
calls asked for (name, arguments) and its tool entries the results. A call that never reached a tool
(rejected by a person, unknown, invalid) has no tool entry; the step's transcript holds its error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasks_app.models import AgentTask, Approval, Event, JournalEntry, Step
from tasks_app.readable import arguments_code, duration_text, step_number, step_result_text, value_text

_SCOPE = re.compile(r"/p(\d+)/s(\d+)/")
_CALL = re.compile(r"/c(\d+)$")


@dataclass
class StepUsage:
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return arguments
    return arguments_code(arguments)


def _result_text(result: Any) -> tuple[bool, str]:
    """(ok, text) of a tool's recorded result {"ok": bool, "output"|"error": ...}."""
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return True, result
    if isinstance(result, dict) and "ok" in result:
        ok = bool(result["ok"])
        return ok, value_text(result.get("output") if ok else result.get("error"))
    return True, value_text(result)


def _call_number(key: str) -> int:
    match = _CALL.search(key)
    return int(match.group(1)) if match else 0


def _usage_by_scope(
    task: AgentTask, transcripts: dict[tuple[int, int], list[Any]], hits: dict[int, int]
) -> dict[tuple[int, int], StepUsage]:
    """Per (plan version, index): model usage and the tool calls, in the order they were made."""
    found: dict[tuple[int, int], list[JournalEntry]] = {}
    for entry in JournalEntry.objects.filter(task=task).order_by("id"):
        match = _SCOPE.search(entry.key)
        if match:
            found.setdefault((int(match.group(1)), int(match.group(2))), []).append(entry)
    usage: dict[tuple[int, int], StepUsage] = {}
    approvals = {a.key: a for a in Approval.objects.filter(task=task, kind="tool").select_related("decided_by")}
    for scope, entries in found.items():
        entries.sort(key=lambda e: _call_number(e.key))
        errors = {
            m.get("tool_call_id"): m.get("content")
            for m in transcripts.get(scope, [])
            if isinstance(m, dict) and m.get("role") == "tool"
        }
        u = usage.setdefault(scope, StepUsage())
        pending: list[dict[str, Any]] = []
        reused = hits.get(scope[1], 0)

        def settle(call: dict[str, Any], u: StepUsage = u, errors: dict[Any, Any] = errors) -> None:
            content = errors.get(call["call_id"])
            ok, text = (
                _result_text(content)
                if content is not None
                else (False, "not run (yet): waiting for a decision or the step's next attempt")
            )
            u.calls.append({**call, "ok": ok, "output": text, "duration": "—", "from_journal": False, "ran": False})

        for position, entry in enumerate(entries):
            result = entry.result if isinstance(entry.result, dict) else {}
            if entry.kind == "llm":
                for call in pending:
                    settle(call)
                pending = []
                u.model_calls += 1
                tokens = result.get("usage") or {}
                u.prompt_tokens += int(tokens.get("prompt_tokens") or 0)
                u.completion_tokens += int(tokens.get("completion_tokens") or 0)
                u.cost_usd += float(result.get("cost_usd") or 0.0)
                for call in result.get("tool_calls") or []:
                    if isinstance(call, dict):
                        pending.append(
                            {
                                "name": call.get("name", "?"),
                                "arguments": _arguments_text(call.get("arguments")),
                                "call_id": call.get("call_id"),
                            }
                        )
            elif entry.kind == "tool":
                call = next((c for c in pending if c["name"] == entry.name), None)
                if call is not None:
                    pending.remove(call)
                decided = approvals.get(entry.key)
                if decided is not None and decided.edited_arguments is not None and call is not None:
                    # What ran is what the person edited, not what the model asked for.
                    who = decided.decided_by.get_username() if decided.decided_by else "a person"
                    asked = call["arguments"]
                    call["arguments"] = (
                        f"{_arguments_text(decided.edited_arguments)}\n(edited by {who}; the model asked for:\n{asked})"
                    )
                ok, text = _result_text(entry.result) if entry.status == "completed" else (False, "started; no result recorded")
                took = entry.completed_at - entry.created_at if entry.completed_at and entry.created_at else None
                u.calls.append(
                    {
                        "name": entry.name,
                        "arguments": call["arguments"] if call else "",
                        "ok": ok,
                        "output": text,
                        "duration": duration_text(took) if took is not None else "—",
                        # A resumed step replays its calls in order: the first `journal_hits` came from the journal.
                        "from_journal": position < reused,
                        "ran": True,
                    }
                )
        for call in pending:
            settle(call)
    return usage


def _journal_hits(events: list[Event]) -> dict[int, int]:
    hits: dict[int, int] = {}
    for e in events:
        if e.type == "step.completed" and isinstance(e.payload, dict) and isinstance(e.payload.get("index"), int):
            hits[e.payload["index"]] = int(e.payload.get("journal_hits") or 0)
    return hits


def _when(value: datetime | None) -> str:
    from django.utils.formats import date_format
    from django.utils.timezone import localtime

    return date_format(localtime(value), "Y-m-d H:i:s") if value else ""


def timeline_steps(task: AgentTask) -> dict[str, Any]:
    """{"steps": the current plan's steps, "earlier": steps of earlier plan versions no longer in it, "plans": versions}."""
    steps = list(Step.objects.filter(task=task).order_by("index"))
    plan_events = list(
        Event.objects.filter(task=task, type__in=("plan.created", "plan.revised", "step.completed", "step.failed")).order_by(
            "seq"
        )
    )
    transcripts = {(s.plan_version, s.index): list(s.transcript or []) for s in steps}
    usage = _usage_by_scope(task, transcripts, _journal_hits(plan_events))
    current = [_step_row(task, s, usage.get((s.plan_version, s.index), StepUsage())) for s in steps]
    earlier, plans = _earlier_versions(plan_events, {(s.plan_version, s.index) for s in steps}, usage)
    return {"steps": current, "earlier": earlier, "plans": plans}


def _step_row(task: AgentTask, s: Step, u: StepUsage) -> dict[str, Any]:
    from django.urls import reverse

    took = s.finished_at - s.started_at if s.started_at and s.finished_at else None
    return {
        "index": s.index,
        "number": s.index + 1,
        "title": s.title,
        "instructions": s.instructions,
        "status": s.status,
        "attempts": s.attempts,
        "plan_version": s.plan_version,
        "requires_approval": s.requires_approval,
        "started_at": _when(s.started_at),
        "finished_at": _when(s.finished_at),
        "duration": duration_text(took) if took is not None else "—",
        "model_calls": u.model_calls,
        "tokens": u.prompt_tokens + u.completion_tokens,
        "tokens_detail": f"{u.prompt_tokens} prompt + {u.completion_tokens} completion",
        "cost_usd": f"{u.cost_usd:.4f}",
        "error": s.error,
        "result": step_result_text(s.result) if s.result is not None else "",
        "tool_calls": u.calls,
        "transcript_url": reverse("admin:tasks_app_agenttask_transcript", args=[task.pk, s.index + 1]) if s.transcript else "",
    }


def _earlier_versions(
    events: list[Event], current: set[tuple[int, int]], usage: dict[tuple[int, int], StepUsage]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Steps that a later plan version replaced, marked failed, completed or superseded."""
    planned: dict[tuple[int, int], dict[str, Any]] = {}
    outcome: dict[tuple[int, int], tuple[str, str]] = {}
    plans: list[dict[str, Any]] = []
    version = 0
    for e in events:
        p = e.payload if isinstance(e.payload, dict) else {}
        if e.type in ("plan.created", "plan.revised"):
            version = int(p.get("version") or version + 1)
            start = p.get("from_index") if isinstance(p.get("from_index"), int) else None
            plans.append(
                {
                    "version": version,
                    "from": step_number(start) if start is not None else "",
                    "reason": p.get("reason", ""),
                    "steps": len(p.get("steps") or []),
                    "when": _when(e.created_at),
                }
            )
            for s in p.get("steps") or []:
                if isinstance(s, dict) and isinstance(s.get("index"), int):
                    planned[(version, s["index"])] = {**s, "version": version}
        elif e.type in ("step.completed", "step.failed") and isinstance(p.get("index"), int):
            scope = (version, p["index"])
            # A step kept from an older version runs under the version it was planned in.
            while scope not in planned and scope[0] > 1:
                scope = (scope[0] - 1, scope[1])
            text = p.get("error", "") if e.type == "step.failed" else value_text(p.get("output"))
            outcome[scope] = ("failed" if e.type == "step.failed" else "completed", text)
    earlier = []
    for (v, index), s in sorted(planned.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if (v, index) in current:
            continue
        status, text = outcome.get((v, index), ("superseded", ""))
        u = usage.get((v, index), StepUsage())
        earlier.append(
            {
                "number": index + 1,
                "plan_version": v,
                "title": s.get("title", ""),
                "instructions": s.get("instructions", ""),
                "status": status,
                "note": text,
                "tokens": u.prompt_tokens + u.completion_tokens,
                "cost_usd": f"{u.cost_usd:.4f}",
                "tool_calls": u.calls,
            }
        )
    return earlier, plans
