"""Planning: the request that asks the model for a plan, and the rules a plan must keep."""

from __future__ import annotations

import json
from typing import Any

from agents.errors import PlanInvalid
from agents.types import JSON, LLMRequest, StepSpec, TaskRecord

PLAN_SYSTEM_PROMPT = (
    "You are Horizon's planner. Break the goal into a short list of concrete steps that an agent "
    'with tools can execute one at a time. Answer with JSON only: {"steps": [{"title": str, '
    '"instructions": str, "depends_on": [earlier step indexes]}]}.'
)
MAX_TITLE_CHARS = 200
MAX_INSTRUCTIONS_CHARS = 4000


def plan_request(task: TaskRecord) -> LLMRequest:
    user = f"Goal: {task.goal}"
    if task.context:
        user += f"\nContext: {json.dumps(task.context, sort_keys=True)}"
    return LLMRequest(
        purpose="plan",
        messages=({"role": "system", "content": PLAN_SYSTEM_PROMPT}, {"role": "user", "content": user}),
    )


def parse_plan(content: str | None, *, max_steps: int) -> tuple[StepSpec, ...]:
    """Validate the model's plan. Raises PlanInvalid with a reason a person (or a repair prompt) can use."""
    if not content or not content.strip():
        raise PlanInvalid("the model returned an empty plan")
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise PlanInvalid(f"the plan is not valid JSON: {exc.msg} at position {exc.pos}") from None
    steps: JSON = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list) or not steps:
        raise PlanInvalid('the plan must be an object with a non-empty "steps" list')
    if len(steps) > max_steps:
        raise PlanInvalid(f"the plan has {len(steps)} steps; this task allows at most {max_steps}")
    specs = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise PlanInvalid(f"step {i} is not an object")
        title, instructions = step.get("title"), step.get("instructions", "")
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_CHARS:
            raise PlanInvalid(f"step {i} needs a title of 1 to {MAX_TITLE_CHARS} characters")
        if not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS_CHARS:
            raise PlanInvalid(f"step {i} instructions must be a string of at most {MAX_INSTRUCTIONS_CHARS} characters")
        deps = step.get("depends_on", [])
        if not isinstance(deps, list) or not all(isinstance(d, int) and 0 <= d < i for d in deps):
            raise PlanInvalid(f"step {i} may depend only on earlier steps (indexes 0..{i - 1})")
        specs.append(StepSpec(index=i, title=title.strip(), instructions=instructions, depends_on=tuple(deps)))
    return tuple(specs)
