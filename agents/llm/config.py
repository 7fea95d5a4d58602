"""One endpoint's configuration. Nothing here reads the environment: settings build this once."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.types import Usage

ONE_MIB = 1024 * 1024
# The openai SDK sleeps between its attempts with an exponential backoff capped at this many
# seconds (openai._constants.MAX_RETRY_DELAY). Copied, not imported: the SDK takes half a second to
# import and every process reads the settings. A server's Retry-After header can make the SDK wait
# longer (up to 120 s per retry); no setting bounds that, so it is left to the soft limit to catch.
SDK_MAX_BACKOFF_SECONDS = 8.0


def llm_call_worst_case(timeout: float, max_retries: float) -> float:
    """The longest one model call can take: every SDK attempt times out, with the longest backoff between."""
    return (max_retries + 1) * timeout + max_retries * SDK_MAX_BACKOFF_SECONDS


def tick_limits(call_worst_case: float, soft: float, hard: float) -> tuple[float, float]:
    """A tick's (soft, hard) time limits when one model call may take `call_worst_case` seconds.

    The configured limits, unless a profile allows longer calls (a reasoning model that thinks for
    minutes): then the limits follow the call, each a margin later (the configured gap between the
    soft and hard limits, at least 30 s).
    """
    if call_worst_case < soft:
        return soft, hard
    margin = max(hard - soft, 30.0)
    return call_worst_case + margin, call_worst_case + 2 * margin


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    base_url: str  # e.g. "https://api.openai.com/v1" or a local OpenAI-compatible server
    api_key: str = field(repr=False)  # kept out of repr so that logging a config never leaks it
    model: str
    timeout: float = 60.0  # seconds, per HTTP attempt
    # The SDK retries inside one call; Celery retries the whole tick as well. Two layers multiply each
    # other's attempts, so the SDK layer stays small.
    max_retries: int = 1
    max_output_bytes: int = ONE_MIB  # the response body is never read past this
    max_tokens: int | None = None
    input_price_per_mtok: float = 0.0  # USD per million prompt tokens
    output_price_per_mtok: float = 0.0  # USD per million completion tokens
    name: str = ""  # for display and as the circuit-breaker key; defaults to the model

    def __post_init__(self) -> None:
        if not self.base_url or not self.model:
            raise ValueError("an endpoint needs a base_url and a model")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.max_output_bytes <= 0:
            raise ValueError(f"max_output_bytes must be positive, got {self.max_output_bytes}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive when set, got {self.max_tokens}")
        if self.input_price_per_mtok < 0 or self.output_price_per_mtok < 0:
            raise ValueError("prices cannot be negative")

    @property
    def display_name(self) -> str:
        return self.name or self.model

    def cost_usd(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_price_per_mtok + usage.completion_tokens * self.output_price_per_mtok
        ) / 1_000_000
