"""Regression replay of recorded tasks on the current code (agents.regression), for operators and CI.

Read-only for the database: the replay runs on an in-memory copy, answered from the recording.
"""

from __future__ import annotations

from agents.model import Model
from agents.regression import RegressionReport, regress
from agents.resume_check import ResumeVerdict, resume_verdict
from agents.runner import Runner
from agents.store import Store
from agents.tools import default_registry
from agents.tools.registry import ToolRegistry
from tasks_app.runtime import profiles
from tasks_app.store import store_for, task_pk


def _runner(store: Store, model: Model, tools: ToolRegistry) -> Runner:
    # The worker's configured profiles, as build_runner gives them; a task that kept its profile
    # snapshot (every task since profiles were kept) is replayed under that snapshot anyway.
    return Runner(store, model, tools, profiles=profiles())


def task_regress(*, task_id: str) -> RegressionReport:
    """Raises TaskNotFound for an unknown id."""
    store = store_for()
    task_id = str(task_pk(task_id))
    store.get_task(task_id)  # raises TaskNotFound
    return regress(store, task_id, tools=default_registry, runner_factory=_runner)


def task_resume_verdict(*, task_id: str) -> ResumeVerdict:
    """The deploy gate's verdict of this build on a recorded task (agents/resume_check.py). Raises TaskNotFound."""
    store = store_for()
    task_id = str(task_pk(task_id))
    store.get_task(task_id)
    return resume_verdict(store, task_id, tools=default_registry, control=default_registry, runner_factory=_runner)


def tasks_in_flight(*, limit: int = 1000) -> list[str]:
    """The ids of tasks that have not ended (what a deploy lands under), oldest first."""
    from agents.status import TaskStatus
    from tasks_app.models import AgentTask

    rows = AgentTask.objects.exclude(status__in=TaskStatus.TERMINAL).order_by("created_at").values_list("pk", flat=True)
    return [str(pk) for pk in rows[:limit]]
