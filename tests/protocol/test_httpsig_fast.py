"""RFC 9421's usual Signature-Input read without the general parser: the same result, always."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.errors import SignatureError
from meshnode.protocol.httpsig import rfc9421
from meshnode.protocol.httpsig.common import ParsedSignature
from meshnode.protocol.structured import (
    MAX_FIELD_LEN,
    SFInnerList,
    SFItem,
    parse_dictionary,
    serialize_inner_list,
)

URL = "http://127.0.0.1:8080/inbox"
SIGNATURE = "sig1=:" + "A" * 86 + "==:"
HEADERS = [("Date", "Thu, 03 Dec 2026 16:42:46 GMT"), ("Content-Digest", "sha-256=:AA==:"),
           ("Host", "127.0.0.1:8080")]

keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
plain = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                              blacklist_characters='"\\'), max_size=12)
values = st.one_of(st.integers(-(10**15) + 1, 10**15 - 1), plain)
inner_lists = st.builds(
    SFInnerList,
    st.lists(plain.map(SFItem), max_size=5).map(tuple),
    st.dictionaries(keys, values, max_size=4).map(lambda d: tuple(d.items())))

# Pieces of Signature-Input fields: the usual ones and their malformed or unusual neighbours.
FRAGMENTS = ['sig1=', 'b=', '(', ')', '"', '"@method"', '"a b"', '"a)b"', ' ', ';', '=', ',',
             ';created=', ';keyid=', ';alg=', '"ed25519"', '"k;x=1"', '1', '0', '-', '-0',
             '01', '1733200000', '1234567890123456', '.5', '?1', 'tok', ':AA==:', '\\"', '\t']


def _general(method: str, url: str, headers: list[tuple[str, str]]) -> object:
    saved = rfc9421._usual_input
    rfc9421._usual_input = lambda field: None
    try:
        return _outcome(method, url, headers)
    finally:
        rfc9421._usual_input = saved


def _outcome(method: str, url: str, headers: list[tuple[str, str]]) -> ParsedSignature | str:
    try:
        return rfc9421.parse_rfc9421(method, url, headers)
    except SignatureError as exc:
        return f"{type(exc).__name__}: {exc}"


def _same_as_general(field: str) -> None:
    usual = rfc9421._usual_input(field)
    if usual is not None:
        label, components, params, params_str = usual
        inner = SFInnerList(tuple(SFItem(name) for name in components), params)
        assert parse_dictionary(field) == {label: inner}
        assert serialize_inner_list(inner) == params_str
        assert field == f"{label}={params_str}"
    headers = [*HEADERS, ("Signature-Input", field), ("Signature", SIGNATURE)]
    assert _outcome("POST", URL, headers) == _general("POST", URL, headers)


@given(st.sampled_from(["sig1", "a", "*x-1"]), inner_lists)
def test_usual_input__takes_every_canonical_field_and_reads_it_as_the_general_parser(
        label: str, inner: SFInnerList) -> None:
    # Given a Signature-Input written as RFC 8941 serialises it (plain strings and integers)
    field = f"{label}={serialize_inner_list(inner)}"
    # When it is read by the fast path
    usual = rfc9421._usual_input(field)
    # Then the fast path takes it, and both readings give the same signature (or error)
    assert usual == (label, tuple(item.value for item in inner.items), inner.params,
                     serialize_inner_list(inner))
    _same_as_general(field)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=24).map("".join))
def test_usual_input__any_field_reads_as_the_general_parser(text: str) -> None:
    # Given any field made of the pieces Signature-Input uses (and malformed neighbours)
    # When parse_rfc9421 reads it with the fast path and without
    # Then both give the same ParsedSignature, or the same error
    _same_as_general("sig1=" + text)
    _same_as_general(text)


def test_usual_input__leaves_unusual_fields_to_the_general_parser() -> None:
    # Given fields the general parser reads but whose text is not their own serialisation
    unusual = ['sig1=("a");created=01', 'sig1=("a");n=-0', 'sig1=("a");k="x";k="y"',
               'sig1=("a"  "b")', 'sig1=( "a")', 'sig1=("a"); k=1', 'sig1=("a");t=tok',
               'sig1=("a");f', 'sig1=("a";p=1)', 'sig1=("a\\"b")', 'sig1=("a"), sig2=("b")',
               'sig1=("a");' + "k=" + "1" * 16, "sig1=(" + '"a" ' * (MAX_FIELD_LEN // 4) + '"a")']
    for field in unusual:
        # Then the fast path declines each, and the signature reads as the general parser's
        assert rfc9421._usual_input(field) is None, field
        _same_as_general(field)


@given(st.sampled_from(["GET", "POST"]),
       st.from_regex(r"https?://[a-z0-9.]{1,12}(:[0-9]{1,5})?(/[a-z0-9%/]{0,12})?(\?[a-z=&]{0,8})?",
                     fullmatch=True))
def test_derived_components__kept_ones_are_those_of_a_fresh_split(method: str, url: str) -> None:
    # Given a request URL, When its derived components are asked for twice (kept the second
    # time), Then both are what splitting that URL gives
    try:
        fresh = rfc9421._split_components(method, url)
    except SignatureError:
        return
    assert rfc9421._derived_components(method, url) == fresh
    assert rfc9421._derived_components(method, url) == fresh


def test_derived_components__kept_for_a_bounded_number_of_short_urls() -> None:
    # Given a sender posting to many distinct URLs, some of them long
    rfc9421._kept_components.cache_clear()
    for n in range(rfc9421.DERIVED_KEPT * 3):
        rfc9421._derived_components("POST", f"{URL}?n={n}")
    asked = rfc9421._kept_components.cache_info()
    long_url = URL + "?q=" + "a" * rfc9421.DERIVED_KEPT_URL
    components = rfc9421._derived_components("POST", long_url)
    # Then at most DERIVED_KEPT are kept, a long one never (not even asked for), and a kept
    # one cannot be changed by whoever reads it
    assert asked.currsize == rfc9421.DERIVED_KEPT
    assert rfc9421._kept_components.cache_info() == asked
    assert components["@target-uri"] == long_url
    kept = rfc9421._derived_components("POST", URL)
    with pytest.raises(TypeError):
        kept["@path"] = "/elsewhere"  # type: ignore[index]
