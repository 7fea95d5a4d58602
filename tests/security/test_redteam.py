"""The red team against run_python (issue 16): every escape attempt of tests/security/redteam_attacks.py,
each a test of its own, three times over:

- as the user running the suite (root in CI, which starts bwrap as uid 65534);
- as an unprivileged worker user (`horizon-worker`, which scripts/test.sh creates when it runs as
  root), running the same attempts in a process of that user: bwrap under the worker's own uid;
- under HORIZON_SANDBOX_UNSAFE's mode, where each attempt is expected to get through or not as its
  `unsafe` field says (docs/security.md's table); attempts whose result there depends on the host's
  kernel settings are reported by `python -m tests.security.redteam --unsafe`, not asserted.

An attempt fails its test when it got out: a secret printed, a file made on the host, a listener
reached, a process that outlived the call, a system call that succeeded, a limit not enforced.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agents.tools import sandbox
from tests.security import redteam
from tests.security.redteam_attacks import ATTACKS, Attack
from tests.security.worker_user import WORKER_USER, as_worker_user

NAMES = [a.name for a in ATTACKS]


def test_there_are_at_least_forty_attempts() -> None:
    assert len(ATTACKS) >= 40 and len(set(NAMES)) == len(NAMES)


@pytest.fixture(scope="module")
def host() -> Iterator[redteam.Host]:
    problem = sandbox.isolation_problem()
    if problem:
        pytest.fail(f"the sandbox cannot be built on this machine, so the red team cannot run: {problem}")
    with redteam.configured(unsafe=False), redteam.Host() as h:
        yield h


@pytest.mark.parametrize("attack", ATTACKS, ids=NAMES)
def test_the_attempt_is_contained(host: redteam.Host, attack: Attack) -> None:
    outcome = redteam.attempt(attack, host)
    assert not outcome.escaped, outcome.detail


@pytest.fixture(scope="module")
def as_unprivileged_worker() -> dict[str, dict[str, object]]:
    argv = as_worker_user([sys.executable, "-m", "tests.security.redteam", "--json"])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": str(redteam.REPO)}
    done = subprocess.run(argv, cwd=redteam.REPO, env=env, capture_output=True, text=True, timeout=900)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    expected_uid = pwd.getpwnam(WORKER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()  # the user it ran as
    assert answer["uid"] == expected_uid != 0
    results: dict[str, dict[str, object]] = answer["results"]
    return results


@pytest.mark.parametrize("attack", ATTACKS, ids=NAMES)
def test_the_attempt_is_contained_as_an_unprivileged_worker(
    as_unprivileged_worker: dict[str, dict[str, object]], attack: Attack
) -> None:
    outcome = as_unprivileged_worker[attack.name]
    assert outcome["escaped"] is False, outcome["detail"]


@pytest.fixture(scope="module")
def under_unsafe_mode() -> dict[str, redteam.Outcome]:
    return redteam.run_all(unsafe=True, names=[a.name for a in ATTACKS if a.unsafe != "varies"])


@pytest.mark.parametrize(
    "attack", [a for a in ATTACKS if a.unsafe != "varies"], ids=[a.name for a in ATTACKS if a.unsafe != "varies"]
)
def test_what_the_unsafe_mode_lets_through(under_unsafe_mode: dict[str, redteam.Outcome], attack: Attack) -> None:
    # The expectations are a root worker's (CI): an unprivileged one is refused more by file permissions.
    if attack.unsafe == "escapes" and os.geteuid() != 0:
        pytest.skip("what the unsafe mode lets through is recorded for a root worker")
    outcome = under_unsafe_mode[attack.name]
    assert outcome.escaped is (attack.unsafe == "escapes"), outcome.detail
