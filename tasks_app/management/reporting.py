"""How commands print progress and results; shared so that run_goal and drive read the same."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

from django.core.management.base import OutputWrapper
from django.core.management.color import Style

from agents.runner import TickOutcome
from agents.status import StepStatus, TaskStatus
from agents.types import RunResult
from tasks_app.conf import settings
from tasks_app.readable import manage_py
from tasks_app.selectors.approvals import approval_pending_ids


def print_tick(out: OutputWrapper, style: Style, outcome: TickOutcome) -> None:
    if outcome.fenced:
        out.write(style.WARNING(f"  tick fenced: another worker owns task {outcome.task_id}; nothing written"))
    elif outcome.decision == "plan" and outcome.step_count:  # a plan that failed is an escalation, below
        out.write(f"  planned {outcome.step_count} steps")
    elif outcome.status == TaskStatus.WAITING:
        what = f"{len(outcome.spawned)} sub-agents" if outcome.spawned else "a timer or a signal"
        out.write(f"  step {(outcome.step_index or 0) + 1}/{outcome.step_count} is waiting ({what})")
    elif outcome.decision == "step" and outcome.step_index is not None:
        where = f"  step {outcome.step_index + 1}/{outcome.step_count}"
        if not outcome.step_title and not outcome.output:
            # The step did not finish this tick: say what happened instead of a blank `step 2/3 : `.
            what = {
                TaskStatus.REQUIRES_HUMAN: "waits for a person (see below)",
                TaskStatus.FAILED: "failed",
                TaskStatus.CANCELLED: "cancelled",
                TaskStatus.PAUSED: "paused",
            }.get(outcome.status, "did not finish: it is retried or re-planned")
            alarming = outcome.status in (TaskStatus.REQUIRES_HUMAN, TaskStatus.FAILED)
            out.write((style.ERROR if alarming else style.WARNING)(f"{where} {what}"))
            return
        reused = f" ({outcome.journal_hits} journaled calls reused)" if outcome.journal_hits else ""
        line = f"{where} {outcome.step_title}: {outcome.output}{reused}"
        out.write(style.SUCCESS(line) if outcome.status != TaskStatus.REQUIRES_HUMAN else style.ERROR(line))
    elif outcome.decision == "escalate" or outcome.status == TaskStatus.REQUIRES_HUMAN:
        out.write(style.ERROR("  escalated to a human"))


def print_result(
    out: OutputWrapper,
    style: Style,
    result: RunResult,
    *,
    as_json: bool = False,
    drive: Callable[[str], str] | None = None,
) -> None:
    if as_json:
        out.write(json.dumps(result_json(result), indent=2, default=str))
        return
    colour = style.SUCCESS if result.status == TaskStatus.COMPLETED else style.ERROR
    out.write(colour(f"task {result.task_id}: {result.status}" + (f" ({result.reason})" if result.reason else "")))
    done = sum(1 for s in result.steps if s.status == StepStatus.COMPLETED)
    out.write(
        f"  steps completed: {done}/{len(result.steps)}, ticks this run: {result.ticks}, wall clock: {result.duration_s:.2f}s"
    )
    if result.checkpoint:
        out.write(f"  final checkpoint: #{result.checkpoint.seq} (through event {result.checkpoint.event_seq})")
    if result.result is not None:
        out.write(f"  result: {json.dumps(result.result)}")
    for line in next_steps(result.task_id, result.status, drive=drive or drive_command):
        out.write(line)


# Exit statuses of run_goal (and drive --task): a script can tell "done" from "a person or time is needed".
EXIT_COMPLETED = 0
EXIT_FAILED = 1  # failed, cancelled: nothing will continue it
EXIT_NOT_FINISHED = 3  # waiting for a person, a timer, a signal or a retry: the printed command continues it


def exit_status(status: str) -> int:
    if status == TaskStatus.COMPLETED:
        return EXIT_COMPLETED
    return EXIT_NOT_FINISHED if status in TaskStatus.ACTIVE else EXIT_FAILED


def drive_command(task_id: str, scenario: str | None = None) -> str:
    """The exact command that continues a task in this process (the same scenario, if one was given)."""
    return f"{manage_py()} drive --task {task_id}" + (f" --scenario {shlex.quote(scenario)}" if scenario else "")


def next_steps(task_id: str, status: str, *, drive: Callable[[str], str] = drive_command) -> list[str]:
    """What a person does next with a task that has not ended ([] when it has)."""
    if status not in TaskStatus.ACTIVE:
        return []
    celery = settings.HORIZON_DISPATCH == "celery"
    go_on = "the workers continue it" if celery else f"continue it with: {drive(task_id)}"
    if status == TaskStatus.REQUIRES_HUMAN:
        pending = approval_pending_ids(task_id=task_id)
        if pending:
            first = pending[0]
            return [
                f"  next: decide approval #{first} ({manage_py()} approvals --task {task_id}, or the inbox /admin/):",
                f"    {manage_py()} approve {first} --user YOU",
                f"    {manage_py()} reject {first} --user YOU --comment WHY",
                f"  then {go_on}",
            ]
        return [f"  next: read the reason above; retry with: {manage_py()} task_control resume {task_id}", f"  then {go_on}"]
    if status == TaskStatus.PAUSED:
        return [f"  next: {manage_py()} task_control resume {task_id}, then {go_on}"]
    if status == TaskStatus.WAITING:
        when = "celery-beat wakes it when due" if celery else f"when it is due, {go_on}"
        return [f"  next: {when}; {manage_py()} send_signal {task_id} NAME delivers a signal"]
    return [f"  next: {go_on}"]


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
