"""fetch_url: an HTTP GET limited to an allowlist of hosts (the HORIZON_FETCH_ALLOWED_HOSTS setting).

Refused, each with a clear tool error: schemes other than http and https; credentials in the URL;
hosts not on the list, IP literals included (an address is allowed only if it is listed as such);
a redirect to a host not on the list (every hop is checked; at most MAX_REDIRECTS); a body larger
than the limit (Content-Length is checked first, and reading stops at the limit whatever the
header says); a call that takes longer than the timeout, which bounds the whole call (redirects
included), not each read. With the list empty, the tool refuses every URL.

An allowlist entry is a host name (`docs.example.com`), an address (`127.0.0.1`), or a suffix
(`.example.com`: the domain's sub-domains). Note that a listed name is trusted to resolve to what
its owner says: the allowlist is about where the agent may go, not a defence against DNS.
"""

from __future__ import annotations

import http.client
import ipaddress
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

from agents import outbound
from agents.tools.registry import ToolContext, ToolError, tool

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class FetchConfig:
    allowed_hosts: tuple[str, ...] = ()
    max_bytes: int = 1024 * 1024
    timeout: float = 10.0


_config = FetchConfig()


def configure(**values: Any) -> FetchConfig:
    """Set the allowlist and limits (tasks_app.runtime does, from the settings)."""
    global _config
    if "allowed_hosts" in values:
        values["allowed_hosts"] = tuple(h.strip().lower() for h in values["allowed_hosts"] if h.strip())
    _config = replace(_config, **values)
    return _config


def config() -> FetchConfig:
    return _config


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        if host == entry:
            return True
        # A suffix entry covers names only: an address never matches by suffix.
        if entry.startswith(".") and not _is_ip(host) and host.endswith(entry):
            return True
    return False


def check_url(url: str, allowed: tuple[str, ...]) -> tuple[str, str, int, str]:
    """(scheme, host, port, path and query) of an allowed URL; ToolError says why one is not."""
    if any(c in url for c in "\x00\r\n\t "):
        raise ToolError("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ToolError(f"malformed URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs can be fetched, not {parts.scheme or 'a URL without a scheme'}")
    if parts.username is not None or parts.password is not None:
        raise ToolError("URLs with credentials are refused")
    host = (parts.hostname or "").lower()
    if not host:
        raise ToolError(f"the URL {url!r} has no host")
    if not host_allowed(host, allowed):
        kind = "the address" if _is_ip(host) else "the host"
        listed = ", ".join(allowed) if allowed else "none: HORIZON_FETCH_ALLOWED_HOSTS is empty"
        raise ToolError(f"{kind} {host} is not on the fetch allowlist (allowed: {listed})")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target


def _get(scheme: str, host: str, port: int, target: str, cfg: FetchConfig, timeout: float) -> tuple[int, dict[str, str], bytes]:
    # `timeout` is what is left of the call's total: the whole exchange ends by then (agents/outbound.py).
    headers = {"User-Agent": "horizon-fetch/1", "Accept-Encoding": "identity"}
    try:
        answer = outbound.exchange("GET", scheme, host, port, target, timeout=timeout, headers=headers, max_bytes=cfg.max_bytes)
    except outbound.TotalTimeout:
        raise ToolError(f"fetching {scheme}://{host}:{port}{target} took longer than the {cfg.timeout:g} s limit") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ToolError(f"fetching {scheme}://{host}:{port}{target} failed: {exc}") from None
    if answer.too_large:
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cfg.max_bytes:
            raise ToolError(f"the body is {declared} bytes; the limit is {cfg.max_bytes}")
        raise ToolError(f"the body is larger than the limit of {cfg.max_bytes} bytes")
    return answer.status, answer.headers, answer.body


@tool(idempotent=True, risk="external")
def fetch_url(ctx: ToolContext, url: str) -> dict[str, Any]:
    """Fetch a web page or file over HTTP(S) with GET. Only hosts on the operator's allowlist can be reached."""
    cfg = _config
    deadline = time.monotonic() + cfg.timeout  # one total for the call, redirects included
    for hop in range(MAX_REDIRECTS + 1):
        try:
            scheme, host, port, target = check_url(url, cfg.allowed_hosts)
        except ToolError as exc:
            raise ToolError(f"redirected to {url}, which is refused: {exc}" if hop else str(exc)) from None
        left = deadline - time.monotonic()
        if left <= 0:
            raise ToolError(f"fetching {url} took longer than the {cfg.timeout:g} s limit (after {hop} redirects)")
        status, headers, body = _get(scheme, host, port, target, cfg, left)
        if 300 <= status < 400 and "location" in headers:
            url = urljoin(url, headers["location"])  # checked against the allowlist at the top of the loop
            continue
        return {
            "url": url,
            "status": status,
            "content_type": headers.get("content-type", ""),
            "text": body.decode("utf-8", errors="replace"),
        }
    raise ToolError(f"more than {MAX_REDIRECTS} redirects")
