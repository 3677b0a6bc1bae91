"""RFC 8785 JSON Canonicalization Scheme (JCS).

https://www.rfc-editor.org/rfc/rfc8785 — used by the ``eddsa-jcs-2022``
cryptosuite. Number formatting and non-ASCII text follow ECMAScript rules,
so we rely on the ``rfc8785`` package rather than ``json.dumps``.
"""

from __future__ import annotations

from typing import Any

import rfc8785

from meshnode.protocol.errors import ValidationError

__all__ = ["canonicalize"]


def canonicalize(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    Raises :class:`ValidationError` for values JCS cannot represent (NaN,
    infinities, integers beyond ±2**53, non-string keys, lone surrogates,
    unsupported types).
    """
    try:
        result: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:
        raise ValidationError(f"value cannot be canonicalised (RFC 8785): {exc}") from exc
    return result
