"""RFC 8785 JSON Canonicalization Scheme (JCS).

https://www.rfc-editor.org/rfc/rfc8785 — used by the ``eddsa-jcs-2022``
cryptosuite. Number formatting and non-ASCII text follow ECMAScript rules,
so we rely on the ``rfc8785`` package rather than ``json.dumps``, except on a
fast path: for values made only of dicts, lists, strings, booleans, null and
safe integers and "plain" floats, with object keys below U+D800,
``json.dumps(sort_keys=True, ensure_ascii=False)`` produces the very same bytes
(same escapes, same key order), and so does orjson with ``OPT_SORT_KEYS``, about
ten times faster again (a listing: 17 -> 2 µs). A plain float is finite,
not integral, and 1e-4 <= |x| < 1e16: there Python's ``repr``, orjson and ECMAScript's
Number::toString all write the shortest round-tripping digits in positional
notation (RFC 8785 §3.2.2.3), which covers coordinates such as 45.764. Anything
else (other floats, big integers, exotic keys, lone surrogates) goes to
``rfc8785``; tests/protocol/test_canonical.py checks the three agree (every code point's
escape, floats across the plain range, hypothesis-made documents).

``compact_json``: the same fast path without sorting gives the compact JSON
``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes (what we store and send).

``KnownContexts``: a signed JSON-LD document's ``@context`` is often one we know (our own
listings carry ``vocab.LISTING_CONTEXT``: a third of a listing's bytes, hashed twice per
proof, in the document and in the proof options). Its canonical form is computed once and
placed first, where JCS puts it when no other key sorts before ``"@context"``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from meshnode.protocol.errors import ValidationError

__all__ = ["KnownContexts", "canonicalize", "compact_json"]

_MAX_SAFE_INT = 2**53 - 1
# Code-point order equals JCS's UTF-16 code-unit order below the surrogate range.
_KEY_BOUND = "\ud800"
_MAX_DEPTH = 64
# Where Python's float repr and ECMAScript's Number::toString agree (see the docstring).
_MIN_PLAIN_FLOAT = 1e-4
_MAX_PLAIN_FLOAT = 1e16


def _plain(value: Any) -> bool:
    """True if ``value`` is JSON whose canonical form ``json.dumps`` reproduces exactly.

    Walked level by level rather than recursively: this runs on every signature, and the
    generator version cost a fifth of a payment's CPU time; a level at a time, the depth is
    counted once per level rather than carried with each value (a listing's document: 5.0
    -> 3.9 µs, issue 17). Strings, by far the most common members, are passed over where
    they are met instead of being queued (half the time of a listing's check).
    """
    level = [value]
    depth = 0
    while level:
        deep = depth > _MAX_DEPTH
        below: list[Any] = []
        queue = below.append
        for item in level:
            kind = type(item)
            if kind is dict:
                if deep:
                    return False
                for key, child in item.items():
                    if type(key) is not str or not (
                            key.isascii() or max(key, default="") < _KEY_BOUND):
                        return False
                    if type(child) is not str:
                        queue(child)
            elif kind is list:
                if deep:
                    return False
                for child in item:
                    if type(child) is not str:
                        queue(child)
            elif kind is int:
                if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                    return False
            elif kind is float:
                if not (_MIN_PLAIN_FLOAT <= abs(item) < _MAX_PLAIN_FLOAT) or item.is_integer():
                    return False
            elif not (item is None or kind is bool or kind is str):
                return False
        level = below
        depth += 1
    return True


def _orjson_dumps(obj: Any, *, sort_keys: bool) -> bytes | None:
    """orjson's bytes for a value ``_plain`` accepted; None for a lone surrogate (orjson
    refuses it: the caller's other path decides)."""
    import orjson  # on first use (0.2 MB resident): not at start (idle RSS, issue 17)

    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return None


def _fast(obj: Any, plain: bool = False) -> bytes | None:
    return _orjson_dumps(obj, sort_keys=True) if plain or _plain(obj) else None


@dataclass(frozen=True)
class KnownContexts:
    """``@context`` values with their canonical bytes, computed once (``of``)."""

    entries: tuple[tuple[Any, bytes], ...]

    @classmethod
    def of(cls, contexts: Sequence[Any]) -> KnownContexts:
        """Canonicalise each of ``contexts`` now. Each must be made of strings, lists and
        objects only: Python's ``==`` then means the very same JSON (``True == 1 == 1.0``
        would let another value pass for a known one)."""
        for context in contexts:
            if not _strings_only(context):
                raise TypeError("a known context holds only strings, lists and objects")
        # A copy: the caller's lists stay theirs to change. Written by rfc8785 itself: this
        # runs when a module is imported, and orjson loads only for the first document.
        return cls(tuple((copy.deepcopy(context), rfc8785.dumps(context))
                         for context in contexts))

    def canonical(self, context: Any) -> bytes | None:
        """The canonical bytes of ``context`` if it equals one of ours, else None."""
        for known, text in self.entries:
            if context is known or context == known:
                return text
        return None

    def narrowed(self, context: Any) -> KnownContexts:
        """These contexts cut down to the one ``context`` equals (none if none), held as
        that very object: looking it up again is an identity check. For several
        canonicalisations of one document in a row (a proof hashes its context twice),
        while that document does not change."""
        text = self.canonical(context)
        return KnownContexts(() if text is None else ((context, text),))


def _strings_only(value: Any) -> bool:
    if type(value) is str:
        return True
    if type(value) is list:
        return all(_strings_only(item) for item in value)
    if type(value) is dict:
        return all(type(key) is str and _strings_only(item) for key, item in value.items())
    return False


_NO_CONTEXT = object()
_CONTEXT_KEY = "@context"


def _with_known_context(obj: dict[str, Any], known: KnownContexts,
                        plain: bool = False) -> bytes | None:
    """``canonicalize(obj)`` made of the known canonical ``@context`` and the rest of the
    object, or None when the fast path does not apply (the caller takes the usual one)."""
    context = obj.get(_CONTEXT_KEY, _NO_CONTEXT)
    text = None if context is _NO_CONTEXT else known.canonical(context)
    if text is None:
        return None
    rest = {key: value for key, value in obj.items() if key != _CONTEXT_KEY}
    body = _fast(rest, plain)
    # _fast checked the keys are strings below U+D800, where code-point order is JCS's.
    if body is None or (rest and min(rest) < _CONTEXT_KEY):
        return None
    head = b'{"@context":' + text
    return head + b"}" if body == b"{}" else head + b"," + body[1:]


def compact_json(obj: Any, known: KnownContexts | None = None) -> str | None:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``, sooner, when the fast
    path provably writes the same (see the module's docstring); else None (the caller
    encodes with ``json``). ``known``: a top-level ``@context`` equal to one of these is
    not walked again (it is made of strings, lists and objects only)."""
    walked = obj
    if known is not None and type(obj) is dict and _CONTEXT_KEY in obj and (
            known.canonical(obj[_CONTEXT_KEY]) is not None):
        walked = {key: value for key, value in obj.items() if key != _CONTEXT_KEY}
    if not _plain(walked):
        return None
    data = _orjson_dumps(obj, sort_keys=False)
    return None if data is None else data.decode()


def canonicalize(obj: Any, known: KnownContexts | None = None, *,
                 plain: bool = False) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``obj``.

    ``known``: contexts whose canonical form is already computed (same result, sooner).
    ``plain``: ``obj`` is made of members of a document ``compact_json`` accepted with
    these ``known`` contexts (and of a top-level ``@context`` equal to that document's),
    so the fast path applies without walking it again (a received listing's proof hashes
    the document ``compact_json`` just wrote for storage: issue 17).
    Raises :class:`ValidationError` for values JCS cannot represent (NaN,
    infinities, integers beyond ±2**53, non-string keys, lone surrogates,
    unsupported types).
    """
    if known is not None and type(obj) is dict:
        spliced = _with_known_context(obj, known, plain)
        if spliced is not None:
            return spliced
    fast = _fast(obj, plain)
    if fast is not None:
        return fast
    try:
        result: bytes = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:
        raise ValidationError(f"value cannot be canonicalised (RFC 8785): {exc}") from exc
    return result
