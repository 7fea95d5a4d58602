"""Plans real models get right (issue 15, item 5): 1-based step numbers, repair prompts that name the
fix, depends_on enforced at run time and kept across re-plans."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agents.errors import PlanInvalid
from agents.inmemory_store import InMemoryStore
from agents.planner import PLAN_SCHEMA, parse_plan
from agents.profiles import AgentProfile
from agents.runner import Runner
from tests.support.queue_model import QueueModel, final


def plan_of(*depends: list[int]) -> str:
    return json.dumps({"steps": [{"title": f"t{i + 1}", "instructions": "x", "depends_on": d} for i, d in enumerate(depends)]})


def test_every_field_of_the_plan_schema_has_a_description() -> None:
    schema = PLAN_SCHEMA["schema"]
    step = schema["$defs"]["PlannedStep"]
    assert all(prop.get("description") for prop in step["properties"].values())
    assert schema["properties"]["steps"].get("description")
    assert "numbered from 1" in step["properties"]["depends_on"]["description"]


def test_depends_on_holds_step_numbers_and_is_stored_as_indexes() -> None:
    specs = parse_plan(plan_of([], [1], [1, 2]), max_steps=10)
    assert [s.depends_on for s in specs] == [(), (0,), (0, 1)]
    # A re-plan from step 3 (index 2): its first step is number 3 and may name steps 1 and 2.
    revised = parse_plan(plan_of([1, 2], [3]), max_steps=10, first_index=2)
    assert [(s.index, s.depends_on) for s in revised] == [(2, (0, 1)), (3, (2,))]


@pytest.mark.parametrize(
    ("content", "fix"),
    [
        (plan_of([], [0]), "steps are numbered from 1 (the first step is step 1): add 1 to every number in depends_on"),
        (plan_of([2], []), "step 1 depends on step 2, which comes after it: the first step cannot depend on any step"),
        (plan_of([], [3], []), "step 2 depends on step 3, which comes after it: a step may depend only on steps 1..1"),
        (plan_of([], [3], [2]), "depends_on forms a cycle (step 2 -> step 3 -> step 2)"),
        (plan_of([], [2]), "depends_on forms a cycle (step 2 -> step 2)"),
        (plan_of([], [9]), "names step 9, but the plan has only steps up to 2"),
        (json.dumps({"steps": []}), 'the plan has no steps: give at least one step in "steps"'),
    ],
)
def test_a_bad_plan_is_refused_with_the_fix(content: str, fix: str) -> None:
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(content, max_steps=10)
    assert fix in str(caught.value)
    assert "indexes 0..-1" not in str(caught.value)


@pytest.mark.parametrize(
    ("bad", "fix"),
    [
        (plan_of([], [0], [1]), "add 1 to every number in depends_on"),
        (plan_of([], [3], []), "move the work of step 3 before step 2 or remove 3 from its depends_on"),
        (plan_of([], [3], [2]), "depends_on forms a cycle"),
    ],
)
def test_the_repair_prompt_names_the_fix_and_the_repaired_plan_runs(bad: str, fix: str) -> None:
    model = QueueModel(plan=[bad, plan_of([], [1], [1])])
    result = Runner(InMemoryStore(), model).start("three steps")
    assert result.status == "completed", result.reason
    repair = [r for r in model.requests if r.purpose == "plan"][1]
    assert fix in repair.messages[-1]["content"]
    assert "That plan cannot be used" in repair.messages[-1]["content"]


def test_step_3_depending_on_step_1_runs_after_step_1() -> None:
    store = InMemoryStore()
    model = QueueModel(plan=[plan_of([], [], [1])])
    result = Runner(store, model).start("three steps")
    assert result.status == "completed"
    steps = store.steps(result.task_id)
    assert steps[2].depends_on == (0,)
    assert steps[0].finished_at is not None and steps[2].started_at is not None
    assert steps[2].started_at >= steps[0].finished_at


def test_a_step_whose_dependency_comes_after_it_does_not_start() -> None:
    store = InMemoryStore()
    runner = Runner(store, QueueModel(plan=[plan_of([], [1])]))
    task_id = runner.create("two steps")
    runner.tick(task_id)  # the plan
    # A plan edited outside the planner (a fork's, an operator's): step 1 now depends on step 2.
    task = store._tasks[task_id]  # type: ignore[attr-defined]
    task.steps[0] = replace(task.steps[0], depends_on=(1,))
    outcome = runner.tick(task_id)
    assert outcome.status == "requires_human"
    assert "step 1 depends on step 2, which has not completed before it" in store.get_task(task_id).status_reason


def test_a_replan_keeps_the_dependencies_of_the_steps_it_keeps() -> None:
    store = InMemoryStore()
    model = QueueModel(
        plan=[plan_of([], [1], [1, 2])],
        replan=[json.dumps({"steps": [{"title": "again", "instructions": "x", "depends_on": [1]}]})],
        step=[final("one"), final("", refusal="cannot")],
    )
    profile = AgentProfile(name="default", replan_on_failure=True)
    result = Runner(store, model, profiles={"default": profile}).start("re-plan")
    assert result.status == "completed", result.reason
    replan = next(r for r in model.requests if r.purpose == "replan")
    text = replan.messages[-1]["content"]
    assert "Step 1 is done" in text and "The first new step is step 2" in text and "Step 2, 't2'" in text
    steps = store.steps(result.task_id)
    assert [(s.index, s.title, s.depends_on) for s in steps] == [(0, "t1", ()), (1, "again", (0,))]
