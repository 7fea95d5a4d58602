"""agents and tasks_app as packages: the wheel builds, holds what they need, and tasks_app runs inside another project.

The wheel is built from a copy of the files git knows (so a stale build/ or a local file cannot
hide a missing one), installed into a target directory, and used by a project made with
`django-admin startproject` that only adds tasks_app (and django_celery_beat, which its migrations
depend on) to INSTALLED_APPS: it migrates on SQLite and runs a goal with the offline scripted model,
in subprocesses that cannot see this repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tasks_app.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
# Deliberate differences between the library's defaults and horizon_project's (which reads the environment).
PROJECT_ONLY = {
    "HORIZON_WEBHOOK_ALLOW_PRIVATE",  # horizon_project allows private addresses outside production; a library does not
    "HORIZON_SECRET_VALUES",  # horizon_project collects the configured secrets (SECRET_KEY, the API key, ...)
    "HORIZON_BUILD_ID",  # horizon_project names its build after the checkout's git commit; a library has none
    "HORIZON_BUILD_SEQUENCE",  # likewise the commit's time
}


def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [p for p in out.stdout.splitlines() if (ROOT / p).is_file()]


def _clean_env(**extra: str) -> dict[str, str]:
    """No HORIZON_*, DATABASE_URL or PYTHONPATH of the test run: the host project sees none of this repository."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for path in _tracked():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = dist.glob("horizon-*.whl")
    return built


def test_the_wheel_holds_every_module_migration_template_and_scenario_of_the_two_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for path in _tracked():
        if path.startswith(("agents/", "tasks_app/")) and (path.endswith((".py", ".json")) or path.endswith("py.typed")):
            expected.add(path)
        elif path.startswith("templates/"):
            expected.add("tasks_app/" + path)  # the repository's top-level templates, inside the app in the wheel
    assert "tasks_app/migrations/0001_initial.py" in expected and "tasks_app/templates/tasks_app/timeline.html" in expected
    assert expected - names == set()
    assert {n.split("/")[0] for n in names} == {"agents", "tasks_app", "horizon-0.1.0.dist-info"}  # no project, no tests
    metadata = zipfile.ZipFile(wheel).read("horizon-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: Django==" in metadata and "Requires-Dist: celery[redis]==" in metadata


def test_tasks_app_runs_a_goal_inside_a_throwaway_django_project(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = _clean_env(PYTHONPATH=str(site))  # manage.py names its own settings module
    (tmp_path / "host").mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "hostproj", str(tmp_path / "host")],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    settings = tmp_path / "host" / "hostproj" / "settings.py"
    text = settings.read_text()
    settings.write_text(text.replace("INSTALLED_APPS = [", 'INSTALLED_APPS = [\n    "django_celery_beat",\n    "tasks_app",', 1))

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=tmp_path / "host", env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    where = manage("shell", "--no-imports", "-c", "import agents, tasks_app; print(agents.__file__); print(tasks_app.__file__)")
    assert all(line.startswith(str(site)) for line in where.split()), where  # the installed copies, not the repository's
    manage("migrate", "-v", "0")
    manage("makemigrations", "--check", "--dry-run", "tasks_app")  # the wheel's migrations match its models
    # The app's templates come from the wheel through the app-directories loader.
    manage(
        "shell", "--no-imports", "-c", "from django.template.loader import get_template; get_template('tasks_app/timeline.html')"
    )
    result = json.loads(manage("run_goal", "Onboard Acme Corp", "--json"))
    assert result["status"] == "completed", result
    assert len(result["steps"]) == 7 and all(s["status"] == "completed" for s in result["steps"])
    status = manage(
        "shell", "--no-imports", "-c", "from tasks_app.models import AgentTask; print(AgentTask.objects.get().status)"
    )
    assert status.strip() == "completed"


def test_the_library_defaults_are_horizon_projects_defaults() -> None:
    """tasks_app.conf.DEFAULTS equal what horizon_project/settings.py sets when the environment sets nothing."""
    code = (
        "import json, horizon_project.settings as s; from tasks_app.conf import DEFAULTS; "
        "print(json.dumps({k: getattr(s, k) for k in DEFAULTS}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_clean_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    project = json.loads(done.stdout)
    differing = {k for k, v in DEFAULTS.items() if project[k] != v}
    assert differing == PROJECT_ONLY
