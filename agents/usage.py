"""What model calls spent, and the task budgets they are checked against.

Every event that records model calls carries a `usage` payload in the shape `Spent.as_json`
returns; the reducer adds them up into the task state, which is what the budgets read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.errors import BudgetExhausted
from agents.json_value import as_object, as_scalar
from agents.types import JSON, LLMResponse

if TYPE_CHECKING:
    from agents.events import TaskState
    from agents.profiles import AgentProfile


@dataclass
class Spent:
    model_calls: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    child_steps: int = 0  # step runs of sub-agents whose usage this took on (agents/subtasks.py)

    @classmethod
    def of(cls, response: LLMResponse) -> Spent:
        spent = cls()
        spent.add(response)
        return spent

    def add(self, response: LLMResponse) -> None:
        self.model_calls += 1
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        self.cost_usd += response.cost_usd

    def merge(self, given: Spent | JSON) -> None:
        """Add a usage payload (or another Spent); None adds nothing."""
        usage = as_object(given.as_json() if isinstance(given, Spent) else given)
        if not usage:
            return
        self.model_calls += int(as_scalar(usage.get("model_calls", 0)))
        self.tool_calls += int(as_scalar(usage.get("tool_calls", 0)))
        self.prompt_tokens += int(as_scalar(usage.get("prompt_tokens", 0)))
        self.completion_tokens += int(as_scalar(usage.get("completion_tokens", 0)))
        self.cost_usd += float(as_scalar(usage.get("cost_usd", 0.0)))
        self.child_steps += int(as_scalar(usage.get("child_steps", 0)))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, JSON]:
        usage: dict[str, JSON] = {
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
        }
        if self.child_steps:  # only where sub-agents ran: other payloads keep their shape
            usage["child_steps"] = self.child_steps
        return usage


def budget_problem(profile: AgentProfile, state: TaskState, extra: Spent | None = None) -> str:
    """Why the task may not make another model call ("" when it may)."""
    extra = extra or Spent()
    tokens = state.prompt_tokens + state.completion_tokens + extra.tokens
    if profile.max_tokens and tokens >= profile.max_tokens:
        return f"token budget exhausted: {tokens} of {profile.max_tokens} tokens used"
    cost = state.cost_usd + extra.cost_usd
    if profile.max_cost_usd and cost >= profile.max_cost_usd:
        return f"cost budget exhausted: ${cost:.4f} of ${profile.max_cost_usd:.4f} spent"
    if profile.max_steps and state.steps_run >= profile.max_steps:
        return f"step budget exhausted: {state.steps_run} of {profile.max_steps} step runs used"
    return ""


def check_budget(profile: AgentProfile, state: TaskState, extra: Spent | None = None) -> None:
    if problem := budget_problem(profile, state, extra):
        raise BudgetExhausted(problem)
