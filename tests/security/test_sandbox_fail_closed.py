"""Fail closed: where run_python's sandbox cannot be built the tool is not offered and a call is a tool
error that says why; start-up says it once; the unsafe mode is off by default, refused in production
and loud whenever it is on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.tools import default_registry, sandbox, seccomp
from agents.tools.registry import ToolContext, ToolError
from agents.types import NewTask
from tests.conftest import make_scenario
from tests.security.test_deploy_settings import PRODUCTION
from tests.security.worker_user import REPO, as_worker_user
from tests.test_settings import run_with_env

pytestmark = pytest.mark.usefixtures("tool_limits")

NO_BWRAP = "/nonexistent/bwrap"


def _offered() -> set[str]:
    return {s["function"]["name"] for s in default_registry.schemas()}


def test_with_the_sandbox_here_run_python_is_offered() -> None:
    assert sandbox.isolation_problem() is None
    assert "run_python" in _offered()


def test_without_bwrap_run_python_is_not_offered_and_a_call_says_why() -> None:
    sandbox.configure(bwrap=NO_BWRAP)
    assert sandbox.isolation_problem() == (
        f"bubblewrap is not installed ({NO_BWRAP} not found): apt-get install bubblewrap (scripts/ensure_sandbox.sh)"
    )
    assert "run_python" not in _offered() and "write_file" in _offered()
    store = InMemoryStore()
    ctx = ToolContext(task_id=store.create_task(NewTask(goal="g")), step_index=0, idempotency_key="k", store=store)
    with pytest.raises(ToolError, match="^run_python is not available on this worker: bubblewrap is not installed"):
        sandbox.run_python(ctx, code="print(1)")


def test_a_model_that_calls_it_anyway_reads_the_reason_and_nothing_runs() -> None:
    sandbox.configure(bwrap=NO_BWRAP)
    code = "open('ran.txt', 'w').write('x')"
    scenario = make_scenario(1, tool_steps={0: [{"tool": "run_python", "arguments": {"code": code}}, {"final": "could not"}]})
    store = InMemoryStore()
    profiles = {"default": AgentProfile(name="default", approval_risks=())}
    result = Runner(store, ScriptedModel(scenario), profiles=profiles).start("Run code")
    assert result.status == "completed"
    [step] = store.steps(result.task_id)
    [message] = [m for m in step.transcript if m["role"] == "tool"]
    assert json.loads(message["content"])["error"].startswith("run_python is not available on this worker: bubblewrap")
    assert store.workspace_read(result.task_id, "ran.txt") is None


def test_without_user_namespaces_the_probe_says_so() -> None:
    # A worker whose user namespaces are switched off (bwrap --disable-userns around it, as
    # kernel.unprivileged_userns_clone=0 or a container's seccomp profile would) cannot build the sandbox.
    probe = "from agents.tools import sandbox; print(sandbox.isolation_problem())"
    inner = [sys.executable, "-c", probe]
    wrapped = ["bwrap", "--dev-bind", "/", "/", "--unshare-user", "--disable-userns", "--", *inner]
    argv = as_worker_user(wrapped)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 0, done.stderr
    answer = done.stdout.strip().splitlines()[-1]
    assert answer.startswith("bubblewrap cannot build the sandbox here (bwrap: ") and "user namespaces may be disabled" in answer


def test_manage_py_check_says_why_once() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], HORIZON_SANDBOX_BWRAP=NO_BWRAP)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # a warning: the rest of Horizon works without the code tool
    assert output.count("horizon.W010") == 1
    assert f"run_python is not offered to the model on this machine: bubblewrap is not installed ({NO_BWRAP} not found)" in output


def test_the_unsafe_mode_is_off_by_default_and_loud_when_on() -> None:
    assert sandbox.SandboxConfig().unsafe is False
    result = run_with_env([sys.executable, "manage.py", "check"], HORIZON_SANDBOX_UNSAFE="1")
    assert "WARNING: HORIZON_SANDBOX_UNSAFE is on: run_python runs code WITHOUT kernel isolation" in result.stderr
    assert "horizon.W011" in result.stderr and sandbox.UNSAFE_BANNER in result.stderr


def test_the_unsafe_mode_is_refused_in_production() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], **PRODUCTION, HORIZON_SANDBOX_UNSAFE="1")
    assert result.returncode != 0
    assert "HORIZON_SANDBOX_UNSAFE cannot be on when HORIZON_ENV=production" in result.stderr


def test_the_settings_of_the_old_design_are_refused_by_name() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], HORIZON_SANDBOX_FILESYSTEM="hook")
    assert result.returncode != 0 and "HORIZON_SANDBOX_FILESYSTEM is gone" in result.stderr


def test_an_unsafe_run_says_so_in_its_result() -> None:
    sandbox.configure(unsafe=True)
    store = InMemoryStore()
    ctx = ToolContext(task_id=store.create_task(NewTask(goal="g")), step_index=0, idempotency_key="k", store=store)
    assert sandbox.run_python(ctx, code="print(1)")["isolation"] == sandbox.UNSAFE_BANNER


def test_the_seccomp_tables_match_libseccomp() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("seccomp")
    if name is None:
        pytest.skip("libseccomp is not installed: the tables were checked against it where it is")
    lib = ctypes.CDLL(name)
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for machine, table in seccomp.SYSCALLS.items():
        for call, number in table.items():
            assert lib.seccomp_syscall_resolve_name_arch(seccomp.AUDIT_ARCH[machine], call.encode()) == number, (machine, call)


def test_the_filter_kills_a_system_call_of_another_architecture() -> None:
    # The first instructions: load the architecture, compare, kill on a mismatch (an i386 int 0x80).
    first = seccomp.program("x86_64")[:3]
    assert first == [(0x20, 0, 0, 4), (0x15, 1, 0, seccomp.AUDIT_ARCH["x86_64"]), (0x06, 0, 0, 0x80000000)]
    assert len(seccomp.compiled("x86_64")) == 8 * len(seccomp.program("x86_64"))


def test_the_image_installs_bubblewrap_and_the_worker_may_use_it() -> None:
    import yaml

    assert "apt-get install -y --no-install-recommends bubblewrap" in (REPO / "Dockerfile").read_text()
    worker = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker"]
    assert set(worker["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}
    assert "bash scripts/ensure_sandbox.sh --worker-user" in (REPO / "scripts" / "test.sh").read_text()


def test_the_worker_says_why_once_when_it_boots(tmp_path: Path) -> None:
    from tests.support.processes import CeleryWorker

    with CeleryWorker(env={"HORIZON_SANDBOX_BWRAP": NO_BWRAP}, name="nosandbox", log_dir=tmp_path) as worker:
        deadline = time.monotonic() + 20
        while "run_python is not offered" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = worker.log()
    assert log.count("run_python is not offered to the model on this machine: bubblewrap is not installed") == 1, log
