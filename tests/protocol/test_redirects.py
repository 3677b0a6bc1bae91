"""The post-login target check: every way a browser could be sent to another host is refused."""

from __future__ import annotations

import pytest

from meshnode.protocol.redirects import HOME, is_local_target, local_target

# Values as the handler receives them: aiohttp has already percent-decoded the query or form
# once, so "%09" in the URL arrives as a real tab and "%2509" arrives as "%09".
HOSTILE = [
    ("tab between slashes (issue 12)", "/\t/evil.example/phish"),
    ("newline between slashes", "/\n/evil.example/"),
    ("carriage return between slashes", "/\r/evil.example/"),
    ("CR LF: header splitting", "/\r\nSet-Cookie: x=1"),
    ("leading tab", "\t//evil.example/"),
    ("leading space", " //evil.example/"),
    ("NUL byte", "/\x00/evil.example/"),
    ("DEL", "/\x7f/evil.example/"),
    ("C1 control", "/\x85/evil.example/"),
    ("line separator", "/\u2028/evil.example/"),
    ("protocol-relative", "//evil.example/"),
    ("three slashes", "///evil.example/"),
    ("backslash", "/\\evil.example/"),
    ("two backslashes", "\\\\evil.example/"),
    ("slash backslash", "\\/evil.example/"),
    ("encoded tab, decoded once more", "/%09/evil.example/"),
    ("encoded newline", "/%0a/evil.example/"),
    ("encoded CR LF", "/%0d%0aLocation:%20http://evil.example/"),
    ("encoded slash", "/%2fevil.example/"),
    ("encoded slash, upper case", "/%2F%2Fevil.example/"),
    ("encoded backslash", "/%5cevil.example/"),
    ("encoded backslash, upper case", "/%5C%5Cevil.example/"),
    ("absolute http URL", "http://evil.example/"),
    ("absolute https URL", "https://evil.example/"),
    ("scheme without slashes", "http:evil.example"),
    ("javascript URL", "javascript:alert(1)"),
    ("data URL", "data:text/html,<script>alert(1)</script>"),
    ("relative path", "evil.example/phish"),
    ("empty", ""),
    ("dot segment climbing to an empty segment", "/.//evil.example/"),
    ("parent segment", "/../evil.example/"),
    ("userinfo look-alike", "//user@evil.example/"),
    ("overlong", "/" + "a" * 600),
]

LOCAL = [
    ("home", "/", "/"),
    ("a listing", "/listings/abc123", "/listings/abc123"),
    ("a query with slashes in a value", "/search?q=//x&page=2", "/search?q=//x&page=2"),
    ("a fragment", "/admin/ledger?saved=bob#account-bob", "/admin/ledger?saved=bob#account-bob"),
    ("an encoded query kept as sent", "/search?q=caf%C3%A9", "/search?q=caf%C3%A9"),
    ("non-ASCII is percent-encoded for the header", "/search?q=café", "/search?q=caf%C3%A9"),
]


@pytest.mark.parametrize(("case", "target"), HOSTILE, ids=[case for case, _ in HOSTILE])
def test_local_target__refuses_every_way_to_another_host(case: str, target: str) -> None:
    assert not is_local_target(target), case
    assert local_target(target) == HOME


@pytest.mark.parametrize(("case", "target", "location"), LOCAL, ids=[c for c, _, _ in LOCAL])
def test_local_target__keeps_same_origin_paths(case: str, target: str, location: str) -> None:
    assert is_local_target(target), case
    assert local_target(target) == location
