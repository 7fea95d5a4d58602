"""Builds the runner a process uses, from settings: the store, the model and the tools."""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ImproperlyConfigured

from agents.errors import InvalidInput
from agents.heartbeat import Heartbeat
from agents.llm.breaker import CircuitBreaker, GuardedModel
from agents.llm.config import llm_call_worst_case, tick_limits
from agents.model import Model
from agents.profiles import AgentProfile, load_profiles, profile_from_snapshot
from agents.runner import Runner
from agents.scripted import DEFAULT_SCENARIO, ScriptedModel
from agents.tools import default_registry
from agents.types import Build, TaskRecord
from tasks_app.breaker_state import DjangoBreakerState
from tasks_app.conf import settings
from tasks_app.llm_endpoints import endpoint_config, llm_configured


def load_tool_modules() -> None:
    """Import the modules named in HORIZON_TOOL_MODULES; importing one registers its tools."""
    for name in settings.HORIZON_TOOL_MODULES:
        importlib.import_module(name)


def configure_audit_keys() -> None:
    """The event chain's HMAC keys (agents/audit.py), from the environment, never from the database."""
    from agents.audit import configure_keys

    configure_keys(
        settings.HORIZON_AUDIT_KEY.encode() or None,
        settings.HORIZON_AUDIT_KEY_VERSION,
        settings.HORIZON_AUDIT_OLD_KEYS,
    )


def configure_tools() -> None:
    """Give the built-in tools their limits from the settings (agents/ never reads Django's)."""
    from agents import redaction
    from agents.tools import fetch, sandbox

    fetch.configure(
        allowed_hosts=settings.HORIZON_FETCH_ALLOWED_HOSTS,
        max_bytes=settings.HORIZON_FETCH_MAX_BYTES,
        timeout=settings.HORIZON_FETCH_TIMEOUT,
    )
    sandbox.configure(
        python=settings.HORIZON_SANDBOX_PYTHON,
        cpu_seconds=settings.HORIZON_SANDBOX_CPU_SECONDS,
        memory_mb=settings.HORIZON_SANDBOX_MEMORY_MB,
        wall_seconds=settings.HORIZON_SANDBOX_WALL_SECONDS,
        max_output_bytes=settings.HORIZON_SANDBOX_MAX_OUTPUT_BYTES,
        bwrap=settings.HORIZON_SANDBOX_BWRAP,
        site_packages=settings.HORIZON_SANDBOX_SITE_PACKAGES,
        unsafe=settings.HORIZON_SANDBOX_UNSAFE,
    )
    # Also registered when the LOGGING setting builds its filter; again here in case a deployment
    # replaced LOGGING with its own.
    redaction.register_secret_values(settings.HORIZON_SECRET_VALUES)


@lru_cache(maxsize=32)
def endpoint_model(model: str, fallback: str, timeout: float = 0.0, max_retries: int | None = None) -> Model:
    """The real client for one model, behind its endpoint's circuit breaker, with an optional fallback."""
    # Imported here: the openai SDK takes half a second to import, which offline runs never need.
    from agents.llm.client import OpenAIModel

    primary = OpenAIModel(endpoint_config(model, timeout=timeout, max_retries=max_retries))
    breaker = CircuitBreaker(
        DjangoBreakerState(),
        f"{settings.OPENAI_BASE_URL or 'openai'}#{model}",
        failure_threshold=settings.HORIZON_BREAKER_FAILURES,
        cool_down=settings.HORIZON_BREAKER_COOL_DOWN,
    )
    backup = OpenAIModel(endpoint_config(fallback, timeout=timeout, max_retries=max_retries)) if fallback else None
    return GuardedModel(primary, breaker, backup)


@lru_cache(maxsize=1)
def default_model() -> Model:
    """The endpoint's default model when one is configured; otherwise the offline scripted model."""
    if llm_configured():
        return endpoint_model(settings.HORIZON_LLM_MODEL, settings.HORIZON_LLM_FALLBACK_MODEL)
    return ScriptedModel.from_file(settings.HORIZON_SCENARIO or DEFAULT_SCENARIO)


def model_for_profile(profile: AgentProfile) -> Model:
    """A profile may name its own model and fallback on the configured endpoint, and its own timeout and retries."""
    own = profile.model or profile.fallback_model or profile.llm_timeout or profile.llm_max_retries is not None
    if not llm_configured() or not own:
        return default_model()
    return endpoint_model(
        profile.model or settings.HORIZON_LLM_MODEL,
        profile.fallback_model or settings.HORIZON_LLM_FALLBACK_MODEL,
        profile.llm_timeout,
        profile.llm_max_retries,
    )


@lru_cache(maxsize=1)
def profiles() -> dict[str, AgentProfile]:
    """The built-in profiles, HORIZON_MAX_MODEL_CALLS_PER_STEP for the default one, then the file's."""
    load_tool_modules()
    configured: Any = {}
    if settings.HORIZON_PROFILES_FILE:
        path = Path(settings.HORIZON_PROFILES_FILE)
        try:
            configured = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        except (OSError, yaml.YAMLError) as exc:
            raise ImproperlyConfigured(f"HORIZON_PROFILES_FILE {path}: {exc}") from None
    default = {"max_model_calls_per_step": settings.HORIZON_MAX_MODEL_CALLS_PER_STEP}
    if isinstance(configured, dict):
        configured = {**configured, "default": {**default, **(configured.get("default") or {})}}
    try:
        loaded = load_profiles(configured, tool_names=set(default_registry.tools))
    except InvalidInput as exc:
        raise ImproperlyConfigured(f"HORIZON_PROFILES_FILE: {exc}") from None
    for profile in loaded.values():
        # The start-up timeout order (horizon_project/checks.py) must hold for a profile's own retries too.
        # Checked on the very config the client will use.
        config = endpoint_config(
            profile.model or settings.HORIZON_LLM_MODEL, timeout=profile.llm_timeout, max_retries=profile.llm_max_retries
        )
        retries, timeout = config.max_retries, config.timeout
        worst = llm_call_worst_case(timeout, retries)
        _soft, hard = tick_limits(worst, settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT)
        if hard + settings.HORIZON_LEASE_SECONDS >= settings.CELERY_VISIBILITY_TIMEOUT:
            raise ImproperlyConfigured(
                f"profile {profile.name!r}: one model call can take {worst:.0f} s ({retries} retries of {timeout:.0f} s), "
                f"so its ticks may run {hard:.0f} s; that plus HORIZON_LEASE_SECONDS ({settings.HORIZON_LEASE_SECONDS:g} s) "
                f"must be less than CELERY_VISIBILITY_TIMEOUT ({settings.CELERY_VISIBILITY_TIMEOUT} s)"
            )
    return loaded


def profile_tick_limits(profile_config: dict[str, Any] | None, profile_name: str = "") -> tuple[float, float]:
    """The (soft, hard) time limits of a tick of a task with this frozen profile: the configured
    Celery limits, or later ones when the profile allows model calls that outlast them."""
    soft, hard = float(settings.CELERY_TASK_SOFT_TIME_LIMIT), float(settings.CELERY_TASK_TIME_LIMIT)
    if profile_config and not profile_config.get("llm_timeout") and profile_config.get("llm_max_retries") is None:
        return soft, hard  # every tick asks: the usual profile is answered without parsing it
    profile = profile_from_snapshot(profile_config) if profile_config else profiles().get(profile_name)
    if profile is None or not (profile.llm_timeout or profile.llm_max_retries is not None):
        return soft, hard
    config = endpoint_config(
        profile.model or settings.HORIZON_LLM_MODEL, timeout=profile.llm_timeout, max_retries=profile.llm_max_retries
    )
    return tick_limits(llm_call_worst_case(config.timeout, config.max_retries), soft, hard)


def tick_hard_limit(task: TaskRecord) -> float:
    """How long a tick may hold its task's lease before the heartbeat lets it expire (agents/heartbeat.py)."""
    return profile_tick_limits(task.profile_config, task.profile)[1]


@lru_cache(maxsize=4)
def heartbeat(using: str = "default") -> Heartbeat:
    """The process's one lease heartbeat per database: one renewal statement for every tick in flight."""
    from tasks_app.store import store_for

    return Heartbeat(store_for(using), lease_seconds=settings.HORIZON_LEASE_SECONDS, interval=settings.HORIZON_HEARTBEAT_SECONDS)


def build_runner(*, model: Model | None = None, worker_id: str | None = None, using: str = "default") -> Runner:
    # Observed: every tick records its metrics and log context (tasks_app/observability/instrument.py).
    from tasks_app.observability.instrument import MeteredModel, ObservedRunner, ObservedStore
    from tasks_app.store import store_for

    explicit = not (model is None or model is default_model())
    return ObservedRunner(
        store_for(using, observer=ObservedStore),
        MeteredModel(model or default_model()),
        default_registry,
        worker_id=worker_id,
        lease_seconds=settings.HORIZON_LEASE_SECONDS,
        profiles=profiles(),
        # A model given explicitly (a test, --scenario, the crash demo's wrapper) answers every profile.
        model_for=None if explicit else lambda profile: MeteredModel(model_for_profile(profile)),
        children_recheck=settings.HORIZON_CHILDREN_RECHECK_SECONDS,
        build=current_build(),
        heartbeat=heartbeat(using),
        tick_limit=tick_hard_limit,
    )


def current_build() -> Build | None:
    """The build this process runs (HORIZON_BUILD_ID, HORIZON_BUILD_SEQUENCE); None when it has no id."""
    if not settings.HORIZON_BUILD_ID:
        return None
    return Build(id=settings.HORIZON_BUILD_ID, rank=settings.HORIZON_BUILD_SEQUENCE)


def model_description(model: Model) -> str:
    if getattr(model, "offline", False):
        return f"{model.name} (offline scripted model: no LLM endpoint is configured)"
    return f"{model.name} at {settings.OPENAI_BASE_URL or 'https://api.openai.com/v1'}"
