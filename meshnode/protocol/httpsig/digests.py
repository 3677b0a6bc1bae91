"""Body digests: RFC 9530 Content-Digest and RFC 3230 Digest (as used by Mastodon)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from meshnode.protocol.errors import DigestMismatchError, SignatureError, ValidationError
from meshnode.protocol.httpsig.common import _HASHES, Headers, _field_lines, _field_value
from meshnode.protocol.structured import SFItem, parse_dictionary

# --------------------------------------------------------------------------- digests


def sha256_digest_header(body: bytes) -> str:
    """Return an RFC 3230 ``Digest`` value, ``SHA-256=<base64>``, as Mastodon expects."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes, alg: str = "sha-256") -> str:
    """Return an RFC 9530 ``Content-Digest`` value, e.g. ``sha-256=:<base64>:``."""
    hasher = _HASHES.get(alg)
    if hasher is None:
        raise ValidationError(f"unsupported Content-Digest algorithm {alg!r}")
    return f"{alg}=:" + base64.b64encode(hasher(body).digest()).decode("ascii") + ":"


def _legacy_digests(value: str) -> dict[str, bytes]:
    # RFC 3230 §4.3.2: comma-separated "algorithm=base64"; names are case-insensitive.
    found: dict[str, bytes] = {}
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if not sep:
            raise DigestMismatchError(f"malformed Digest header entry {part.strip()!r}")
        try:
            found[name.strip().lower()] = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error as exc:
            raise DigestMismatchError("Digest header is not valid base64") from exc
    return found


def _content_digests(value: str) -> dict[str, bytes]:
    try:
        members = parse_dictionary(value)
    except SignatureError as exc:
        raise DigestMismatchError(f"malformed Content-Digest header: {exc}") from exc
    found: dict[str, bytes] = {}
    for name, member in members.items():
        if isinstance(member, SFItem) and isinstance(member.value, bytes):
            found[name] = member.value
    return found


def _compare(body: bytes, alg: str, expected: bytes, header: str) -> None:
    actual = _HASHES[alg](body).digest()
    if not hmac.compare_digest(actual, expected):
        raise DigestMismatchError(f"body does not match its {header} ({alg})")


def check_body_digest(headers: Headers, body: bytes) -> None:
    """Check ``body`` against its ``Digest`` and/or ``Content-Digest`` headers.

    Every supported digest present (``Digest`` SHA-256, ``Content-Digest``
    sha-256/sha-512) must match, and at least one must be present for a
    non-empty body. Raises :class:`DigestMismatchError` on a mismatch or a
    malformed header, :class:`SignatureError` when a body has no usable digest.
    """
    lines = _field_lines(headers)
    checked = 0
    legacy = _field_value(lines, "digest")
    if legacy is not None:
        digests = _legacy_digests(legacy)
        if "sha-256" in digests:
            _compare(body, "sha-256", digests["sha-256"], "Digest header")
            checked += 1
    modern = _field_value(lines, "content-digest")
    if modern is not None:
        for alg, expected in _content_digests(modern).items():
            if alg in _HASHES:
                _compare(body, alg, expected, "Content-Digest header")
                checked += 1
    if checked == 0 and (body or legacy is not None or modern is not None):
        raise SignatureError("request body has no supported Digest or Content-Digest header")
