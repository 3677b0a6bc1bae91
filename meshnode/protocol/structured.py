"""A minimal RFC 8941 Structured Field Values parser/serialiser.

Only what HTTP message signatures need (https://www.rfc-editor.org/rfc/rfc8941):
Dictionaries whose members are Items or Inner Lists, with Integer, String,
Token, Byte Sequence and Boolean bare items and parameters. Decimals are
rejected: no signature field uses them.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass
from typing import NoReturn

from meshnode.protocol.errors import SignatureError

__all__ = [
    "MAX_FIELD_LEN",
    "BareItem",
    "Params",
    "SFInnerList",
    "SFItem",
    "Token",
    "parse_dictionary",
    "serialize_bare",
    "serialize_inner_list",
    "serialize_params",
]

# Signature fields are a few hundred bytes; refuse anything absurd up front.
MAX_FIELD_LEN = 16_384

_KEY_FIRST = frozenset(string.ascii_lowercase + "*")
_KEY_CHARS = frozenset(string.ascii_lowercase + string.digits + "_-.*")
_TOKEN_FIRST = frozenset(string.ascii_letters + "*")
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/")
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=")


@dataclass(frozen=True)
class Token:
    """An RFC 8941 Token (an unquoted identifier)."""

    value: str


BareItem = int | str | bytes | bool | Token
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True)
class SFItem:
    """A bare item with its parameters."""

    value: BareItem
    params: Params = ()


@dataclass(frozen=True)
class SFInnerList:
    """An inner list of items with the list's own parameters."""

    items: tuple[SFItem, ...]
    params: Params = ()


class _Cursor:
    """Position in the field text; every error names the offset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def expect(self, char: str) -> None:
        if self.take() != char:
            self.fail(f"expected {char!r}")

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def fail(self, message: str) -> NoReturn:
        raise SignatureError(f"malformed structured field at offset {self.pos}: {message}")


def _parse_key(cur: _Cursor) -> str:
    if cur.peek() not in _KEY_FIRST or not cur.peek():
        cur.fail("expected a key")
    start = cur.pos
    while cur.peek() and cur.peek() in _KEY_CHARS:
        cur.pos += 1
    return cur.text[start : cur.pos]


def _parse_integer(cur: _Cursor) -> int:
    start = cur.pos
    if cur.peek() == "-":
        cur.pos += 1
    while cur.peek() and cur.peek() in string.digits:
        cur.pos += 1
    digits = cur.text[start : cur.pos]
    # RFC 8941 §3.3.1: at most 15 digits; decimals are not supported here.
    if digits in ("", "-") or len(digits.lstrip("-")) > 15 or cur.peek() == ".":
        cur.fail("invalid integer")
    return int(digits)


def _parse_string(cur: _Cursor) -> str:
    cur.expect('"')
    out: list[str] = []
    while True:
        char = cur.take()
        if char == "":
            cur.fail("unterminated string")
        if char == "\\":
            escaped = cur.take()
            if escaped not in ('"', "\\"):
                cur.fail("invalid escape in string")
            out.append(escaped)
        elif char == '"':
            return "".join(out)
        elif not (" " <= char <= "~"):
            cur.fail("non-printable character in string")
        else:
            out.append(char)


def _parse_token(cur: _Cursor) -> Token:
    start = cur.pos
    cur.pos += 1
    while cur.peek() and cur.peek() in _TOKEN_CHARS:
        cur.pos += 1
    return Token(cur.text[start : cur.pos])


def _parse_bytes(cur: _Cursor) -> bytes:
    cur.expect(":")
    start = cur.pos
    while cur.peek() and cur.peek() in _B64_CHARS:
        cur.pos += 1
    encoded = cur.text[start : cur.pos]
    cur.expect(":")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        cur.fail("invalid base64 in byte sequence")


def _parse_bare(cur: _Cursor) -> BareItem:
    char = cur.peek()
    if char == "-" or (char and char in string.digits):
        return _parse_integer(cur)
    if char == '"':
        return _parse_string(cur)
    if char == ":":
        return _parse_bytes(cur)
    if char == "?":
        cur.pos += 1
        flag = cur.take()
        if flag not in ("0", "1"):
            cur.fail("invalid boolean")
        return flag == "1"
    if char and char in _TOKEN_FIRST:
        return _parse_token(cur)
    cur.fail("expected an item")


def _parse_params(cur: _Cursor) -> Params:
    params: dict[str, BareItem] = {}
    while cur.peek() == ";":
        cur.pos += 1
        cur.skip(" ")
        key = _parse_key(cur)
        value: BareItem = True
        if cur.peek() == "=":
            cur.pos += 1
            value = _parse_bare(cur)
        params[key] = value
    return tuple(params.items())


def _parse_inner_list(cur: _Cursor) -> SFInnerList:
    cur.expect("(")
    items: list[SFItem] = []
    while True:
        cur.skip(" ")
        if cur.peek() == ")":
            cur.pos += 1
            return SFInnerList(tuple(items), _parse_params(cur))
        items.append(SFItem(_parse_bare(cur), _parse_params(cur)))
        if cur.peek() not in (" ", ")"):
            cur.fail("expected space or ')' in inner list")


def _parse_member(cur: _Cursor) -> SFItem | SFInnerList:
    if cur.peek() == "(":
        return _parse_inner_list(cur)
    return SFItem(_parse_bare(cur), _parse_params(cur))


def parse_dictionary(text: str) -> dict[str, SFItem | SFInnerList]:
    """Parse an RFC 8941 §4.2.2 Dictionary; raises :class:`SignatureError` if malformed."""
    if len(text) > MAX_FIELD_LEN:
        raise SignatureError(f"structured field longer than {MAX_FIELD_LEN} characters")
    cur = _Cursor(text)
    cur.skip(" ")
    members: dict[str, SFItem | SFInnerList] = {}
    while cur.peek():
        key = _parse_key(cur)
        if cur.peek() == "=":
            cur.pos += 1
            members[key] = _parse_member(cur)
        else:
            members[key] = SFItem(True, _parse_params(cur))
        cur.skip(" \t")
        if not cur.peek():
            break
        cur.expect(",")
        cur.skip(" \t")
        if not cur.peek():
            cur.fail("trailing comma")
    return members


def serialize_bare(value: BareItem) -> str:
    """Serialise a bare item per RFC 8941 §4.1.3."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Params) -> str:
    """Serialise parameters; a ``True`` value is written as the bare key."""
    return "".join(
        f";{key}" if value is True else f";{key}={serialize_bare(value)}" for key, value in params
    )


def serialize_inner_list(inner: SFInnerList) -> str:
    """Serialise an inner list with its parameters per RFC 8941 §4.1.1.1."""
    items = " ".join(serialize_bare(i.value) + serialize_params(i.params) for i in inner.items)
    return f"({items}){serialize_params(inner.params)}"
