"""Both stores provide every role of agents/store.py, with the protocol's parameters.

An isinstance against a runtime-checkable protocol would only look at names (and would evaluate DjangoStore.memory, which
builds an embedder), so the members are compared on the classes, signature by signature; mypy
checks InMemoryStore against Store itself (agents/inmemory_store.py).
"""

from __future__ import annotations

import inspect

import pytest

from agents.inmemory_store import InMemoryStore
from agents.store import ROLES, Store
from tasks_app.store import DjangoStore


def members(role: type) -> dict[str, object]:
    found: dict[str, object] = {}
    for base in reversed(role.__mro__):
        if base is object or base.__name__ in ("Protocol", "Generic"):
            continue
        found.update({name: value for name, value in vars(base).items() if not name.startswith("_")})
    return found


def parameters(fn: object) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


def provides(implementation: type, name: str) -> bool:
    # A method or property on the class, or an attribute its __init__ sets (InMemoryStore.memory).
    return hasattr(implementation, name) or name in vars(implementation())


def test_store_is_the_sum_of_the_roles() -> None:
    every_role = set().union(*(members(role) for role in ROLES))
    assert set(members(Store)) == every_role
    assert len(every_role) >= 30


@pytest.mark.parametrize("implementation", [InMemoryStore, DjangoStore])
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.__name__)
def test_each_store_provides_each_role(implementation: type, role: type) -> None:
    for name, wanted in members(role).items():
        assert provides(implementation, name), f"{implementation.__name__} lacks {name}"
        if callable(wanted):
            assert parameters(getattr(implementation, name)) == parameters(wanted), f"{implementation.__name__}.{name}"
