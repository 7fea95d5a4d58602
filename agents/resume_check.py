"""The deploy gate: what this build would do with a recorded task, without calling a model or a tool.

Each recorded task gets one verdict (docs/deploys.md):

- "verbatim": the current code asks every recorded request exactly as recorded and decides the same;
- "changed": it continues from the recorded answers, but renders some requests differently (an
  edited prompt, tool description, tool list or schema), or decides differently after them: a
  resume records `code.changed` and goes on;
- "escalate": the history cannot be honoured, and a resume would stop for a person: a recorded call
  of the unfinished step to a tool this build does not have, a recorded answer this code cannot
  read, or a journal key recorded for another tool than the recorded conversation now calls.

The replay is agents.regression's, with recorded answers reused under changed requests (as the
journal does on resume); the checks that need no replay come first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.events import rebuild
from agents.json_value import as_object
from agents.regression import RegressionReport, RunnerFactory, default_runner_factory, regress
from agents.status import JournalStatus, TaskStatus
from agents.store import TaskReads
from agents.tools.control import CONTROL_TOOLS
from agents.tools.registry import ToolRegistry
from agents.types import JSON, JournalEntry, LLMResponse

VERBATIM, CHANGED, ESCALATE = "verbatim", "changed", "escalate"


@dataclass(frozen=True)
class ResumeVerdict:
    task_id: str
    status: str  # the recorded task's status
    verdict: str  # VERBATIM, CHANGED or ESCALATE
    reason: str = ""
    changes: list[dict[str, JSON]] = field(default_factory=list)
    report: RegressionReport | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "verdict": self.verdict,
            "reason": self.reason,
            "changes": list(self.changes),
            "replay": self.report.to_json() if self.report else None,
        }


def _unfinished_prefix(store: TaskReads, task_id: str) -> str | None:
    """The journal key prefix of the step a resume would replay (None: the task has ended)."""
    task = store.get_task(task_id)
    if task.status in TaskStatus.TERMINAL:
        return None
    checkpoint = store.latest_checkpoint(task_id)
    state = rebuild(checkpoint, store.events(task_id, after_seq=checkpoint.event_seq if checkpoint else 0))
    return f"{task_id}/p1/plan" if state.plan_version == 0 else f"{task_id}/p{state.plan_version}/s{state.next_step}"


def _in_scope(key: str, prefix: str) -> bool:
    rest = key[len(prefix) :] if key.startswith(prefix) else None
    return rest is not None and (rest == "" or not rest[0].isdigit())  # s1 is not s12


def unhonourable(entries: list[JournalEntry], tools: ToolRegistry, control: ToolRegistry, prefix: str | None) -> str:
    """Why a resume of this history would escalate ("" when it would not)."""
    for entry in entries:
        if entry.kind == "llm" and entry.status == JournalStatus.COMPLETED:
            try:
                LLMResponse.from_json(as_object(entry.result))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                return f"the model answer recorded under {entry.key} cannot be read by this build: {exc!r}"
        if prefix is None or entry.kind != "tool" or not _in_scope(entry.key, prefix):
            continue
        name = entry.name.removesuffix(".undo")
        if tools.get(name) is None and not (name in CONTROL_TOOLS and control.get(name) is not None):
            return f"the recorded call {entry.key} to tool {name!r} cannot be honoured: this build has no tool {name!r}"
    return ""


def resume_verdict(
    store: TaskReads,
    task_id: str,
    *,
    tools: ToolRegistry,
    control: ToolRegistry,
    runner_factory: RunnerFactory = default_runner_factory,
) -> ResumeVerdict:
    """The verdict of the current code (its `tools`, the runner `runner_factory` builds) on a recorded task."""
    task = store.get_task(task_id)
    problem = unhonourable(store.journal_entries(task_id), tools, control, _unfinished_prefix(store, task_id))
    if problem:
        return ResumeVerdict(task_id, task.status, ESCALATE, problem)
    report = regress(store, task_id, tools=tools, runner_factory=runner_factory, tolerate_changes=True)
    divergence = report.divergence
    # A tool call recorded under the key with another tool or other arguments is not this call: the
    # gate errs on the side of a person (a resume refuses another tool; other arguments are a bug).
    if divergence is not None and divergence.kind == "tool_call" and "differs" in divergence.message:
        return ResumeVerdict(task_id, task.status, ESCALATE, divergence.message, report.changes, report)
    if divergence is not None:
        return ResumeVerdict(task_id, task.status, CHANGED, divergence.message, report.changes, report)
    if report.changes:
        reason = f"{len(report.changes)} recorded request(s) render differently, first at {report.changes[0]['key']}"
        return ResumeVerdict(task_id, task.status, CHANGED, reason, report.changes, report)
    return ResumeVerdict(task_id, task.status, VERBATIM, "", [], report)
