"""RFC 8941 structured fields: round trips, the RFC's own examples, and typed refusals."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol import structured
from meshnode.protocol.errors import SignatureError
from meshnode.protocol.structured import (
    BareItem,
    SFInnerList,
    SFItem,
    Token,
    parse_dictionary,
    serialize_bare,
    serialize_inner_list,
    serialize_params,
)

KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,8}", fullmatch=True)
bare_items: st.SearchStrategy[BareItem] = st.one_of(
    st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.binary(max_size=40),
    st.booleans(),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,10}", fullmatch=True).map(Token),
)
params = st.dictionaries(keys, bare_items, max_size=3).map(lambda d: tuple(d.items()))
items = st.builds(SFItem, bare_items, params)
members = st.one_of(items, st.builds(SFInnerList, st.lists(items, max_size=4).map(tuple), params))


def _serialize_member(member: SFItem | SFInnerList) -> str:
    if isinstance(member, SFInnerList):
        return serialize_inner_list(member)
    return serialize_bare(member.value) + serialize_params(member.params)


@given(st.dictionaries(keys, members, min_size=1, max_size=4))
def test_parse_dictionary__round_trips_what_we_serialize(
    dictionary: dict[str, SFItem | SFInnerList],
) -> None:
    text = ", ".join(f"{key}={_serialize_member(value)}" for key, value in dictionary.items())
    assert parse_dictionary(text) == dictionary


def test_parse_dictionary__rfc9421_example_fields() -> None:
    parsed = parse_dictionary(
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    inner = parsed["sig-b26"]
    assert isinstance(inner, SFInnerList)
    assert [i.value for i in inner.items][:2] == ["date", "@method"]
    assert dict(inner.params) == {"created": 1618884473, "keyid": "test-key-ed25519"}
    signature = parse_dictionary("sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v"
                                 "9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:")["sig-b26"]
    assert isinstance(signature, SFItem)
    assert isinstance(signature.value, bytes)
    assert len(signature.value) == 64


def test_parse_dictionary__escaped_quote_and_backslash() -> None:
    parsed = parse_dictionary(r'a="say \"hi\" \\ bye"')["a"]
    assert isinstance(parsed, SFItem)
    assert parsed.value == 'say "hi" \\ bye'


@pytest.mark.parametrize("text", [
    'a="unterminated', 'a="bad \\x escape"', 'a="tab\there"', "a=:not base64!:", "a=:abc",
    "A=1", "a=1,", "a=1.5", "a=1234567890123456", "a=(1 2", "a=?2", "a=@x", "=1",
    "a=" + "1" * 20_000,
])
def test_parse_dictionary__malformed_is_a_signature_error(text: str) -> None:
    with pytest.raises(SignatureError):
        parse_dictionary(text)


@given(st.text(max_size=60))
def test_parse_dictionary__any_text_parses_or_is_refused_with_a_typed_error(text: str) -> None:
    # Anything but SignatureError escaping fails the test; what parses is well formed.
    with contextlib.suppress(SignatureError):
        parsed = parse_dictionary(text)
        assert all(KEY.fullmatch(key) for key in parsed)
        assert all(isinstance(member, SFItem | SFInnerList) for member in parsed.values())


FRAGMENTS = ['sig1=', '(', ')', '"', '"@method"', '"a b"', ' ', '  ', ';', '=', ',', 'a',
             ':', 'AA', 'QUJD', 'sha-256=', '+/', '==',
             'created', 'keyid', '1', '-', '.', '1234567890123456', '123456789012345',
             '?1', '?0', ':AA==:', '\\', '\\"', 'tok/x:y', '*', '\t', 'A', 'é']


def _general(text: str) -> object:
    """``parse_dictionary`` with the fast paths off (patterns that never match)."""
    never = re.compile(r"(?!)")
    saved = structured._PLAIN_LIST_RE, structured._PARAM_RE, structured._BYTES_FIELD_RE
    structured._PLAIN_LIST_RE, structured._PARAM_RE, structured._BYTES_FIELD_RE = (never,) * 3
    try:
        return _outcome(text)
    finally:
        structured._PLAIN_LIST_RE, structured._PARAM_RE, structured._BYTES_FIELD_RE = saved


def _outcome(text: str) -> object:
    try:
        return parse_dictionary(text)
    except SignatureError as exc:
        return str(exc)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_parse_dictionary__fast_paths_read_every_field_as_the_general_parser(
        text: str) -> None:
    # Given any field made of the pieces signatures use (and their malformed neighbours)
    # When it is parsed with the fast paths and without them
    # Then both give the same members, or the same error at the same offset
    assert _outcome(text) == _general(text)


def test_parse_dictionary__fast_paths_on_a_signature_input() -> None:
    # Given a typical Signature-Input, and neighbours the fast paths must leave alone
    texts = ['sig1=("@method" "@target-uri");created=1733200000;keyid="http://127.0.0.1:1/u#k"'
             ';alg="ed25519";tag=tok/x;flag',
             'sig1=("a";req "b");x=?1', 'sig1=("a\\"b");created=1234567890123456',
             'sig1=("a""b")', 'sig1=();n=1.5', 'sig1=:AA==:', 'sha-256=:AA=:', 'a=:A:',
             'sig1=:AA==:;x', ' sig1=:AA==:', 'sig1=:AA==: ', 'sig1=:AA==:, b=:AA==:',
             'sig1=::']
    # Then each is read exactly as the general parser reads it
    for text in texts:
        assert _outcome(text) == _general(text), text
    assert isinstance(_outcome(texts[0]), dict)
