"""Self-review and drift checks: the model judges a step's result, or the work so far, against the goal.

Both ask for the same structured verdict. A rejected step result is retried with the critique; a
drift verdict that says the work left the goal triggers a re-plan of the remaining steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from agents.canonical import canonical_text
from agents.errors import ReviewRejected as ReviewRejected  # re-exported: defined in agents.errors
from agents.events import TaskState
from agents.json_value import as_scalar
from agents.planner import strict_schema
from agents.types import JSON, LLMRequest, LLMResponse, StepRecord, TaskRecord

REVIEW_SYSTEM_PROMPT = (
    "You review the work of an agent. Judge whether the result does what the step's instructions ask, "
    "in service of the goal. Approve it, or reject it with a short, concrete critique the agent can act on. "
    "Answer with JSON only, matching the schema."
)
DRIFT_SYSTEM_PROMPT = (
    "You check that a long-running agent is still working towards its goal. Read the goal and the recent "
    "steps. Approve if the work is on track; otherwise reject with what has drifted, so the rest can be "
    "re-planned. Answer with JSON only, matching the schema."
)
MAX_REVIEWED_CHARS = 20_000


class VerdictOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: bool
    critique: str


VERDICT_SCHEMA: dict[str, JSON] = {
    "name": "verdict",
    "schema": strict_schema(VerdictOutput.model_json_schema()),
    "strict": True,
}


@dataclass(frozen=True)
class Verdict:
    approved: bool
    critique: str


def review_request(task: TaskRecord, step: StepRecord, output: str) -> LLMRequest:
    user = (
        f"Goal: {task.goal}\nStep {step.index + 1}: {step.title}\nInstructions: {step.instructions or '(none)'}\n\n"
        f"Result to review:\n{output[:MAX_REVIEWED_CHARS]}"
    )
    return _verdict_request("review", REVIEW_SYSTEM_PROMPT, user, step)


def drift_request(task: TaskRecord, state: TaskState, step: StepRecord) -> LLMRequest:
    recent = "\n".join(f"- step {int(as_scalar(r['index'])) + 1} ({r['title']}): {r['summary']}" for r in state.recent)
    user = (
        f"Goal: {task.goal}\nContext: {canonical_text(task.context)}\n"
        f"Steps done: {step.index + 1} of {state.step_count}. The most recent:\n{recent or '(none)'}"
    )
    return _verdict_request("drift", DRIFT_SYSTEM_PROMPT, user, step)


def _verdict_request(purpose: str, system: str, user: str, step: StepRecord) -> LLMRequest:
    return LLMRequest(
        purpose=purpose,
        messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
        step_index=step.index,
        step_title=step.title,
        response_schema=VERDICT_SCHEMA,
    )


def parse_verdict(response: LLMResponse) -> Verdict:
    if response.refusal:
        raise ReviewRejected(f"the reviewer refused: {response.refusal[:500]}")
    try:
        verdict = VerdictOutput.model_validate_json(response.content or "")
    except ValidationError as exc:
        raise ReviewRejected(f"the reviewer's verdict is not valid JSON of the schema: {exc.errors()[0]['msg']}") from None
    return Verdict(approved=verdict.approved, critique=verdict.critique.strip())
