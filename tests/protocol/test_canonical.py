"""canonicalize: RFC 8785 output, and ValidationError for what JCS cannot encode."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as _st

from meshnode.protocol.canonical import KnownContexts, _plain, canonicalize, compact_json
from meshnode.protocol.errors import ValidationError


def test_canonicalize__sorts_keys_and_compacts() -> None:
    assert canonicalize({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'


def test_canonicalize__ecmascript_numbers_and_unicode() -> None:
    # RFC 8785 §3.2.2.3: 1e21 and 1.0 serialise the ECMAScript way; text stays UTF-8.
    assert canonicalize([1.0, 1e21, 0.000001, "€"]) == '[1,1e+21,0.000001,"€"]'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**60, {1: "x"}, {"a": object()}])
def test_canonicalize__unencodable_raises_validation_error(value: object) -> None:
    with pytest.raises(ValidationError):
        canonicalize(value)


# --- the json.dumps fast path must give rfc8785's exact bytes --------------------------------

_json_values = _st.recursive(
    _st.none() | _st.booleans() | _st.text()
    | _st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | _st.floats(allow_nan=False, allow_infinity=False)
    | _st.floats(min_value=-200, max_value=200)
    | _st.sampled_from([1e-4, 9.999e-5, 1e16, 9999999999999998.0, 0.1, -0.0, 0.0, 45.0]),
    lambda children: _st.lists(children, max_size=4)
    | _st.dictionaries(_st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(value=_json_values)
def test_canonicalize__fast_path_matches_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValidationError):
            canonicalize(value)
        return
    assert canonicalize(value) == expected


def test_canonicalize__control_characters_and_u2028_match_rfc8785() -> None:
    value = {"k\u007f": "".join(chr(c) for c in range(0x20)) + "\u2028\u2029\"\\é😀",
             "\ue000": 1, "😀": 2}
    assert canonicalize(value) == rfc8785.dumps(value)


# --- a known @context: its canonical form computed once, the same bytes -------------------

_KNOWN = [{"vf": "https://w3id.org/valueflows/ont/vf#", "n": {"@id": "vf:n", "@type": "@id"}},
          "https://www.w3.org/ns/activitystreams"]
_known_keys = _st.sampled_from(["id", "type", "@id", "@base", "@context2", "#", "0", "é", "z"])


@settings(max_examples=300)
@given(rest=_st.dictionaries(_st.text(max_size=6) | _known_keys, _json_values, max_size=5),
       context=_st.sampled_from([_KNOWN, _KNOWN[1], [_KNOWN[1], _KNOWN[0]], [True], None]))
def test_canonicalize__known_context_gives_the_same_bytes(rest: dict[str, object],
                                                         context: object) -> None:
    # Given a document whose @context may be a known one, with any other keys (some sorting
    # before "@context"), when it is canonicalised with and without the known contexts
    known = KnownContexts.of([_KNOWN])
    document = {"@context": context, **rest} if context is not None else rest
    try:
        expected = rfc8785.dumps(document)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValidationError):
            canonicalize(document, known)
        return
    # Then both give rfc8785's exact bytes, and so do the known contexts narrowed to the
    # document's own (a proof's two hashes)
    assert canonicalize(document, known) == expected
    narrowed = known.narrowed(document.get("@context"))
    assert canonicalize(document, narrowed) == expected
    assert canonicalize({"@context": document.get("@context"), "x": 1}, narrowed) == (
        rfc8785.dumps({"@context": document.get("@context"), "x": 1}))


def test_canonicalize__a_known_context_is_only_equal_json_not_python_equal() -> None:
    # Given a context known with a string, and a document whose context differs only where
    # Python's == would not see it (1 == True): such contexts cannot be declared known
    with pytest.raises(TypeError):
        KnownContexts.of([{"@version": 1}])
    known = KnownContexts.of([["https://example.org/ns"]])
    # When a document's context is another value, then its own bytes are used
    document = {"@context": ["https://example.org/ns", {"a": True}], "id": "x"}
    assert canonicalize(document, known) == rfc8785.dumps(document)


def test_known_contexts__keep_their_own_copy() -> None:
    # Given a known context built from a list the caller later changes
    context = ["https://example.org/ns"]
    known = KnownContexts.of([context])
    context.append("https://example.org/other")
    # Then a document with the changed list is canonicalised as it is
    document = {"@context": context, "id": "x"}
    assert canonicalize(document, known) == rfc8785.dumps(document)


# --- orjson writes the fast path's bytes: every escape, every plain float -----------------

_EVERY_CODE_POINT = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000)


def test_canonicalize__every_code_point_is_written_as_rfc8785_writes_it() -> None:
    # Given a string and a key holding every code point outside the surrogates
    value = {"k": _EVERY_CODE_POINT, _EVERY_CODE_POINT[:0xD7FF]: [_EVERY_CODE_POINT]}
    # Then the fast path writes rfc8785's bytes, and compact_json json's text
    assert canonicalize(value) == rfc8785.dumps(value)
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=500)
@given(number=_st.floats(min_value=1e-4, max_value=1e16, exclude_max=True)
       | _st.floats(min_value=-1e16, max_value=-1e-4, exclude_min=True))
def test_canonicalize__plain_floats_are_written_as_rfc8785_writes_them(number: float) -> None:
    assert canonicalize([number]) == rfc8785.dumps([number])
    assert compact_json([number]) in (None, json.dumps([number], separators=(",", ":")))


@settings(max_examples=300)
@given(value=_json_values, context=_st.sampled_from([_KNOWN, _KNOWN[1], [True], None]))
def test_compact_json__writes_what_json_dumps_writes(value: object, context: object) -> None:
    # Given any JSON value, or a document whose @context may be a known one
    known = KnownContexts.of([_KNOWN])
    document = value if context is None else {"@context": context, "v": value}
    expected = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # When compact_json writes it, then it writes json's text, or leaves it to json
    text = compact_json(document, known)
    assert text is None or text == expected
    if context is not None and context != [True] and text is None:
        assert compact_json(value) is None  # only the value's own content declines


def test_compact_json__declines_what_orjson_would_write_differently() -> None:
    # NaN and infinities (orjson writes null), integral and exponent floats, big integers,
    # non-string keys, tuples, lone surrogates: json's path decides.
    for value in (float("nan"), float("inf"), 3.0, 1e16, 1e-5, 2**60, {1: "x"}, ("a",),
                  "\ud800", {"a": object()}):
        assert compact_json([value]) is None


def _nested(levels: int, inner: object) -> object:
    value = inner
    for _ in range(levels - 1):
        value = [value] if levels % 2 else {"k": value}
    return value


@pytest.mark.parametrize("levels", [64, 65, 66, 67])
@pytest.mark.parametrize("inner", [[], {}, [1, "x"], {"a": 0.5}])
def test_canonicalize__depth_cap_of_the_fast_path(levels: int, inner: object) -> None:
    # Containers 65 deep take the fast path, deeper ones rfc8785's: the same bytes either way
    value = _nested(levels, inner)
    assert _plain(value) is (levels <= 65)
    assert canonicalize(value) == rfc8785.dumps(value)
