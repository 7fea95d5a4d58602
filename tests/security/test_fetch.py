"""fetch_url reaches only allowlisted hosts: other hosts, IP literals, redirects elsewhere, other
schemes, credentials and oversized bodies are refused with a clear tool error."""

from __future__ import annotations

import pytest

from agents.inmemory_store import InMemoryStore
from agents.tools import fetch
from agents.tools.fetch import fetch_url
from agents.tools.registry import ToolContext, ToolError
from tests.security.conftest import NO_LENGTH, LocalSite

pytestmark = pytest.mark.usefixtures("tool_limits")


def ctx() -> ToolContext:
    return ToolContext(task_id="t", step_index=0, idempotency_key="k", store=InMemoryStore())


def test_an_allowlisted_host_is_fetched(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=["127.0.0.1"])
    site.page("/hello", "hello from the allowed host")
    out = fetch_url(ctx(), url=site.url("/hello"))
    assert (out["status"], out["text"]) == (200, "hello from the allowed host")


def test_a_host_that_is_not_allowlisted_is_refused_before_any_request(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=["docs.example.com"])
    site.page("/hello", "secret internal page")
    with pytest.raises(ToolError, match=r"the address 127\.0\.0\.1 is not on the fetch allowlist"):
        fetch_url(ctx(), url=site.url("/hello"))
    with pytest.raises(ToolError, match="the host localhost is not on the fetch allowlist"):
        fetch_url(ctx(), url=site.url("/hello", host="localhost"))
    assert site.hits == []  # nothing was sent


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://[::1]/x", "the address ::1 is not on the fetch allowlist"),
        ("http://2130706433/x", "the host 2130706433 is not on the fetch allowlist"),  # 127.0.0.1 as an integer
        ("http://169.254.169.254/latest/meta-data/", "the address 169.254.169.254 is not on the fetch allowlist"),
        ("http://evil.example.com.attacker.net/", "not on the fetch allowlist"),
        ("file:///etc/passwd", "only http and https URLs can be fetched, not file"),
        ("ftp://docs.example.com/x", "only http and https URLs can be fetched, not ftp"),
        ("gopher://docs.example.com/x", "only http and https"),
        ("docs.example.com/x", "only http and https URLs can be fetched, not a URL without a scheme"),
        ("http://user:pw@docs.example.com/x", "URLs with credentials are refused"),
        ("http://docs.example.com/x\r\nHost: evil", "whitespace or control characters"),
    ],
)
def test_schemes_ip_literals_and_tricks_are_refused(url: str, error: str) -> None:
    fetch.configure(allowed_hosts=["docs.example.com", ".example.org"])
    with pytest.raises(ToolError, match=error):
        fetch_url(ctx(), url=url)


def test_suffix_entries_cover_subdomains_only() -> None:
    allowed = fetch.configure(allowed_hosts=[".example.org", "127.0.0.1"]).allowed_hosts
    assert fetch.host_allowed("api.example.org", allowed)
    assert not fetch.host_allowed("example.org.evil.net", allowed)
    assert not fetch.host_allowed("127.0.0.2", allowed)


def test_an_empty_allowlist_refuses_everything(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=[])
    with pytest.raises(ToolError, match="HORIZON_FETCH_ALLOWED_HOSTS is empty"):
        fetch_url(ctx(), url=site.url("/"))


def test_a_redirect_to_another_host_is_refused_and_one_within_the_allowlist_is_followed(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=["127.0.0.1"])
    site.page("/away", "", status=302, headers={"Location": site.url("/stolen", host="localhost")})
    site.page("/metadata", "", status=301, headers={"Location": "http://169.254.169.254/latest/"})
    site.page("/moved", "", status=302, headers={"Location": "/final"})
    site.page("/final", "arrived")
    with pytest.raises(ToolError, match=r"redirected to http://localhost:\d+/stolen, which is refused"):
        fetch_url(ctx(), url=site.url("/away"))
    with pytest.raises(ToolError, match="redirected to http://169.254.169.254/latest/, which is refused"):
        fetch_url(ctx(), url=site.url("/metadata"))
    assert "/stolen" not in site.hits
    assert fetch_url(ctx(), url=site.url("/moved"))["text"] == "arrived"


def test_a_redirect_loop_ends(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=["127.0.0.1"])
    site.page("/loop", "", status=302, headers={"Location": "/loop"})
    with pytest.raises(ToolError, match="more than 3 redirects"):
        fetch_url(ctx(), url=site.url("/loop"))


def test_oversized_bodies_are_refused_by_header_and_by_reading(site: LocalSite) -> None:
    fetch.configure(allowed_hosts=["127.0.0.1"], max_bytes=1000)
    site.page("/big", b"x" * 5000)
    with pytest.raises(ToolError, match="the body is 5000 bytes; the limit is 1000"):
        fetch_url(ctx(), url=site.url("/big"))
    # A server that leaves the length out is still cut off at the limit.
    site.routes["/unsaid"] = (200, {NO_LENGTH: "1"}, b"y" * 5000)
    with pytest.raises(ToolError, match="the body is larger than the limit of 1000 bytes"):
        fetch_url(ctx(), url=site.url("/unsaid"))
    site.page("/ok", b"z" * 1000)
    assert len(fetch_url(ctx(), url=site.url("/ok"))["text"]) == 1000
