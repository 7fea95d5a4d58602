"""How strong a production secret is: one-line reasons to refuse a placeholder, short or low-entropy key.

Plain Python, so that the settings (start-up) and tasks_app (the webhook key) share one rule.
"""

from __future__ import annotations

import math
import zlib

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
