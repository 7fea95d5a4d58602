"""The offline scripted model: replays a scenario file, for the demo and for tests.

A scenario is JSON:

    {
      "name": "tenant-onboarding",
      "plan": [{"title": "...", "instructions": "...", "depends_on": []}, ...],
      "steps": {
        "0": [{"tool": "write_file", "arguments": {"path": "a.txt", "content": "..."}},
              {"final": "what the step produced"}],
        "1": [{"final": "..."}]
      },
      "default_step": [{"final": "done: {title}"}],
      "replan": [{"title": "...", "instructions": "..."}],          (optional; default: "plan" again)
      "verdicts": [{"approved": false, "critique": "..."}, ...]     (optional; default: approve)
      "goals": {"text in the goal": {"plan": [...], "steps": {...}}}   (optional)
    }

"goals" gives tasks whose goal contains a text their own plan and steps (a scenario of their
own, validated the same way): a parent and the sub-agents it spawns can follow different scripts.

Review and drift requests are answered with the "verdicts" in order, then with approval: one queue
per task goal (a "goals" entry's own verdicts for its goals), so that the tasks one worker runs at
once, in threads, each get their own script's verdicts.
Summarisation requests (context compaction) get a deterministic summary of the conversation.

The answer to a step request is chosen by the step index and by how many tool results the
conversation already holds, so the model is stateless: a resumed step gets the same answers.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from agents import boundary
from agents.compaction import SUMMARY_PURPOSE, summarise_offline, tool_results_seen
from agents.errors import ScenarioError
from agents.types import LLMRequest, LLMResponse, ToolCall, Usage

BUNDLED = Path(__file__).parent / "scenarios"
DEFAULT_SCENARIO = BUNDLED / "tenant_onboarding.json"


def _check_action(where: str, action: Any) -> None:
    if not isinstance(action, dict):
        raise ScenarioError(f"{where}: an action must be an object, got {type(action).__name__}")
    if "final" in action:
        if not isinstance(action["final"], str):
            raise ScenarioError(f"{where}: 'final' must be a string")
    elif "tool" in action:
        if not isinstance(action["tool"], str) or not isinstance(action.get("arguments", {}), dict):
            raise ScenarioError(f"{where}: a tool action needs a string 'tool' and an object 'arguments'")
    else:
        raise ScenarioError(f"{where}: an action needs 'final' or 'tool'")


def validate_scenario(data: Any, source: str = "scenario") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be an object")
    plan = data.get("plan")
    if not isinstance(plan, list) or not plan:
        raise ScenarioError(f"{source}: 'plan' must be a non-empty list of steps")
    for i, step in enumerate(plan):
        if not isinstance(step, dict) or not isinstance(step.get("title"), str) or not step["title"].strip():
            raise ScenarioError(f"{source}: plan[{i}] needs a non-empty 'title'")
        if not isinstance(step.get("instructions", ""), str):
            raise ScenarioError(f"{source}: plan[{i}].instructions must be a string")
    steps = data.get("steps", {})
    if not isinstance(steps, dict):
        raise ScenarioError(f"{source}: 'steps' must be an object keyed by step index")
    for key, actions in steps.items():
        if not str(key).isdigit():
            raise ScenarioError(f"{source}: steps key {key!r} is not a step index")
        if not isinstance(actions, list) or not actions:
            raise ScenarioError(f"{source}: steps[{key}] must be a non-empty list of actions")
        for j, action in enumerate(actions):
            _check_action(f"{source}: steps[{key}][{j}]", action)
        if "final" not in actions[-1]:
            raise ScenarioError(f"{source}: steps[{key}] must end with a 'final' action")
    default = data.get("default_step", [{"final": "Done: {title}"}])
    if not isinstance(default, list) or not default or "final" not in default[-1]:
        raise ScenarioError(f"{source}: 'default_step' must be a list of actions ending with 'final'")
    for j, action in enumerate(default):
        _check_action(f"{source}: default_step[{j}]", action)
    replan = data.get("replan", plan)
    if not isinstance(replan, list) or not replan:
        raise ScenarioError(f"{source}: 'replan' must be a non-empty list of steps")
    verdicts = data.get("verdicts", [])
    if not isinstance(verdicts, list) or not all(isinstance(v, dict) and isinstance(v.get("approved"), bool) for v in verdicts):
        raise ScenarioError(f"{source}: 'verdicts' must be a list of objects with a boolean 'approved'")
    goals = data.get("goals", {})
    if not isinstance(goals, dict):
        raise ScenarioError(f"{source}: 'goals' must be an object mapping a text in the goal to a scenario")
    by_goal = {str(needle): validate_scenario(sub, f"{source}: goals[{needle!r}]") for needle, sub in goals.items()}
    return {
        "goals": by_goal,
        "name": str(data.get("name", Path(source).stem)),
        "plan": plan,
        "steps": steps,
        "default_step": default,
        "replan": replan,
        "verdicts": verdicts,
    }


def load_scenario(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    name = boundary.shown(str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {name}: {exc.strerror or exc}") from None
    try:  # checked like any input (agents/boundary.py): UTF-8, no NUL, no absurd nesting or numbers
        data = boundary.loads(boundary.decode(raw, f"scenario {name}"), f"scenario {name}")
    except boundary.BoundaryError as exc:
        raise ScenarioError(str(exc)) from None
    return validate_scenario(data, str(path))


def _tokens(text: str) -> int:
    # A rough count (4 characters a token) is enough for an offline model's usage figures.
    return max(1, len(text) // 4)


class ScriptedModel:
    """Answers plan and step requests from a scenario; never touches the network."""

    offline = True

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.name = f"scripted:{scenario['name']}"
        self.requests = 0  # how many requests this instance answered (tests use it)
        # Verdicts still to hand out, per goal; a worker's threads share this instance.
        self._verdicts: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_SCENARIO) -> ScriptedModel:
        return cls(load_scenario(path))

    @staticmethod
    def _goal(request: LLMRequest) -> str:
        asked = next((str(m.get("content") or "") for m in request.messages if m.get("role") == "user"), "")
        return asked.partition("Goal: ")[2].partition("\n")[0]

    def _next_verdict(self, request: LLMRequest, scenario: dict[str, Any]) -> dict[str, Any]:
        goal = self._goal(request)
        with self._lock:
            queue = self._verdicts.setdefault(goal, list(scenario.get("verdicts", [])))
            return queue.pop(0) if queue else {"approved": True, "critique": ""}

    def _for_goal(self, request: LLMRequest) -> dict[str, Any]:
        """The scenario for the request's task: the first "goals" entry its goal contains, else the main one."""
        goals = self.scenario.get("goals") or {}
        if goals:
            goal = self._goal(request)
            for needle, sub in goals.items():
                if needle in goal:
                    return dict(sub)
        return self.scenario

    def complete(self, request: LLMRequest) -> LLMResponse:
        with self._lock:
            self.requests += 1
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) for m in request.messages)
        scenario = self._for_goal(request)
        if request.purpose in ("plan", "replan"):
            content = json.dumps({"steps": scenario[request.purpose]})
            return LLMResponse(content=content, usage=Usage(prompt_tokens, _tokens(content)), model=self.name)
        if request.purpose == SUMMARY_PURPOSE:
            content = summarise_offline(request)
            return LLMResponse(content=content, usage=Usage(prompt_tokens, _tokens(content)), model=self.name)
        if request.purpose in ("review", "drift"):
            # Handed out in order, one per request: the journal makes sure a verdict already given
            # is replayed from its record rather than asked for again.
            verdict = self._next_verdict(request, scenario)
            content = json.dumps({"approved": verdict["approved"], "critique": verdict.get("critique", "")})
            return LLMResponse(content=content, usage=Usage(prompt_tokens, _tokens(content)), model=self.name)
        index = request.step_index if request.step_index is not None else 0
        actions = scenario["steps"].get(str(index), scenario["default_step"])
        turn = tool_results_seen(request.messages)  # a compacted prompt says how many it summarised
        # Several tool actions in a row are answered one per turn; the final action ends the step.
        action = actions[min(turn, len(actions) - 1)]
        if "tool" in action:
            call = ToolCall(name=action["tool"], arguments=dict(action.get("arguments", {})), call_id=f"call_{index}_{turn}")
            return LLMResponse(
                content=None,
                tool_calls=(call,),
                finish_reason="tool_calls",
                usage=Usage(prompt_tokens, _tokens(json.dumps(call.arguments))),
                model=self.name,
            )
        content = action["final"].replace("{title}", request.step_title).replace("{index}", str(index))
        return LLMResponse(content=content, usage=Usage(prompt_tokens, _tokens(content)), model=self.name)
