"""Dispatch by name (tasks_app/dispatch.py): every name it sends is a registered Celery task, routed
to the queue the task had, and sent only once the transaction that asked for it commits."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

import tasks_app.tasks  # noqa: F401  (registers the tasks, as a worker's autodiscovery does)
from horizon_project.celery import app as celery_app
from tasks_app import dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    messages: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(dispatch.current_app, "send_task", lambda name, **options: messages.append((name, options)))
    return messages


def test_every_name_dispatch_sends_is_a_registered_celery_task() -> None:
    assert dispatch.current_app.main == celery_app.main  # the project's app, not a default one
    # A renamed task would leave dispatch sending messages no worker runs.
    assert set(dispatch.DISPATCHED_TASK_NAMES) <= set(celery_app.tasks)
    assert {dispatch.TICK, dispatch.DELIVER_WEBHOOK} == set(dispatch.DISPATCHED_TASK_NAMES)


def test_names_are_routed_to_the_queues_of_their_tasks() -> None:
    router = celery_app.amqp.router
    assert router.route({}, dispatch.TICK)["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
    assert router.route({}, dispatch.DELIVER_WEBHOOK)["queue"].name == "horizon.control"


def test_a_tick_is_sent_after_commit_with_its_options(sent: list[Any], django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.tick_on_commit("task-1", countdown=3.0, time_limits=(10.0, 20.0))
        dispatch.tick_on_commit("task-2")
        assert sent == []
    assert sent == [
        (
            "horizon.tick",
            {"args": ("task-1",), "ignore_result": True, "countdown": 3.0, "soft_time_limit": 10.0, "time_limit": 20.0},
        ),
        ("horizon.tick", {"args": ("task-2",), "ignore_result": True, "countdown": 0.0}),
    ]


def test_a_webhook_delivery_is_rung_after_commit_or_now(sent: list[Any], django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.webhook_delivery_on_commit(7)
        assert sent == []
    dispatch.webhook_delivery_now(8)
    assert sent == [
        ("horizon.deliver_webhook", {"args": (7,), "ignore_result": True}),
        ("horizon.deliver_webhook", {"args": (8,), "ignore_result": True}),
    ]
