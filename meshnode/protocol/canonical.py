"""RFC 8785 JSON Canonicalization Scheme (JCS).

https://www.rfc-editor.org/rfc/rfc8785 — used by the ``eddsa-jcs-2022``
cryptosuite. Number formatting and non-ASCII text follow ECMAScript rules,
so we rely on the ``rfc8785`` package rather than ``json.dumps``, except on a
fast path: for values made only of dicts, lists, strings, booleans, null and
safe integers and "plain" floats, with object keys below U+D800,
``json.dumps(sort_keys=True, ensure_ascii=False)`` produces the very same bytes
(same escapes, same key order), about ten times faster. A plain float is finite,
not integral, and 1e-4 <= |x| < 1e16: there Python's ``repr`` and ECMAScript's
Number::toString both write the shortest round-tripping digits in positional
notation (RFC 8785 §3.2.2.3), which covers coordinates such as 45.764. Anything
else (other floats, big integers, exotic keys, lone surrogates) goes to
``rfc8785``; tests/protocol/test_canonical.py checks the two agree.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from meshnode.protocol.errors import ValidationError

__all__ = ["canonicalize"]

_MAX_SAFE_INT = 2**53 - 1
# Code-point order equals JCS's UTF-16 code-unit order below the surrogate range.
_KEY_BOUND = "\ud800"
_MAX_DEPTH = 64
# Where Python's float repr and ECMAScript's Number::toString agree (see the docstring).
_MIN_PLAIN_FLOAT = 1e-4
_MAX_PLAIN_FLOAT = 1e16
# Built once (json.dumps with options builds an encoder per call); it keeps no state.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> bool:
    """True if ``value`` is JSON whose canonical form ``json.dumps`` reproduces exactly.

    An explicit stack rather than recursion with generators: this runs on every signature,
    and the generator version cost a fifth of a payment's CPU time. Strings, by far the most
    common members, are passed over where they are met instead of being pushed (half the
    time of a listing's check).
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth > _MAX_DEPTH:
                return False
            for key, child in item.items():
                if type(key) is not str or not (key.isascii() or max(key, default="") < _KEY_BOUND):
                    return False
                if type(child) is not str:
                    stack.append((child, depth + 1))
        elif kind is list:
            if depth > _MAX_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in item if type(child) is not str)
        elif item is None or kind is bool or kind is str:
            continue
        elif kind is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        elif kind is float:
            if not (_MIN_PLAIN_FLOAT <= abs(item) < _MAX_PLAIN_FLOAT) or item.is_integer():
                return False
        else:
            return False
    return True


def _fast(obj: Any) -> bytes | None:
    if not _plain(obj):
        return None
    text = _ENCODER.encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None  # a lone surrogate: let rfc8785 raise the proper error


def canonicalize(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    Raises :class:`ValidationError` for values JCS cannot represent (NaN,
    infinities, integers beyond ±2**53, non-string keys, lone surrogates,
    unsupported types).
    """
    fast = _fast(obj)
    if fast is not None:
        return fast
    try:
        result: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:
        raise ValidationError(f"value cannot be canonicalised (RFC 8785): {exc}") from exc
    return result
