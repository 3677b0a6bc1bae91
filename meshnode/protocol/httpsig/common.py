"""What both signature schemes share: key and header types, algorithm names, the parsed
signature and the verdict, and reading header field lines."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias, Union

import nacl.exceptions
import nacl.signing

from meshnode.protocol.errors import SignatureError
from meshnode.protocol.records import quick_init

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

# Ed25519 keys are PyNaCl keys (what the node uses everywhere). RSA keys, and Ed25519
# keys from callers that hold `cryptography` objects, go through `cryptography`, which is
# imported only on first use: it costs ≈9 MB of resident memory that a node talking only
# to meshnode peers (Ed25519) never needs.
SigningKey: TypeAlias = Union[
    nacl.signing.SigningKey, "Ed25519PrivateKey", "RSAPrivateKey"
]
VerifyingKey: TypeAlias = Union[
    nacl.signing.VerifyKey, "Ed25519PublicKey", "RSAPublicKey"
]
# Headers as a mapping (a multidict's items() yields every field line) or as
# a sequence of (name, value) field lines.
Headers = Mapping[str, str] | Sequence[tuple[str, str]]
Scheme = Literal["rfc9421", "cavage"]

# Fedify accepts ±1 hour; Mastodon 65 min past to 60 min future (REFERENCE §2).
DEFAULT_MAX_SKEW = 3600

ED25519 = "ed25519"
RSA_V1_5_SHA256 = "rsa-v1_5-sha256"
RSA_PSS_SHA512 = "rsa-pss-sha512"
CAVAGE_RSA_SHA256 = "rsa-sha256"
CAVAGE_HS2019 = "hs2019"
_DIGEST_COMPONENTS = frozenset({"digest", "content-digest"})
_TARGET_COMPONENTS_9421 = frozenset({"@target-uri", "@path", "@request-target"})
_HASHES = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


# --------------------------------------------------------------------------- headers


class _GroupedLines(dict[str, list[str]]):
    """Field lines already grouped by lowercased name: a request's headers are grouped once,
    not once per step of parsing (that cost a tenth of the inbox's time)."""


def _field_lines(headers: Headers | _GroupedLines) -> _GroupedLines:
    """Group field lines by lowercased name, values trimmed (RFC 9421 §2.1)."""
    if isinstance(headers, _GroupedLines):
        return headers
    return _group_lines(headers)


def _group_lines(headers: Headers) -> _GroupedLines:
    pairs: Iterable[tuple[str, str]] = headers.items() if isinstance(headers, Mapping) else headers
    lines = _GroupedLines()
    for name, value in pairs:
        lines.setdefault(name.strip().lower(), []).append(value.strip(" \t"))
    return lines


def _field_value(lines: Mapping[str, list[str]], name: str) -> str | None:
    values = lines.get(name)
    return None if values is None else ", ".join(values)


def _require_field(lines: Mapping[str, list[str]], name: str) -> str:
    value = _field_value(lines, name)
    if value is None:
        raise SignatureError(f"covered header {name!r} is missing from the request")
    return value


# --------------------------------------------------------------------------- results


@quick_init  # 14 fields, built on every signed request: 1.7 -> ~0.5 µs (issue 17)
@dataclass(frozen=True)
class ParsedSignature:
    """A signature read from a request, ready to verify once the key is known.

    ``algorithm`` is the normalised RFC 9421 name (``ed25519``,
    ``rsa-v1_5-sha256``, ``rsa-pss-sha512``) or ``None`` to infer it from the
    key; ``declared_algorithm`` is what the sender wrote. ``bases`` holds the
    candidate signature bases: cavage has two when the target has a query.
    """

    scheme: Scheme
    key_id: str
    algorithm: str | None
    declared_algorithm: str | None
    components: tuple[str, ...]
    created: int | None
    expires: int | None
    signature: bytes
    bases: tuple[str, ...]
    method: str
    date: str | None
    digest_headers: tuple[tuple[str, str], ...]
    label: str | None = None
    nonce: str | None = None


@dataclass(frozen=True)
class SignatureVerdict:
    """A signature that verified: which key, which spec, which algorithm, when."""

    key_id: str
    scheme: Scheme
    algorithm: str
    created: int | None
