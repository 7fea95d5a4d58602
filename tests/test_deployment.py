"""docker-compose.yml, checked by parsing (no Docker engine runs here), and the settings it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_describes_the_distributed_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])


def test_app_services_share_one_configuration_and_wait_for_their_dependencies() -> None:
    services = compose()["services"]
    for name in ("migrate", "web", "worker", "beat"):
        service = services[name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
        assert env["HORIZON_DISPATCH"] == "celery"
        assert service["env_file"] == ".env"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_commands_match_the_processes_the_tests_run() -> None:
    services = compose()["services"]
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "horizon_project", "worker"]
    assert worker[worker.index("-Q") + 1] == "horizon,horizon.control"  # the ticks' queue and the sweep's
    assert services["web"]["command"][:2] == ["gunicorn", "horizon_project.wsgi:application"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    beat = services["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "horizon_project", "beat"]
    assert beat[beat.index("--scheduler") + 1] == "django_celery_beat.schedulers:DatabaseScheduler"


def test_the_default_worker_is_the_same_everywhere_it_is_documented() -> None:
    """One process of threads (docs/performance.md): compose, stack.sh, the Dockerfile, the README and
    the tests' default worker (tests/support/processes.py) say the same pool and concurrency."""
    from tests.support.processes import DEFAULT_CONCURRENCY, DEFAULT_POOL

    worker = compose()["services"]["worker"]["command"]
    assert worker[worker.index("-P") + 1] == DEFAULT_POOL == "threads"
    assert f"--concurrency={DEFAULT_CONCURRENCY}" in worker
    assert (
        f"-P ${{WORKER_POOL:-{DEFAULT_POOL}}} --concurrency=${{WORKER_CONCURRENCY:-{DEFAULT_CONCURRENCY}}}"
        in (REPO / "scripts" / "stack.sh").read_text()
    )
    documented = f"worker -l INFO -Q horizon,horizon.control -P {DEFAULT_POOL} --concurrency {DEFAULT_CONCURRENCY} -E"
    assert documented in (REPO / "Dockerfile").read_text()
    assert documented in (REPO / "README.md").read_text()


def test_the_example_env_file_names_only_settings_the_project_reads() -> None:
    settings_source = "".join(p.read_text() for p in (REPO / "horizon_project").glob("settings*.py"))
    names = [
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("# Copy") and not line.startswith("# Ordered") and not line.startswith("# Leave")
    ]
    assert names
    for name in names:
        assert f'"{name}"' in settings_source, f"{name} in .env.example is not read by the settings"


def test_flower_watches_the_workers_which_send_events() -> None:
    services = compose()["services"]
    flower = services["flower"]
    assert flower["command"] == ["celery", "-A", "horizon_project", "flower", "--port=5555"]
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"
    assert flower["environment"]["CELERY_BROKER_URL"] == services["worker"]["environment"]["CELERY_BROKER_URL"]
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])
    assert "-E" in services["worker"]["command"]  # without task events Flower shows no tasks
    assert "flower==2.2.0" in (REPO / "requirements.txt").read_text().splitlines()


def test_stack_script_runs_the_compose_commands_and_the_readme_documents_both() -> None:
    script = REPO / "scripts" / "stack.sh"
    assert script.exists() and script.stat().st_mode & 0o111, "scripts/stack.sh must be executable"
    text = script.read_text()
    for needle in (
        "manage.py migrate --noinput",
        "gunicorn horizon_project.wsgi:application",
        "celery -A horizon_project worker --loglevel=INFO -Q horizon,horizon.control",
        "celery -A horizon_project beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler",
        "celery -A horizon_project flower --port=",
        "stop)",
    ):
        assert needle in text, needle
    readme = (REPO / "README.md").read_text()
    assert "scripts/stack.sh" in readme and "docker compose up" in readme


@pytest.mark.django_db
def test_the_web_service_is_health_checked_through_healthz(client) -> None:  # type: ignore[no-untyped-def]
    test = " ".join(compose()["services"]["web"]["healthcheck"]["test"])
    assert "/healthz" in test
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_every_deployment_collects_the_static_files_that_gunicorn_serves() -> None:
    """gunicorn serves the admin's CSS and JS through WhiteNoise, from what collectstatic gathered
    (tests/browser/test_operator_surfaces.py shows them applied under gunicorn with DEBUG off)."""
    from django.conf import settings

    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.index("COPY . .") < dockerfile.index("manage.py collectstatic --noinput") < dockerfile.index("CMD")
    stack = (REPO / "scripts" / "stack.sh").read_text()
    start = stack[stack.index("start() {") :]
    assert start.index("manage.py collectstatic --noinput") < start.index("command_for")
    assert settings.MIDDLEWARE[1] == "whitenoise.middleware.WhiteNoiseMiddleware"  # right after SecurityMiddleware
    assert "whitenoise==" in (REPO / "requirements.txt").read_text()
