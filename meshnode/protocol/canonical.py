"""RFC 8785 JSON Canonicalization Scheme (JCS).

https://www.rfc-editor.org/rfc/rfc8785 — used by the ``eddsa-jcs-2022``
cryptosuite. Number formatting and non-ASCII text follow ECMAScript rules,
so we rely on the ``rfc8785`` package rather than ``json.dumps``, except on a
fast path: for values made only of dicts, lists, strings, booleans, null and
safe integers, with object keys below U+D800, ``json.dumps(sort_keys=True,
ensure_ascii=False)`` produces the very same bytes (same escapes, same key
order), about ten times faster. Anything else (floats, big integers, exotic
keys, lone surrogates) goes to ``rfc8785``; tests/protocol/test_canonical.py
checks the two agree.
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


def _plain(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is JSON whose canonical form ``json.dumps`` reproduces exactly."""
    if depth > 64:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, list):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and (not key or max(key) < _KEY_BOUND)
            and _plain(item, depth + 1)
            for key, item in value.items()
        )
    return False


def _fast(obj: Any) -> bytes | None:
    if not _plain(obj):
        return None
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
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
