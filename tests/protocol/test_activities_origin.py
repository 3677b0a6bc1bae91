"""origin_of: the usual URL shape is read without urlsplit, and means what urlsplit reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.activities import _split_origin, origin_of
from meshnode.protocol.errors import ValidationError


def _either(read: Callable[[str], str], url: str) -> str:
    try:
        return read(url)
    except ValidationError:
        return "refused"


@pytest.mark.parametrize(("url", "origin"), [
    ("http://127.0.0.1:8080/users/a", "http://127.0.0.1:8080"),
    ("https://Example.ORG/x?y#z", "https://example.org"),
    ("https://example.org:443/a", "https://example.org"),
    ("http://example.org:080", "http://example.org"),
    ("http://a.b:0/", "http://a.b:0"),
])
def test_origin_of__usual_urls(url: str, origin: str) -> None:
    assert origin_of(url) == origin == _split_origin(url)


def test_origin_of__an_unclosed_ipv6_bracket_is_refused_as_a_bad_url() -> None:
    # Given a hostile id such as "http://[" (urlsplit raises a bare ValueError for it)
    # Then it is a ValidationError (a 422 at the door), not an unexpected error
    with pytest.raises(ValidationError):
        origin_of("http://[")


@pytest.mark.parametrize("url", [
    "http://a.b:65536/", "http://a.b:/", "ftp://a.b/", "http:///x", "http://a b/",
    "HTTP://A.B/", " http://a.b/", "http://u@a.b/", "http://[::1]:99/", "http://a\t.b/",
    "http://a.b:12ab/", "http://a.b\\c/", "https://é.fr/", "http://a.b:99999/",
])
def test_origin_of__unusual_urls_read_as_urlsplit_reads_them(url: str) -> None:
    # Given a URL outside the usual shape (or a hostile one)
    # When its origin is asked, Then the answer (or refusal) is urlsplit's
    assert _either(origin_of, url) == _either(_split_origin, url)


_piece = st.sampled_from(["http", "https", "HTTP", "ftp", "://", ":", "/", "?", "#", "@", "[",
                          "]", ".", "-", " ", "\t", "\n", "a", "B", "0", "9", "65535", "65536",
                          "443", "80", "é", "%41", "\\", "::1"])


@given(st.lists(_piece, max_size=12).map("".join))
def test_origin_of__agrees_with_urlsplit_on_random_urls(url: str) -> None:
    assert _either(origin_of, url) == _either(_split_origin, url)


@given(st.sampled_from(["http://", "https://"]),
       st.from_regex(r"[A-Za-z0-9.\-]{1,20}", fullmatch=True),
       st.one_of(st.none(), st.integers(0, 99999).map(str), st.just("")),
       st.sampled_from(["", "/", "/x?y", "#f", "?q", " /x", "@h/"]))
def test_origin_of__agrees_with_urlsplit_on_url_shaped_text(
        scheme: str, host: str, port: str | None, rest: str) -> None:
    url = scheme + host + ("" if port is None else ":" + port) + rest
    assert _either(origin_of, url) == _either(_split_origin, url)
