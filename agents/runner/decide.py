"""What the next tick does: a pure function of the rebuilt state, the attempt counter and the profile."""

from __future__ import annotations

from dataclasses import dataclass

from agents.events import TaskState
from agents.profiles import AgentProfile
from agents.status import TaskStatus
from agents.usage import budget_problem


@dataclass(frozen=True)
class Decision:
    kind: str  # "plan", "step", "complete", "escalate", "none"
    step_index: int | None = None
    reason: str = ""


def decide(state: TaskState, *, step_attempts: int, max_attempts: int, profile: AgentProfile | None = None) -> Decision:
    """What the next tick does; a pure function of the rebuilt state, the attempt counter and the profile."""
    if state.status in TaskStatus.TERMINAL or state.status == TaskStatus.REQUIRES_HUMAN:
        return Decision("none")
    unit = "planning" if state.plan_version == 0 else f"step {state.next_step + 1}"
    if step_attempts > max_attempts:
        # The broker does not count redeliveries, so the database does: each claim increments the
        # counter and each commit resets it. A unit that keeps killing its worker stops here.
        return Decision("escalate", reason=f"{unit} was attempted {max_attempts} times without finishing")
    pending_step = state.plan_version and state.next_step < state.step_count
    if profile is not None and pending_step and (problem := budget_problem(profile, state)):
        return Decision("escalate", reason=problem)
    if state.plan_version == 0:
        return Decision("plan")
    if state.next_step < state.step_count:
        return Decision("step", step_index=state.next_step)
    return Decision("complete")
