"""Planning: the structured-output request for a plan, its validation, repair prompts and re-plans.

The plan's shape is a pydantic model; its JSON schema goes to the model as `response_format`
(structured output), and the same model validates the answer, so what we ask for and what we
accept cannot drift apart. A malformed or invalid answer gets a repair prompt naming the problem;
the runner stops after the profile's repair limit and escalates with the raw output attached.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.canonical import canonical_text
from agents.errors import PlanInvalid
from agents.types import JSON, LLMRequest, LLMResponse, StepSpec, TaskRecord

MAX_TITLE_CHARS = 200
MAX_INSTRUCTIONS_CHARS = 4000
MAX_EXPECTED_MINUTES = 60 * 24 * 365
RAW_OUTPUT_MAX_CHARS = 20_000  # what a repair prompt quotes back and an escalation keeps

PLAN_SYSTEM_PROMPT = (
    "You are Horizon's planner. Break the goal into a short list of concrete steps that an agent "
    "with tools can execute one at a time, in order. For each step give a title, instructions, the "
    "indexes of earlier steps it depends on, the minutes you expect it to take, and whether a human "
    "must approve it before it runs (anything irreversible or external). Answer with JSON only, "
    "matching the schema."
)


class PlannedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    instructions: str = Field(default="", max_length=MAX_INSTRUCTIONS_CHARS)
    depends_on: list[int] = Field(default_factory=list)
    expected_minutes: int | None = Field(default=None, ge=0, le=MAX_EXPECTED_MINUTES)
    needs_approval: bool = False


class PlanOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[PlannedStep] = Field(min_length=1)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's strict structured output wants every property required; optional ones stay nullable."""
    for definition in [schema, *schema.get("$defs", {}).values()]:
        if definition.get("type") == "object":
            definition["required"] = list(definition.get("properties", {}))
            definition["additionalProperties"] = False
            for prop in definition.get("properties", {}).values():
                prop.pop("default", None)
    return schema


PLAN_SCHEMA: dict[str, JSON] = {"name": "plan", "schema": strict_schema(PlanOutput.model_json_schema()), "strict": True}


def goal_text(task: TaskRecord) -> str:
    text = f"Goal: {task.goal}"
    if task.context:
        text += f"\nContext: {canonical_text(task.context)}"
    return text


def plan_request(task: TaskRecord, *, max_steps: int) -> LLMRequest:
    return LLMRequest(
        purpose="plan",
        messages=(
            {"role": "system", "content": PLAN_SYSTEM_PROMPT},
            {"role": "user", "content": f"{goal_text(task)}\nUse at most {max_steps} steps."},
        ),
        response_schema=PLAN_SCHEMA,
    )


def replan_request(
    task: TaskRecord,
    *,
    recent: list[dict[str, Any]],
    from_index: int,
    failed_title: str,
    reason: str,
    remaining: list[str],
    max_steps: int,
) -> LLMRequest:
    """Ask for the steps that replace step `from_index` and everything after it.

    `failed_title` names the step that failed (a re-plan after a failure); empty for a drift re-plan.
    """
    lines = [goal_text(task), "", f"Steps 0..{from_index - 1} are done; keep them and do not repeat them. The latest:"]
    lines += [f"{r['index']}. {r['title']}: {r['summary']}" for r in recent] or ["(none)"]
    if failed_title:
        lines += ["", f"Step {from_index}, {failed_title!r}, could not be done: {reason}"]
    else:
        lines += ["", f"Why the plan is revised: {reason}"]
    lines += ["The old plan still had: " + "; ".join(remaining) if remaining else "The old plan had no steps left."]
    lines += [
        "",
        f"Plan the remaining work again, at most {max_steps} steps. The first new step gets index {from_index}; "
        "depends_on may name any earlier index.",
    ]
    return LLMRequest(
        purpose="replan",
        messages=({"role": "system", "content": PLAN_SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}),
        response_schema=PLAN_SCHEMA,
    )


def repair_request(request: LLMRequest, response: LLMResponse, problem: PlanInvalid) -> LLMRequest:
    """The same conversation plus the bad answer and what was wrong with it."""
    bad = (response.content or "")[:RAW_OUTPUT_MAX_CHARS]
    return LLMRequest(
        purpose=request.purpose,
        messages=(
            *request.messages,
            {"role": "assistant", "content": bad},
            {
                "role": "user",
                "content": f"That plan cannot be used: {problem}. Answer again with the whole plan as JSON only, "
                "matching the schema.",
            },
        ),
        response_schema=request.response_schema,
    )


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "the plan"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_plan(response: LLMResponse | str | None, *, max_steps: int, first_index: int = 0) -> tuple[StepSpec, ...]:
    """Validate the model's plan. Raises PlanInvalid with a reason a person (or a repair prompt) can use."""
    if isinstance(response, LLMResponse):
        if response.refusal:
            raise PlanInvalid(f"the model refused to plan: {response.refusal[:500]}", raw_output=response.refusal)
        if response.finish_reason == "length":
            raise PlanInvalid(
                "the plan was cut off at the output token limit (finish_reason length)", raw_output=response.content
            )
        content = response.content
    else:
        content = response
    if not content or not content.strip():
        raise PlanInvalid("the model returned an empty plan", raw_output=content)
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise PlanInvalid(f"the plan is not valid JSON: {exc.msg} at position {exc.pos}", raw_output=content) from None
    try:
        plan = PlanOutput.model_validate(data)
    except ValidationError as exc:
        raise PlanInvalid(f"the plan does not match the schema: {_describe(exc)}", raw_output=content) from None
    if len(plan.steps) > max_steps:
        raise PlanInvalid(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed here", raw_output=content)
    specs = []
    for i, step in enumerate(plan.steps):
        index = first_index + i
        if not step.title.strip():
            raise PlanInvalid(f"step {index} has a blank title", raw_output=content)
        if not all(0 <= d < index for d in step.depends_on):
            raise PlanInvalid(f"step {index} may depend only on earlier steps (indexes 0..{index - 1})", raw_output=content)
        specs.append(
            StepSpec(
                index=index,
                title=step.title.strip(),
                instructions=step.instructions,
                depends_on=tuple(step.depends_on),
                expected_minutes=step.expected_minutes,
                needs_approval=step.needs_approval,
            )
        )
    return tuple(specs)
