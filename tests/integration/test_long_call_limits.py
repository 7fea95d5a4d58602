"""A tick of a task whose profile allows long model calls carries its own Celery time limits.

Under the threads worker the heartbeat enforces a tick's limit (agents/heartbeat.py); a prefork
worker enforces the time limits a message carries. Each enqueued tick of such a task names the
profile's limits, so a prefork pool neither kills a reasoning model's call at the global limit nor
lets it run past the profile's.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from agents.profiles import AgentProfile, profile_to_json
from tasks_app.models import AgentTask
from tasks_app.runtime import profile_tick_limits
from tasks_app.services.tasks import agent_task_create, enqueue_tick, tick_time_limits
from tests.support.broker import Broker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _time_limits_of_queued_ticks(broker: Broker) -> list[list[float | None]]:
    return [json.loads(raw)["headers"]["timelimit"] for raw in broker.queued()]


def test_a_long_call_profile_sends_its_ticks_with_its_own_time_limits(broker: Broker) -> None:
    usual = agent_task_create(goal="usual")
    slow = agent_task_create(goal="a reasoning model thinks for minutes")
    long_calls = profile_to_json(AgentProfile(name="reasoning", llm_timeout=900, llm_max_retries=0))
    AgentTask.objects.filter(pk=slow.pk).update(profile_config=long_calls)
    tick_time_limits.cache_clear()
    soft, hard = profile_tick_limits(long_calls)
    assert hard > soft > 900  # the call itself, then the configured gap between the limits
    with override_settings(HORIZON_DISPATCH="celery"), transaction.atomic():
        enqueue_tick(str(usual.pk))
        enqueue_tick(str(slow.pk))
    # Celery's header is [hard, soft]: the configured limits for the usual profile, the profile's own
    # for the long one.
    configured = [settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT]
    assert sorted(_time_limits_of_queued_ticks(broker), key=lambda pair: pair[0]) == [configured, [hard, soft]]
