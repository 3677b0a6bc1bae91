"""loads_capped / dumps_compact: hostile input is refused quickly and with typed errors."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.errors import JSONTooDeepError, MalformedJSONError, ValidationError
from meshnode.protocol.jsonparse import (
    _checked_loads,
    _fast_loads,
    dumps_compact,
    loads_capped,
    nesting_depth_exceeds,
)
from meshnode.protocol.parsing import reject_lone_surrogates


def test_loads_capped__parses_plain_object() -> None:
    assert loads_capped(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize("data", [
    b'{"a": 1, "a": 2}',
    b'{"type": "Follow", "x": {"id": "h", "id": "i"}}',  # nested
    b'[{"k": 1}, {"actor": "a", "actor": "b"}]',  # inside an array
    b'{"a": 1, "\\u0061": 2}',  # the same name, escaped
])
def test_loads_capped__duplicate_keys_are_refused(data: bytes) -> None:
    # Given an object naming one key twice (parsers disagree on which value wins)
    # When parsed, Then it is refused rather than one value silently chosen
    with pytest.raises(MalformedJSONError, match="duplicate key"):
        loads_capped(data)


def test_loads_capped__same_key_in_sibling_objects_is_fine() -> None:
    assert loads_capped(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_loads_capped__deep_nesting_rejected_fast(depth: int) -> None:
    # Given a document nested far beyond the cap
    data = b"[" * depth + b"]" * depth
    started = time.perf_counter()
    # When parsed, Then it is refused as too deep, not with RecursionError
    with pytest.raises(JSONTooDeepError):
        loads_capped(data)
    assert time.perf_counter() - started < 1.0


def test_loads_capped__deep_unclosed_objects_rejected() -> None:
    with pytest.raises(JSONTooDeepError):
        loads_capped(b'{"a":' * 100_000)


def test_loads_capped__exact_cap_accepted() -> None:
    assert loads_capped(b"[" * 64 + b"]" * 64, max_depth=64) is not None
    with pytest.raises(JSONTooDeepError):
        loads_capped(b"[" * 65 + b"]" * 65, max_depth=64)


def test_loads_capped__brackets_inside_strings_do_not_count() -> None:
    text = '["' + "[" * 500 + '\\"{{{"]'
    assert loads_capped(text.encode()) == ["[" * 500 + '"{{{']


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe{}", b"{", b'{"a":}', b"NaN", b"[Infinity]", b"[-Infinity]", b"", b"{'a': 1}"],
)
def test_loads_capped__malformed_rejected(data: bytes) -> None:
    with pytest.raises(MalformedJSONError):
        loads_capped(data)


def test_dumps_compact__no_spaces_utf8() -> None:
    assert dumps_compact({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_dumps_compact__nan_rejected() -> None:
    with pytest.raises(ValidationError):
        dumps_compact({"a": float("nan")})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_loads_capped__round_trips_dumps_compact(value: object) -> None:
    assert loads_capped(dumps_compact(value)) == value


@given(st.binary(max_size=200))
def test_loads_capped__arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    try:
        value = loads_capped(data)
    except MalformedJSONError:
        return  # the one error type allowed: anything else fails the test
    # What parses is ordinary JSON data that survives a round trip.
    assert loads_capped(dumps_compact(value)) == value


def test_nesting_depth_exceeds__escaped_backslash_ends_string() -> None:
    assert nesting_depth_exceeds(b'["\\\\", [[[[]]]]]', 3)


# --------------------------------------------------------------------------- orjson's fast path
# loads_capped reads a document with orjson only when that gives exactly what the standard
# library's path gives (``_fast_loads``); these compare the two on hostile and random text.


def _typed(value: object) -> object:
    """``value`` with each number's type and sign kept (1 == 1.0 and 0.0 == -0.0 otherwise)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, repr(value))


def _agrees(data: bytes) -> None:
    """The fast path either declines or reads what the checked path reads (which accepts)."""
    fast = _fast_loads(data)
    if fast is None:
        return
    assert _typed(fast) == _typed(_checked_loads(data))
    reject_lone_surrogates(fast)  # loads_capped looks for them on the checked path only


@pytest.mark.parametrize("data", [
    b'{"a": 1, "a": 2}', b'{"a": 1, "\\u0061": 2}', b'{"a": "x:y", "a": 1}',
    b'{"a:": 1, "a\\u003a": 2}', b'{"a": 1, "b": {"a": 1, "a": 1}}',
    b'[18446744073709551616]', b'[-9223372036854775809]', b'[9223372036854775807]',
    b'[1' + b'0' * 120 + b']', b'[0.' + b'1' * 120 + b']', b'[1e400]', b'[-1e400]',
    b'[1e-400]', b'[NaN]', b'[Infinity]', b'[-Infinity]', b'"\\ud800"', b'"\\udc00"',
    b'"\\ud83d\\ude00"', b'\xef\xbb\xbf{}', b'{"a": "\xff"}', b'[-0]', b'[-0.0]', b'null',
    b'[1.5e3, 1E+2, 0.1, 123456789012345678]', b'{"k": "\\u0000\\n\\"\\\\/"}', b'[1,]',
])
def test_fast_loads__agrees_with_the_checked_path_on_hostile_documents(data: bytes) -> None:
    # Given a document that orjson and the standard library could read differently
    # When both paths read it, Then the fast one declines or gives the very same value
    _agrees(data)


def test_fast_loads__declines_duplicate_keys_and_long_integers() -> None:
    assert _fast_loads(b'{"a": 1, "a": 2}') is None
    assert _fast_loads(b'{"a": "x", "b": {"c": 1, "c": "::"}}') is None
    assert _fast_loads(b'[18446744073709551616]') is None
    assert _fast_loads(b'{"a": 1, "b": [2.5, "c:d"]}') == {"a": 1, "b": [2.5, "c:d"]}


_number_text = st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
                             fullmatch=True)
_string_text = st.one_of(
    st.text(max_size=8).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text(max_size=8).map(json.dumps),  # \\u escapes, surrogate pairs
    st.sampled_from(['"a"', '"a:b"', '":"', '"\\u003a"', '"\\u0061"', '"\\ud800"', '"\\/"']),
)
_json_text = st.recursive(
    st.one_of(_number_text, _string_text, st.sampled_from(["true", "false", "null", "NaN"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(_string_text, inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")),
    max_leaves=12)


@given(_json_text)
def test_fast_loads__agrees_with_the_checked_path_on_random_documents(text: str) -> None:
    # Given random JSON text (repeated keys, escapes, long numbers, literals)
    # When both paths read it, Then the fast one declines or gives the very same value
    _agrees(text.encode("utf-8", "surrogatepass"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_fast_loads__reads_floats_as_the_standard_library_does(number: float) -> None:
    _agrees(f"[{number!r}, {number:.17e}, {number:.3e}]".encode())
