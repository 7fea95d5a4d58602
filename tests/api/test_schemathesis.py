"""schemathesis against the live /api/openapi.json: every operation, fuzzed over HTTP with a real
token and without one.

The app runs in pytest-django's live server (a real HTTP server thread on the PostgreSQL test
database). Checks: no 5xx, every status code and content type is declared, every response body
and header matches the schema, and data that breaks the schema (an unknown field, a body that is
not an object, a value of the wrong type) is never accepted. Examples are capped so that the run
stays around a minute.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agents import boundary
from tasks_app.services.api_tokens import api_token_create
from tasks_app.services.tasks import agent_task_create
from tests.api.conftest import make_user

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CHECKS.append(response_headers_conformance)
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


@pytest.fixture
def fuzzer(transactional_db: Any) -> tuple[str, str]:
    """(token, the id of a task it owns): random ids only ever meet 404s; this one reaches the services."""
    user = make_user("fuzzer", may_decide=True)
    task = agent_task_create(goal="a task the fuzzer owns", owner=user)
    return api_token_create(user=user, name="schemathesis")[1], str(task.pk)


# schemathesis.pytest.from_fixture (its lazy parametrize) does not run under pytest 9.2 (it sets
# the removed Function._nodeid), so the test drives each operation's strategy with hypothesis itself.
SETTINGS = hypothesis.settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _validate_each(strategy: Any, base_url: str, headers: dict[str, str], checks: list[Any]) -> None:
    @SETTINGS
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    run()


def _refuses_an_unknown_field(strategy: Any, base_url: str, headers: dict[str, str], label: str) -> None:
    @SETTINGS
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        if not isinstance(case.body, dict) or boundary.refusal(case.body):
            return  # a text the parser refuses before any field is looked at (a NUL, say)
        case.body = {**case.body, "owner_id": 999}
        response = case.call(base_url=base_url, headers=headers)
        assert response.status_code == 400, (label, response.status_code, response.text)
        assert "unknown fields: owner_id" in response.json()["detail"]

    run()


@pytest.mark.parametrize("authenticated", [True, False], ids=["token", "no-token"])
def test_every_operation_conforms_to_the_schema_and_never_answers_5xx(
    live_server: Any, fuzzer: tuple[str, str], authenticated: bool
) -> None:
    token, task_id = fuzzer
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {token}"} if authenticated else {}
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [
            (operation.as_strategy(generation_mode=GenerationMode.POSITIVE), CHECKS),
            (operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), NEGATIVE_CHECKS if authenticated else CHECKS),
        ]
        if "{task_id}" in operation.path:
            strategies.append((operation.as_strategy(path_parameters={"task_id": task_id}), CHECKS))
        for strategy, checks in strategies:
            _validate_each(strategy, live_server.url, headers, checks)
        tested.append(operation.label)
    assert len(tested) == 16, tested  # every endpoint of the API


def test_no_operation_accepts_an_unknown_body_field(live_server: Any, fuzzer: tuple[str, str]) -> None:
    """Each operation with a body, sent a valid body plus one field it does not declare: 400 naming it."""
    token, task_id = fuzzer
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    with_bodies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "POST" or not operation.body:
            continue
        path_parameters = {"task_id": task_id} if "{task_id}" in operation.path else None
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=path_parameters)

        _refuses_an_unknown_field(strategy, live_server.url, headers, operation.label)
        with_bodies.append(operation.label)
    assert len(with_bodies) == 8, with_bodies
