"""The configured OpenAI-compatible endpoint, read from the settings: chat models (tasks_app/runtime.py)
and embeddings (tasks_app/recall_store.py) both call it, so it imports neither."""

from __future__ import annotations

from agents.llm.config import EndpointConfig
from tasks_app.conf import settings


def llm_configured() -> bool:
    return bool(settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY)


def endpoint_config(model: str, *, timeout: float = 0.0, max_retries: int | None = None) -> EndpointConfig:
    """The configured endpoint for one model; a profile may shorten the timeout or change the retries."""
    return EndpointConfig(
        base_url=settings.OPENAI_BASE_URL or "https://api.openai.com/v1",
        api_key=settings.OPENAI_API_KEY or "not-needed",  # local servers (vLLM, Ollama, llama.cpp) ignore it
        model=model,
        # A profile may allow longer calls (a reasoning model), up to HORIZON_LLM_MAX_TIMEOUT; its
        # ticks' time limits follow (profile_tick_limits), the heartbeat keeps its lease meanwhile.
        timeout=min(timeout, settings.HORIZON_LLM_MAX_TIMEOUT) if timeout else settings.HORIZON_LLM_TIMEOUT,
        max_retries=settings.HORIZON_LLM_MAX_RETRIES if max_retries is None else max_retries,
        max_output_bytes=settings.HORIZON_LLM_MAX_OUTPUT_BYTES,
        max_tokens=settings.HORIZON_LLM_MAX_TOKENS,
        input_price_per_mtok=settings.HORIZON_LLM_PRICE_INPUT_PER_MTOK,
        output_price_per_mtok=settings.HORIZON_LLM_PRICE_OUTPUT_PER_MTOK,
    )
