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
    "with tools can execute one at a time, in order. Steps are numbered from 1: the first step is step 1. "
    "For each step give a title, instructions, the numbers of the earlier steps it depends on, the minutes "
    "you expect it to take, and whether a human must approve it before it runs (anything irreversible or "
    "external). Answer with JSON only, matching the schema."
)


class PlannedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS, description="A short name for the step, in a few words.")
    instructions: str = Field(
        default="", max_length=MAX_INSTRUCTIONS_CHARS, description="What the agent must do in this step, concretely."
    )
    depends_on: list[int] = Field(
        default_factory=list,
        description="The numbers of earlier steps that must be finished before this one starts. Steps are numbered "
        "from 1 (the first step is step 1); a step may name only steps that come before it. Empty when it needs none.",
    )
    expected_minutes: int | None = Field(
        default=None, ge=0, le=MAX_EXPECTED_MINUTES, description="How many minutes the step is expected to take, or null."
    )
    needs_approval: bool = Field(
        default=False, description="true when a person must approve the step before it runs (irreversible or external)."
    )


class PlanOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[PlannedStep] = Field(description="The steps in the order they run; at least one.")


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
    # Every number the model reads or writes is a 1-based step number (step N is index N - 1).
    done = f"Steps 1..{from_index} are done" if from_index > 1 else ("Step 1 is done" if from_index == 1 else "No step is done")
    lines = [goal_text(task), "", f"{done}; keep them and do not repeat them. The latest:"]
    lines += [f"{int(r['index']) + 1}. {r['title']}: {r['summary']}" for r in recent] or ["(none)"]
    if failed_title:
        lines += ["", f"Step {from_index + 1}, {failed_title!r}, could not be done: {reason}"]
    else:
        lines += ["", f"Why the plan is revised: {reason}"]
    lines += ["The old plan still had: " + "; ".join(remaining) if remaining else "The old plan had no steps left."]
    lines += [
        "",
        f"Plan the remaining work again, at most {max_steps} steps. The first new step is step {from_index + 1}; "
        "depends_on may name any earlier step by its number.",
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
    except (RecursionError, ValueError) as exc:  # nested thousands deep, or a number of thousands of digits
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise PlanInvalid(f"the plan is refused: {reason}", raw_output=content) from None
    try:
        plan = PlanOutput.model_validate(data)
    except ValidationError as exc:
        raise PlanInvalid(f"the plan does not match the schema: {_describe(exc)}", raw_output=content) from None
    if not plan.steps:
        raise PlanInvalid('the plan has no steps: give at least one step in "steps"', raw_output=content)
    if len(plan.steps) > max_steps:
        raise PlanInvalid(
            f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed here: merge steps", raw_output=content
        )
    if problem := _dependency_problem(plan, first_index):
        raise PlanInvalid(problem, raw_output=content)
    specs = []
    for i, step in enumerate(plan.steps):
        index = first_index + i
        if not step.title.strip():
            raise PlanInvalid(f"step {index + 1} has a blank title: give it a title", raw_output=content)
        specs.append(
            StepSpec(
                index=index,
                title=step.title.strip(),
                instructions=step.instructions,
                depends_on=tuple(sorted({d - 1 for d in step.depends_on})),  # step numbers to 0-based indexes
                expected_minutes=step.expected_minutes,
                needs_approval=step.needs_approval,
            )
        )
    return tuple(specs)


def _dependency_problem(plan: PlanOutput, first_index: int) -> str:
    """What is wrong with the plan's depends_on, worded as the fix ("" when nothing is).

    depends_on holds 1-based step numbers; step i of this plan is number first_index + i + 1."""
    numbers = {first_index + i + 1: step for i, step in enumerate(plan.steps)}
    if any(0 in step.depends_on for step in plan.steps):
        bad = [n for n, step in numbers.items() if 0 in step.depends_on]
        return (
            f"depends_on of step {bad[0]} names step 0, but steps are numbered from 1 (the first step is step 1): "
            "add 1 to every number in depends_on (for example [0] becomes [1])"
        )
    for n, step in numbers.items():
        negative = [d for d in step.depends_on if d < 0]
        if negative:
            return f"depends_on of step {n} names {negative[0]}: step numbers are 1 or more"
    cycle = _cycle(numbers)
    if cycle:
        chain = " -> ".join(f"step {c}" for c in cycle)
        return (
            f"depends_on forms a cycle ({chain}): a step may depend only on steps before it; "
            "order the steps so that each comes after the steps it needs, and remove the dependency that points forward"
        )
    last = max(numbers)
    for n, step in numbers.items():
        beyond = [d for d in step.depends_on if d > last]
        if beyond and n > first_index + 1:
            return (
                f"depends_on of step {n} names step {beyond[0]}, but the plan has only steps up to {last}: "
                f"name only steps 1..{n - 1} (the ones before step {n})"
            )
        later = [d for d in step.depends_on if d >= n]
        if later:
            what = "itself" if later[0] == n else f"step {later[0]}, which comes after it"
            return (
                f"step {n} depends on {what}: a step may depend only on steps 1..{n - 1} (the ones before it); "
                f"move the work of step {later[0]} before step {n} or remove {later[0]} from its depends_on"
                if n > 1
                else f"step 1 depends on {what}: the first step cannot depend on any step; make its depends_on []"
            )
    return ""


def _cycle(numbers: dict[int, PlannedStep]) -> list[int]:
    """A dependency cycle among the plan's own steps, as the step numbers along it (closed), or []."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done

    def visit(n: int, path: list[int]) -> list[int]:
        state[n] = 1
        for d in numbers[n].depends_on:
            if d not in numbers:
                continue
            if state.get(d) == 1:
                return [*path[path.index(d) :], d] if d in path else [n, d]
            if d not in state and (found := visit(d, [*path, d])):
                return found
        state[n] = 2
        return []

    for n in numbers:
        if n not in state and (found := visit(n, [n])):
            return found
    return []
