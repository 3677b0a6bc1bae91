"""A minimal RFC 8941 Structured Field Values parser/serialiser.

Only what HTTP message signatures need (https://www.rfc-editor.org/rfc/rfc8941):
Dictionaries whose members are Items or Inner Lists, with Integer, String,
Token, Byte Sequence and Boolean bare items and parameters. Decimals are
rejected: no signature field uses them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
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

_TOKEN_FIRST = frozenset(string.ascii_letters + "*")
# Runs of allowed characters are matched with one regex each rather than char by char:
# the char-by-char loop cost ~0.8 ms per signed request, a third of the inbox's CPU time.
_KEY_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN_RE = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_B64_RE = re.compile(r"[A-Za-z0-9+/=]*")
_INTEGER_RE = re.compile(r"-?[0-9]*")
_STRING_BODY_RE = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII but '"' and '\\'
# Fast paths for the shapes signatures use (issue 17: the door parsed Signature-Input char by
# char, 40-80 µs a request): an inner list of plain strings, and a parameter whose value is
# an integer, a string without escapes or a token. Each matches only text the general parser
# reads the same way (tests/protocol/test_structured.py compares both on random fields);
# anything else (escapes, item parameters, booleans, 16 digits, a decimal) takes the
# general path, which also names the error.
_PLAIN_LIST_RE = re.compile(r'\( *(?:"[ !#-\[\]-~]*"(?: +"[ !#-\[\]-~]*")*)? *\)')
_QUOTED_RE = re.compile(r'"([ !#-\[\]-~]*)"')
_PARAM_RE = re.compile(
    r'; *([a-z*][a-z0-9_\-.*]*+)'
    r'(?:=(?:(-?[0-9]{1,15})(?![0-9.])|"([ !#-\[\]-~]*)"'
    r"|([A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*+))|(?!=))")

# A whole field that is one member holding a byte sequence (``Signature``, ``Content-Digest``).
_BYTES_FIELD_RE = re.compile(r"([a-z*][a-z0-9_\-.*]*+)=:([A-Za-z0-9+/=]*+):")


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
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in chars:
            pos += 1
        self.pos = pos

    def match(self, pattern: re.Pattern[str]) -> str:
        """Consume and return the (possibly empty) run that ``pattern`` matches here."""
        found = pattern.match(self.text, self.pos)
        if found is None:
            return ""
        self.pos = found.end()
        return found.group()

    def fail(self, message: str) -> NoReturn:
        raise SignatureError(f"malformed structured field at offset {self.pos}: {message}")


def _parse_key(cur: _Cursor) -> str:
    key = cur.match(_KEY_RE)
    if not key:
        cur.fail("expected a key")
    return key


def _parse_integer(cur: _Cursor) -> int:
    digits = cur.match(_INTEGER_RE)
    # RFC 8941 §3.3.1: at most 15 digits; decimals are not supported here.
    if digits in ("", "-") or len(digits.lstrip("-")) > 15 or cur.peek() == ".":
        cur.fail("invalid integer")
    return int(digits)


def _parse_string(cur: _Cursor) -> str:
    cur.expect('"')
    out: list[str] = []
    while True:
        out.append(cur.match(_STRING_BODY_RE))
        char = cur.take()
        if char == "":
            cur.fail("unterminated string")
        if char == '"':
            return "".join(out)
        if char != "\\":
            cur.fail("non-printable character in string")
        escaped = cur.take()
        if escaped not in ('"', "\\"):
            cur.fail("invalid escape in string")
        out.append(escaped)


def _parse_token(cur: _Cursor) -> Token:
    return Token(cur.match(_TOKEN_RE))


def _parse_bytes(cur: _Cursor) -> bytes:
    cur.expect(":")
    encoded = cur.match(_B64_RE)
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
        fast = _PARAM_RE.match(cur.text, cur.pos)
        if fast is not None:
            cur.pos = fast.end()
            key, integer, text, token = fast.groups()
            params[key] = (int(integer) if integer is not None else text if text is not None
                           else Token(token) if token is not None else True)
            continue
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
    plain = _PLAIN_LIST_RE.match(cur.text, cur.pos)
    if plain is not None:
        cur.pos = plain.end()
        strings = tuple(SFItem(text) for text in _QUOTED_RE.findall(plain.group()))
        return SFInnerList(strings, _parse_params(cur))
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
    whole = _BYTES_FIELD_RE.fullmatch(text)
    if whole is not None:
        with contextlib.suppress(binascii.Error):  # the general path names the error
            return {whole[1]: SFItem(base64.b64decode(whole[2], validate=True))}
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
