"""Start-up checks on settings that no single variable can validate on its own.

Pure functions of the values, so that tests call them directly. settings.py raises
ImproperlyConfigured with what they return; every process (manage.py, gunicorn, the Celery worker
and beat) imports the settings before doing any work, so a misconfiguration stops all of them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

# The openai SDK sleeps between its attempts with an exponential backoff capped at this many
# seconds (openai._constants.MAX_RETRY_DELAY). Copied, not imported: the SDK takes half a second to
# import and every process reads the settings. A server's Retry-After header can make the SDK wait
# longer (up to 120 s per retry); no setting bounds that, so it is left to the soft limit to catch.
SDK_MAX_BACKOFF_SECONDS = 8.0

TIMEOUT_NAMES = (
    "HORIZON_LLM_TIMEOUT",
    "CELERY_TASK_SOFT_TIME_LIMIT",
    "CELERY_TASK_TIME_LIMIT",
    "HORIZON_LEASE_SECONDS",
    "CELERY_VISIBILITY_TIMEOUT",
)


def llm_call_worst_case(timeout: float, max_retries: float) -> float:
    """The longest one model call can take: every SDK attempt times out, with the longest backoff between."""
    return (max_retries + 1) * timeout + max_retries * SDK_MAX_BACKOFF_SECONDS


def check_timeout_order(values: Mapping[str, float]) -> list[str]:
    """What is wrong with the timeouts, one message per violated pair; empty when they are in order.

    `values` maps each name of TIMEOUT_NAMES, and HORIZON_LLM_MAX_RETRIES, to its value in seconds
    (a count, for the retries). Each layer must give up before the next one would duplicate its work:

    - one model call, SDK retries included, ends before the Celery soft limit, so a slow endpoint
      surfaces as the client's TransientError (journaled, retried by policy) instead of
      SoftTimeLimitExceeded raised at an arbitrary point of the tick. The check uses
      (retries + 1) x timeout, not the timeout alone, because the SDK's retries happen inside the call;
    - the soft limit comes before the hard limit, so the tick gets a chance to clean up before the
      pool kills its process;
    - the hard limit comes before the lease expires: a lease is not renewed during a tick, so a tick
      still running when its lease expires could be run a second time by another worker;
    - the lease expires before Redis redelivers an unacked tick, and with a margin of the hard limit:
      a reserved message can wait behind the running tick for up to the hard limit before its own
      tick claims the lease, and a redelivered tick that finds the lease still held is acked as a
      no-op, leaving the task without a doorbell (tests/integration/test_celery_workers.py).
    """
    llm, soft, hard, lease, visibility = (values[name] for name in TIMEOUT_NAMES)
    retries = values["HORIZON_LLM_MAX_RETRIES"]

    problems = [f"{name} must be positive, got {values[name]:g} s" for name in TIMEOUT_NAMES if values[name] <= 0]
    if retries < 0:
        problems.append(f"HORIZON_LLM_MAX_RETRIES must be 0 or more, got {retries:g}")
    if problems:
        return problems  # an order among nonsensical values would only add noise

    call = llm_call_worst_case(llm, retries)
    if call >= soft:
        problems.append(
            f"HORIZON_LLM_TIMEOUT ({llm:g} s) x (HORIZON_LLM_MAX_RETRIES ({retries:g}) + 1)"
            f" + {SDK_MAX_BACKOFF_SECONDS:g} s SDK backoff per retry = {call:g} s, the longest one model call can take,"
            f" must be less than CELERY_TASK_SOFT_TIME_LIMIT ({soft:g} s)"
        )
    for (lower, low), (upper, high) in (
        (("CELERY_TASK_SOFT_TIME_LIMIT", soft), ("CELERY_TASK_TIME_LIMIT", hard)),
        (("CELERY_TASK_TIME_LIMIT", hard), ("HORIZON_LEASE_SECONDS", lease)),
        (("HORIZON_LEASE_SECONDS", lease), ("CELERY_VISIBILITY_TIMEOUT", visibility)),
    ):
        if low >= high:
            problems.append(f"{lower} ({low:g} s) must be less than {upper} ({high:g} s)")
    if lease < visibility <= lease + hard:  # when lease >= visibility, the pair above already says so
        problems.append(
            f"HORIZON_LEASE_SECONDS + CELERY_TASK_TIME_LIMIT ({lease:g} s + {hard:g} s = {lease + hard:g} s)"
            f" must be less than CELERY_VISIBILITY_TIMEOUT ({visibility:g} s)"
        )
    return problems


def timeout_order_message(problems: list[str]) -> str:
    return (
        "the timeouts are out of order; each layer must give up before the next one would duplicate its work"
        " (horizon_project/checks.py says why):\n  " + "\n  ".join(problems)
    )


# --- Secrets (HORIZON_ENV=production) ------------------------------------------------------------

# .env.example's placeholders (tests/test_deployment.py keeps them equal to the file's values).
PLACEHOLDERS = {
    "DJANGO_SECRET_KEY": "change-me-to-a-long-random-string",
    "HORIZON_AUDIT_KEY": "change-me-to-another-long-random-string",
}
MIN_SECRET_BITS = 128.0
ZLIB_OVERHEAD_BYTES = (
    11  # header, checksum and block framing of zlib.compress  # estimated from the value's own character frequencies
)
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def estimated_bits(value: str) -> float:
    """A rough lower bound on what guessing the value costs: the smaller of its characters' Shannon
    entropy times its length (0 for "xxxx"; about 6 bits a character for token_urlsafe) and the bits
    zlib needs for it (which catches repeated patterns such as "abcabcabc")."""
    if not value:
        return 0.0
    counts = {c: value.count(c) for c in set(value)}
    shannon = abs(sum(n * math.log2(n / len(value)) for n in counts.values()))
    compressed = 8.0 * max(0, len(zlib.compress(value.encode(), 9)) - ZLIB_OVERHEAD_BYTES)
    return min(shannon, compressed)


def secret_problem(name: str, value: str, *, min_length: int = 50) -> str | None:
    """Why a production secret is refused (one line), or None."""
    if not value:
        return f"{name} is required when HORIZON_ENV=production; generate one with {GENERATE}"
    if value == PLACEHOLDERS.get(name) or "change-me" in value.lower() or "insecure" in value.lower():
        return f"{name} is a placeholder (from .env.example or the development default); generate one with {GENERATE}"
    if len(value) < min_length:
        return f"{name} is {len(value)} characters; production needs at least {min_length}: generate one with {GENERATE}"
    bits = estimated_bits(value)
    if bits < MIN_SECRET_BITS:
        needed = f"at least {MIN_SECRET_BITS:.0f}"
        return f"{name} has too little entropy (about {bits:.0f} bits, {needed}); generate one with {GENERATE}"
    return None


def parse_old_keys(raw: str) -> dict[int, bytes]:
    """HORIZON_AUDIT_OLD_KEYS: comma-separated `version:key` pairs. ValueError says what is wrong."""
    keys: dict[int, bytes] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        version, sep, key = item.partition(":")
        if not sep or not version.strip().isdigit() or int(version) < 1 or not key:
            raise ValueError("HORIZON_AUDIT_OLD_KEYS must be comma-separated version:key pairs, versions 1 or more")
        keys[int(version)] = key.encode()
    return keys
