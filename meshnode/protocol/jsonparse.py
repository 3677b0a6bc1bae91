"""Hostile-input-safe JSON parsing and compact serialisation.

The depth check runs *before* any decoder, as a linear scan over the
raw bytes, so a document nested 100,000 levels deep is rejected in linear time
and never reaches the recursive decoder (no ``RecursionError``).

Documents are read by orjson when that provably gives what the standard library's decoder
with our checks gives (``_fast_loads``: 5-8 µs instead of ~33 µs for a 3 KB signed Create,
issue 17); anything else, every error included, goes through :func:`json.loads` with the
hooks below, which name the problem.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from meshnode.protocol.errors import JSONTooDeepError, MalformedJSONError, ValidationError
from meshnode.protocol.parsing import reject_lone_surrogates

__all__ = ["DEFAULT_MAX_DEPTH", "dumps_compact", "loads_capped", "nesting_depth_exceeds"]

DEFAULT_MAX_DEPTH = 64

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


def nesting_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """Return True if ``data`` opens more than ``max_depth`` nested arrays/objects.

    Brackets inside JSON strings are skipped. The scan is linear and stops at
    the first level beyond the cap; malformed input is left for the parser.
    """
    # Fast path: too few brackets to ever exceed the cap.
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    depth = 0
    in_string = False
    escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def _reject_constant(name: str) -> NoReturn:
    # RFC 8259 §6: NaN and Infinity are not JSON numbers.
    raise MalformedJSONError(f"non-standard JSON literal {name!r} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 §4: names "SHOULD be unique"; when they are not, parsers disagree on which
    # value wins (first, last, error), so a signed body could mean one thing to the node
    # that verified it and another to the one that acts on it. Refuse instead of guessing.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise MalformedJSONError(f"duplicate key {name[:60]!r} in a JSON object")
            seen.add(name)
    return obj


# Longest number literal accepted. CPython refuses integers over 4,300 digits with a bare
# ValueError; nothing meshnode exchanges needs more than a few dozen digits.
MAX_NUMBER_CHARS = 100


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise MalformedJSONError(f"JSON number longer than {MAX_NUMBER_CHARS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text[: MAX_NUMBER_CHARS + 1])
    if len(text) > MAX_NUMBER_CHARS or not math.isfinite(value):  # 1e400 reads as inf
        raise MalformedJSONError("JSON number out of range")
    return value


# After ``bytes.translate`` with this table digits read "0" and every other byte " ": a run of
# 19 digits may be an integer beyond 64 bits (orjson reads those as floats), and a number
# longer than MAX_NUMBER_CHARS has a run of at least 33. Both go the standard library's way.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19
# Escapes of "0"-"?", ":" among them (\u003a, \u003A): the only way to write ":" inside a
# JSON string other than ":" itself. Rare; such documents go the standard library's way.
_ESCAPED_COLON = b"\\u003"


def _fast_loads(data: bytes, escapes: bool = True) -> Any | None:
    """``data`` read by orjson, or None when the standard library's path must decide.

    orjson refuses what that path refuses (NaN, Infinity, numbers out of range, lone
    surrogates, bad UTF-8, a BOM) and reads the same values, but for two things checked
    here: an integer beyond 64 bits (read as a float: no run of 19 digits is let through)
    and a key given twice in an object (orjson keeps the last). Each key has one ":" after
    it, so a document without escaped colons has as many ":" as orjson writes back for
    what it read only if no key was dropped; a dropped pair takes its ":" (and any in its
    strings) with it. Tests: tests/protocol/test_jsonparse.py compares both paths.
    ``escapes=False`` says ``data`` holds no backslash (so no escaped colon to look for).
    """
    if (escapes and _ESCAPED_COLON in data) or _LONG_DIGIT_RUN in data.translate(_DIGITS_ONLY):
        return None
    import orjson  # on the first JSON body read (0.2 MB resident): not at start (idle RSS)

    try:
        document = orjson.loads(data)
        written = orjson.dumps(document)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    return document if written.count(b":") == data.count(b":") else None


def loads_capped(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON ``data``, refusing documents nested deeper than ``max_depth``.

    Raises :class:`JSONTooDeepError` for excessive nesting and
    :class:`MalformedJSONError` for non-UTF-8 bytes, invalid JSON, an object
    with the same key twice, the ``NaN``/``Infinity`` literals or numbers out of range,
    and :class:`ValidationError` (naming the field) for strings holding a lone surrogate.
    """
    if nesting_depth_exceeds(data, max_depth):
        raise JSONTooDeepError(f"JSON nests deeper than {max_depth} levels")
    # One byte looked for by memchr: most documents have no escape at all, and then there is
    # no escaped colon to look for.
    document = _fast_loads(data, escapes=b"\\" in data)
    if document is None:
        document = _checked_loads(data)
        if b"\\u" in data:  # only an escape can produce a lone surrogate from valid UTF-8;
            reject_lone_surrogates(document)  # orjson refuses them (the fast path declines)
    return document


def _checked_loads(data: bytes) -> Any:
    """The standard library's decoder with the hooks above: each refusal named."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSONError("JSON body is not valid UTF-8") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                          parse_float=_parse_float, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise MalformedJSONError(f"invalid JSON: {exc.msg} at offset {exc.pos}") from exc
    except RecursionError as exc:  # defence in depth; the scan above should prevent it
        raise JSONTooDeepError("JSON nests too deeply") from exc


def dumps_compact(obj: Any) -> bytes:
    """Serialise ``obj`` as compact UTF-8 JSON (no spaces, no NaN/Infinity).

    Raises :class:`ValidationError` if ``obj`` holds values JSON cannot encode.
    """
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"value cannot be encoded as JSON: {exc}") from exc
    return text.encode("utf-8")
