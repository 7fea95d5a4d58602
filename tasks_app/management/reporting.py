"""How commands print progress and results; shared so that run_goal and drive read the same."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import OutputWrapper
from django.core.management.color import Style

from agents.runner import TickOutcome
from agents.types import RunResult


def print_tick(out: OutputWrapper, style: Style, outcome: TickOutcome) -> None:
    if outcome.fenced:
        out.write(style.WARNING(f"  tick fenced: another worker owns task {outcome.task_id}; nothing written"))
    elif outcome.decision == "plan" and outcome.step_count:  # a plan that failed is an escalation, below
        out.write(f"  planned {outcome.step_count} steps")
    elif outcome.status == "waiting":
        what = f"{len(outcome.spawned)} sub-agents" if outcome.spawned else "a timer or a signal"
        out.write(f"  step {(outcome.step_index or 0) + 1}/{outcome.step_count} is waiting ({what})")
    elif outcome.decision == "step" and outcome.step_index is not None:
        reused = f" ({outcome.journal_hits} journaled calls reused)" if outcome.journal_hits else ""
        line = f"  step {outcome.step_index + 1}/{outcome.step_count} {outcome.step_title}: {outcome.output}{reused}"
        out.write(style.SUCCESS(line) if outcome.status != "requires_human" else style.ERROR(line))
    elif outcome.decision == "escalate" or outcome.status == "requires_human":
        out.write(style.ERROR("  escalated to a human"))


def print_result(out: OutputWrapper, style: Style, result: RunResult, *, as_json: bool = False) -> None:
    if as_json:
        out.write(json.dumps(result_json(result), indent=2, default=str))
        return
    colour = style.SUCCESS if result.status == "completed" else style.ERROR
    out.write(colour(f"task {result.task_id}: {result.status}" + (f" ({result.reason})" if result.reason else "")))
    done = sum(1 for s in result.steps if s.status == "completed")
    out.write(
        f"  steps completed: {done}/{len(result.steps)}, ticks this run: {result.ticks}, wall clock: {result.duration_s:.2f}s"
    )
    if result.checkpoint:
        out.write(f"  final checkpoint: #{result.checkpoint.seq} (through event {result.checkpoint.event_seq})")
    if result.result is not None:
        out.write(f"  result: {json.dumps(result.result)}")
    if result.status == "waiting":
        out.write(
            f"  it resumes by itself when due (celery-beat), or run `manage.py drive --task {result.task_id}` then;"
            f" `manage.py send_signal {result.task_id} NAME` delivers a signal"
        )


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "task_id": result.task_id,
        "status": result.status,
        "reason": result.reason,
        "result": result.result,
        "duration_s": round(result.duration_s, 4),
        "ticks": result.ticks,
        "checkpoint": result.checkpoint.__dict__ if result.checkpoint else None,
        "steps": [s.__dict__ for s in result.steps],
    }
