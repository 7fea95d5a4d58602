"""Agent profiles: named configurations chosen per goal.

A profile says how an agent behaves: its system prompt, which tools it may use, which model (and
fallback model) answers it, its budgets, its approval policy, and whether it reviews its own
work. Profiles come from code (`BUILTIN_PROFILES`) and from a JSON or YAML file named by the
HORIZON_PROFILES_FILE setting; `load_profiles` validates every field, so a typo stops start-up
instead of silently running with a default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from agents.errors import InvalidInput
from agents.tools.registry import RISK_LEVELS

APPROVAL_POLICIES = ("never", "planned", "always")
# never:   no step waits for a human before it runs;
# planned: a step waits when the planner marked it needs_approval;
# always:  every step waits.


@dataclass(frozen=True)
class AgentProfile:
    name: str
    system_prompt: str = ""  # added to the step executor's own instructions
    tools: tuple[str, ...] | None = None  # None: every registered tool
    model: str = ""  # empty: the endpoint's default model
    fallback_model: str = ""  # asked while the primary's circuit breaker is open
    llm_timeout: float = 0.0  # seconds per request; 0: the HORIZON_LLM_TIMEOUT setting
    llm_max_retries: int | None = None  # the SDK's own retries; None: the HORIZON_LLM_MAX_RETRIES setting
    # Budgets for the whole task; 0 means no limit. Exhausting one escalates to a human.
    max_tokens: int = 2_000_000
    max_cost_usd: float = 0.0
    # Step executions, re-runs and re-plans included. 0 by default: a plan is already bounded by the
    # task's max_steps and its re-plans by max_replans; set it to cap the total work of a task.
    max_steps: int = 0
    max_model_calls_per_step: int = 12
    # Prompt tokens a step's context may reach; past it, the older part of the step's conversation is
    # summarised (agents/compaction.py). 0: never compact.
    max_prompt_tokens: int = 100_000
    step_deadline_minutes: int = 0  # a step still current after this long escalates (0: no deadline)
    max_plan_repairs: int = 2  # repair prompts after a malformed plan before escalating
    approval_policy: str = "planned"
    # Tool risk levels ("read", "write", "external", "high") that need a person's approval. "high"
    # (run_python) is in it by default: code runs only after someone has read it.
    approval_risks: tuple[str, ...] = ("high",)
    self_review: bool = False  # check each step's result against its instructions before commit
    max_review_retries: int = 1
    drift_check_every: int = 0  # every N completed steps re-read the goal (0: never)
    replan_on_failure: bool = True  # a failed step asks for a revised plan instead of escalating
    # A step that fails for good (not re-planned) undoes the task's side effects (tools with an
    # undo) and fails the task, instead of escalating with the effects in place.
    compensate_on_failure: bool = False
    max_replans: int = 2


BUILTIN_PROFILES: dict[str, AgentProfile] = {
    "default": AgentProfile(name="default"),
    "careful": AgentProfile(
        name="careful",
        system_prompt="Work carefully: check each result before you report it.",
        approval_policy="planned",
        approval_risks=("external", "high"),
        self_review=True,
        drift_check_every=3,
    ),
}

_INT_FIELDS = {"max_tokens", "max_steps", "max_model_calls_per_step", "max_plan_repairs", "max_review_retries"}
_INT_FIELDS |= {"drift_check_every", "max_replans", "step_deadline_minutes", "max_prompt_tokens"}


def profile_from_json(name: str, data: Any) -> AgentProfile:
    """Build one profile from a mapping, refusing unknown keys and wrong types with a clear message."""
    if not isinstance(data, dict):
        raise InvalidInput(f"profile {name!r} must be a mapping")
    known = {f.name for f in fields(AgentProfile)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(f"profile {name!r} has unknown settings: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _INT_FIELDS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"profile {name!r}: {key} must be a non-negative integer")
        elif key in ("max_cost_usd", "llm_timeout"):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"profile {name!r}: {key} must be a non-negative number")
            value = float(value)
        elif key == "llm_max_retries":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 5):
                raise InvalidInput(f"profile {name!r}: llm_max_retries must be an integer from 0 to 5")
        elif key in ("self_review", "replan_on_failure", "compensate_on_failure"):
            if not isinstance(value, bool):
                raise InvalidInput(f"profile {name!r}: {key} must be true or false")
        elif key == "tools":
            if value is not None and (not isinstance(value, list) or not all(isinstance(t, str) for t in value)):
                raise InvalidInput(f"profile {name!r}: tools must be a list of tool names")
            value = tuple(value) if value is not None else None
        elif key == "approval_risks":
            if not isinstance(value, list) or not all(v in RISK_LEVELS for v in value):
                raise InvalidInput(f"profile {name!r}: approval_risks must be a list of {', '.join(RISK_LEVELS)}")
            value = tuple(value)
        elif key == "approval_policy":
            if value not in APPROVAL_POLICIES:
                raise InvalidInput(f"profile {name!r}: approval_policy must be one of {', '.join(APPROVAL_POLICIES)}")
        elif not isinstance(value, str):
            raise InvalidInput(f"profile {name!r}: {key} must be a string")
        values[key] = value
    if values.get("max_model_calls_per_step", 1) < 1:
        raise InvalidInput(f"profile {name!r}: max_model_calls_per_step must be at least 1")
    base = BUILTIN_PROFILES.get(name, AgentProfile(name=name))
    return replace(base, **values)


def profile_to_json(profile: AgentProfile) -> dict[str, Any]:
    """The profile as data: a task keeps the version it started with (see profile_from_snapshot)."""
    return {f.name: (list(v) if isinstance(v := getattr(profile, f.name), tuple) else v) for f in fields(AgentProfile)}


def profile_from_snapshot(data: dict[str, Any]) -> AgentProfile:
    """The profile a task started with. Settings added since then take their defaults; settings
    removed since then are ignored, so an old task keeps running after the code changes."""
    known = {f.name for f in fields(AgentProfile)}
    values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
    return AgentProfile(**values)


def load_profiles(configured: Any, *, tool_names: set[str] | None = None) -> dict[str, AgentProfile]:
    """The built-in profiles overlaid with the configured ones ({name: {setting: value}})."""
    profiles = dict(BUILTIN_PROFILES)
    if configured is None:
        configured = {}
    if not isinstance(configured, dict):
        raise InvalidInput("the profiles file must hold a mapping of profile names to settings")
    for name, data in configured.items():
        profiles[str(name)] = profile_from_json(str(name), data)
    if tool_names is not None:
        for profile in profiles.values():
            missing = sorted(set(profile.tools or ()) - tool_names)
            if missing:
                raise InvalidInput(f"profile {profile.name!r} names tools that are not registered: {', '.join(missing)}")
    return profiles
