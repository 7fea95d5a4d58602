"""What the timeline shows about steps: every plan version, and per step its timings, usage and tool calls.

Step rows hold only the current plan (a re-plan deletes the rows it replaces), so earlier versions are
rebuilt from the plan events, and what a step did from the journal: its model answers carry the tool
calls asked for (name, arguments) and its tool entries the results. A call that never reached a tool
(rejected by a person, unknown, invalid) has no tool entry; the step's transcript holds its error.
Steps are numbered from 1 here, as on every surface; `index` stays 0-based, as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse

from agents.status import StepStatus
from tasks_app.models import AgentTask, Approval, Event, JournalEntry, Step
from tasks_app.readable import (
    arguments_code,
    duration_text,
    json_or_text,
    step_number,
    step_result_text,
    value_text,
    when_text,
)

_SCOPE = re.compile(r"/p(\d+)/s(\d+)/")  # journal keys: task/p<plan version>/s<index>/c<call>
_CALL = re.compile(r"/c(\d+)$")
NOT_RUN = "not run (yet): waiting for a decision or the step's next attempt"

Scope = tuple[int, int]  # (plan version, step index)


def _result_text(result: Any) -> tuple[bool, str]:
    """(ok, text) of a tool's recorded result {"ok": bool, "output"|"error": ...}."""
    result = json_or_text(result)
    if isinstance(result, dict) and "ok" in result:
        ok = bool(result["ok"])
        return ok, value_text(result.get("output") if ok else result.get("error"))
    return True, value_text(result)


@dataclass
class StepCalls:
    """One step's model usage and tool calls, built from its journal entries in call order."""

    reused: int = 0  # the step's last completion reused this many journaled calls (its first ones)
    errors: dict[Any, Any] = field(default_factory=dict)  # transcript: tool_call_id -> what the model was told
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    _asked: list[dict[str, Any]] = field(default_factory=list)  # asked for by the last answer, no result yet

    def model_answer(self, result: dict[str, Any]) -> None:
        self.settle()
        self.model_calls += 1
        tokens = result.get("usage") or {}
        self.prompt_tokens += int(tokens.get("prompt_tokens") or 0)
        self.completion_tokens += int(tokens.get("completion_tokens") or 0)
        self.cost_usd += float(result.get("cost_usd") or 0.0)
        for call in result.get("tool_calls") or []:
            if isinstance(call, dict):
                asked = {"name": call.get("name", "?"), "call_id": call.get("call_id")}
                self._asked.append({**asked, "arguments": arguments_code(json_or_text(call.get("arguments")))})

    def tool_result(self, entry: JournalEntry, position: int, decided: Approval | None) -> None:
        call = next((c for c in self._asked if c["name"] == entry.name), None)
        if call is not None:
            self._asked.remove(call)
        arguments = call["arguments"] if call else ""
        if decided is not None and decided.edited_arguments is not None:
            # What ran is what the person edited, not what the model asked for.
            who = decided.decided_by.get_username() if decided.decided_by else "a person"
            arguments = f"{arguments_code(decided.edited_arguments)}\n(edited by {who}; the model asked for:\n{arguments})"
        finished = entry.status == JournalEntry.Status.COMPLETED
        ok, text = _result_text(entry.result) if finished else (False, "started; no result recorded")
        took = entry.completed_at - entry.created_at if entry.completed_at and entry.created_at else None
        self.calls.append(
            {
                "name": entry.name,
                "arguments": arguments,
                "ok": ok,
                "output": text,
                "duration": duration_text(took) if took is not None else "—",
                # A resumed step replays its calls in order: its first `reused` ones came from the journal.
                "from_journal": position < self.reused,
                "ran": True,
            }
        )

    def settle(self) -> None:
        """Calls asked for that reached no tool: what the model was told instead, or that they wait."""
        for call in self._asked:
            told = self.errors.get(call["call_id"])
            ok, text = _result_text(told) if told is not None else (False, NOT_RUN)
            self.calls.append({**call, "ok": ok, "output": text, "duration": "—", "from_journal": False, "ran": False})
        self._asked = []


@dataclass
class PlanHistory:
    """The plan events walked once: every version's steps, each step's outcome and journal reuse."""

    planned: dict[Scope, dict[str, Any]] = field(default_factory=dict)
    outcome: dict[Scope, tuple[str, str]] = field(default_factory=dict)
    reused: dict[Scope, int] = field(default_factory=dict)
    plans: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, task: AgentTask) -> PlanHistory:
        history = cls()
        version = 0
        kinds = ("plan.created", "plan.revised", "step.completed", "step.failed")
        for e in Event.objects.filter(task=task, type__in=kinds).order_by("seq"):
            p = e.payload if isinstance(e.payload, dict) else {}
            if e.type in ("plan.created", "plan.revised"):
                version = int(p.get("version") or version + 1)
                history._plan(version, p, e.created_at)
            elif isinstance(p.get("index"), int):
                scope = (version, p["index"])
                while scope not in history.planned and scope[0] > 1:  # kept from the version it was planned in
                    scope = (scope[0] - 1, scope[1])
                failed = e.type == "step.failed"
                history.outcome[scope] = (
                    (StepStatus.FAILED, p.get("error", "")) if failed else (StepStatus.COMPLETED, value_text(p.get("output")))
                )
                if not failed:
                    history.reused[scope] = int(p.get("journal_hits") or 0)
        return history

    def _plan(self, version: int, p: dict[str, Any], when: datetime | None) -> None:
        start = p.get("from_index") if isinstance(p.get("from_index"), int) else None
        steps = p.get("steps") or []
        self.plans.append(
            {
                "version": version,
                "from": step_number(start) if start is not None else "",
                "reason": p.get("reason", ""),
                "steps": len(steps),
                "when": when_text(when),
            }
        )
        for s in steps:
            if isinstance(s, dict) and isinstance(s.get("index"), int):
                self.planned[(version, s["index"])] = s


def _calls_by_scope(task: AgentTask, steps: list[Step], history: PlanHistory) -> dict[Scope, StepCalls]:
    transcripts = {(s.plan_version, s.index): s.transcript or [] for s in steps}
    approvals = {a.key: a for a in Approval.objects.filter(task=task, kind="tool").select_related("decided_by")}
    found: dict[Scope, list[JournalEntry]] = {}
    for entry in JournalEntry.objects.filter(task=task).order_by("id"):
        if match := _SCOPE.search(entry.key):
            found.setdefault((int(match.group(1)), int(match.group(2))), []).append(entry)
    result: dict[Scope, StepCalls] = {}
    for scope, entries in found.items():
        told = {
            m.get("tool_call_id"): m.get("content")
            for m in transcripts.get(scope, [])
            if isinstance(m, dict) and m.get("role") == "tool"
        }
        calls = result[scope] = StepCalls(reused=history.reused.get(scope, 0), errors=told)
        for position, entry in enumerate(sorted(entries, key=lambda e: int(m.group(1)) if (m := _CALL.search(e.key)) else 0)):
            if entry.kind == "llm":
                calls.model_answer(entry.result if isinstance(entry.result, dict) else {})
            elif entry.kind == "tool":
                calls.tool_result(entry, position, approvals.get(entry.key))
        calls.settle()
    return result


def timeline_steps(task: AgentTask) -> dict[str, Any]:
    """{"steps": the current plan's steps, "earlier": steps of earlier plan versions no longer in it, "plans": versions}."""
    steps = list(Step.objects.filter(task=task).order_by("index"))
    history = PlanHistory.of(task)
    calls = _calls_by_scope(task, steps, history)
    current = {(s.plan_version, s.index) for s in steps}
    earlier = [
        _earlier_row(scope, s, history, calls.get(scope, StepCalls()))
        for scope, s in sorted(history.planned.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        if scope not in current
    ]
    rows = [_step_row(task, s, calls.get((s.plan_version, s.index), StepCalls())) for s in steps]
    return {"steps": rows, "earlier": earlier, "plans": history.plans}


def _step_row(task: AgentTask, s: Step, u: StepCalls) -> dict[str, Any]:
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
        "started_at": when_text(s.started_at),  # the first start: a resumed step keeps it (tasks_app/store/)
        "finished_at": when_text(s.finished_at),
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


def _earlier_row(scope: Scope, s: dict[str, Any], history: PlanHistory, u: StepCalls) -> dict[str, Any]:
    status, text = history.outcome.get(scope, ("superseded", ""))
    return {
        "number": scope[1] + 1,
        "plan_version": scope[0],
        "title": s.get("title", ""),
        "instructions": s.get("instructions", ""),
        "status": status,
        "note": text,
        "tokens": u.prompt_tokens + u.completion_tokens,
        "cost_usd": f"{u.cost_usd:.4f}",
        "tool_calls": u.calls,
    }
