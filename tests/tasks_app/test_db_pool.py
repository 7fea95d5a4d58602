"""The connection pool (tasks_app/db_pool.py): a tick holds no connection while it waits for a model,
and a pool with nothing to lend fails the tick with the OperationalError the tick task retries."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection

from agents.scripted import ScriptedModel
from agents.types import LLMRequest, LLMResponse
from tasks_app.services.tasks import agent_task_create, agent_task_tick
from tasks_app.store import DjangoStore
from tasks_app.tasks import RETRY_ON
from tests.conftest import make_scenario

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def small_pool():  # type: ignore[no-untyped-def]
    """A pool of one connection that waits 0.5 s for it, for this test only."""
    options = connection.settings_dict["OPTIONS"]
    pool = options.get("pool")
    assert pool, "the settings give PostgreSQL a pool by default (HORIZON_DB_POOL_MAX)"
    connection.close()
    connection.close_pool()
    options["pool"] = {**pool, "min_size": 1, "max_size": 1, "timeout": 0.5}
    yield
    connection.close()
    connection.close_pool()
    options["pool"] = pool


class Watching(ScriptedModel):
    """Notes, at each call, whether this thread still holds a database connection."""

    def __init__(self, scenario: dict) -> None:  # type: ignore[type-arg]
        super().__init__(scenario)
        self.held: list[bool] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.held.append(connection.connection is not None)
        return super().complete(request)


def test_a_tick_gives_its_connection_back_before_every_model_call(small_pool) -> None:  # type: ignore[no-untyped-def]
    model = Watching(make_scenario(2))
    task_id = str(agent_task_create(goal="borrow, give back").pk)
    for _ in range(3):  # the plan, then both steps
        assert agent_task_tick(task_id=task_id, model=model).committed
    assert model.held == [False, False, False]
    assert connection.connection is None  # and after the tick
    assert DjangoStore().get_task(task_id).status == "completed"


def test_a_pool_with_nothing_to_lend_fails_the_tick_with_an_error_the_task_retries(small_pool) -> None:  # type: ignore[no-untyped-def]
    task_id = str(agent_task_create(goal="no connection to spare").pk)
    connection.close()  # back to the pool, for the other thread to take
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        connection.ensure_connection()  # this thread borrows the pool's only connection and keeps it
        holding.set()
        release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(OperationalError) as failed:
            agent_task_tick(task_id=task_id, model=ScriptedModel(make_scenario(1)))
        assert isinstance(failed.value, RETRY_ON)  # horizon.tick retries it with backoff
    finally:
        release.set()
        holder.join(10)
    connection.close()
    record = DjangoStore().get_task(task_id)
    assert record.lease_owner is None and record.status == "pending"  # nothing was claimed: no lease is left behind
    assert agent_task_tick(task_id=task_id, model=ScriptedModel(make_scenario(1))).committed  # the retry goes through
