"""canonicalize: RFC 8785 output, and ValidationError for what JCS cannot encode."""

from __future__ import annotations

import pytest

from meshnode.protocol.canonical import canonicalize
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
