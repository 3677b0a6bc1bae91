"""loads_capped / dumps_compact: hostile input is refused quickly and with typed errors."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.errors import JSONTooDeepError, MalformedJSONError, ValidationError
from meshnode.protocol.jsonparse import dumps_compact, loads_capped, nesting_depth_exceeds


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
