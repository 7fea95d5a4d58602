"""Builds the runner a process uses, from settings: the store, the model and the tools."""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from agents.errors import InvalidInput
from agents.model import Model
from agents.profiles import AgentProfile, load_profiles
from agents.runner import Runner
from agents.scripted import DEFAULT_SCENARIO, ScriptedModel
from agents.tools import default_registry
from tasks_app.store import DjangoStore


def load_tool_modules() -> None:
    """Import the modules named in HORIZON_TOOL_MODULES; importing one registers its tools."""
    for name in settings.HORIZON_TOOL_MODULES:
        importlib.import_module(name)


def llm_configured() -> bool:
    return bool(settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY)


@lru_cache(maxsize=1)
def default_model() -> Model:
    # Only the offline scripted model exists behind the seam so far; refusing a configured endpoint
    # is better than silently answering a real deployment with a script.
    if llm_configured():
        raise ImproperlyConfigured(
            "OPENAI_BASE_URL / OPENAI_API_KEY are set, but this build has no OpenAI client yet: "
            "unset them to run on the offline scripted model"
        )
    return ScriptedModel.from_file(settings.HORIZON_SCENARIO or DEFAULT_SCENARIO)


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
        return load_profiles(configured, tool_names=set(default_registry.tools))
    except InvalidInput as exc:
        raise ImproperlyConfigured(f"HORIZON_PROFILES_FILE: {exc}") from None


def build_runner(*, model: Model | None = None, worker_id: str | None = None, using: str = "default") -> Runner:
    return Runner(
        DjangoStore(using=using),
        model or default_model(),
        default_registry,
        worker_id=worker_id,
        lease_seconds=settings.HORIZON_LEASE_SECONDS,
        profiles=profiles(),
    )


def model_description(model: Model) -> str:
    if getattr(model, "offline", False):
        return f"{model.name} (offline scripted model: no LLM endpoint is configured)"
    return model.name
