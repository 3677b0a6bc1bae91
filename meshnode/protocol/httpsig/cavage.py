"""draft-cavage-http-signatures-12: signing string, signing and parsing
(https://datatracker.ietf.org/doc/html/draft-cavage-http-signatures-12)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from meshnode.protocol.errors import SignatureError, ValidationError
from meshnode.protocol.httpsig.common import (
    CAVAGE_HS2019,
    CAVAGE_RSA_SHA256,
    ED25519,
    RSA_V1_5_SHA256,
    Headers,
    ParsedSignature,
    SigningKey,
    _field_lines,
    _field_value,
    _GroupedLines,
    _require_field,
)
from meshnode.protocol.httpsig.keys import _default_algorithm, _sign_bytes
from meshnode.protocol.httpsig.rfc9421 import _digest_headers
from meshnode.protocol.structured import MAX_FIELD_LEN

# --------------------------------------------------------------------------- draft-cavage-12

_CAVAGE_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([0-9]+))\s*(?:,|$)')
_CAVAGE_ALGORITHMS = {
    CAVAGE_RSA_SHA256: RSA_V1_5_SHA256,
    CAVAGE_HS2019: None,  # §2.1.3: derived from the key's metadata
    ED25519: ED25519,
}


def _request_target(method: str, url: str, *, include_query: bool) -> str:
    # draft-cavage-12 §2.3: "(request-target)" is "<lowercase method> <path>[?query]".
    parts = urlsplit(url)
    target = parts.path or "/"
    if include_query and parts.query:
        target += "?" + parts.query
    return f"{method.lower()} {target}"


def cavage_signing_string(
    method: str,
    url: str,
    headers: Headers | _GroupedLines,
    components: Sequence[str],
    *,
    created: int | None = None,
    expires: int | None = None,
    include_query: bool = True,
) -> str:
    """Build the draft-cavage-12 §2.3 signing string for ``components``.

    ``include_query=False`` drops the query from ``(request-target)``, the
    form some servers sign (REFERENCE §2).
    """
    lines = _field_lines(headers)
    out: list[str] = []
    for name in components:
        lowered = name.lower()
        if lowered == "(request-target)":
            value = _request_target(method, url, include_query=include_query)
        elif lowered in ("(created)", "(expires)"):
            stamp = created if lowered == "(created)" else expires
            if stamp is None:
                raise SignatureError(f"{lowered} is covered but the parameter is absent")
            value = str(stamp)
        else:
            value = _require_field(lines, lowered)
        out.append(f"{lowered}: {value}")
    return "\n".join(out)


def sign_cavage(
    method: str,
    url: str,
    headers: Headers,
    *,
    key: SigningKey,
    key_id: str,
    components: Sequence[str] = ("(request-target)", "host", "date", "digest"),
    algorithm: str = CAVAGE_RSA_SHA256,
    created: int | None = None,
    expires: int | None = None,
) -> dict[str, str]:
    """Sign a request per draft-cavage-12; return the ``Signature`` header.

    ``algorithm`` is ``rsa-sha256`` (RSA keys, what Mastodon speaks) or
    ``hs2019`` (RSA-SHA256 for RSA keys, Ed25519 for Ed25519 keys).
    """
    if algorithm not in (CAVAGE_RSA_SHA256, CAVAGE_HS2019):
        raise ValidationError(f"unsupported cavage algorithm {algorithm!r}")
    effective = _CAVAGE_ALGORITHMS[algorithm] or _default_algorithm(key)
    text = cavage_signing_string(method, url, headers, components, created=created, expires=expires)
    signature = base64.b64encode(_sign_bytes(key, effective, text.encode("utf-8"))).decode()
    fields = [f'keyId="{key_id}"', f'algorithm="{algorithm}"']
    if created is not None:
        fields.append(f"created={created}")
    if expires is not None:
        fields.append(f"expires={expires}")
    fields.append('headers="' + " ".join(c.lower() for c in components) + '"')
    fields.append(f'signature="{signature}"')
    return {"Signature": ",".join(fields)}


def _parse_cavage_fields(value: str) -> dict[str, str]:
    if len(value) > MAX_FIELD_LEN:
        raise SignatureError(f"Signature header longer than {MAX_FIELD_LEN} characters")
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _CAVAGE_PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureError(f"malformed Signature header at offset {pos}")
        name, quoted, number = match.groups()
        fields[name] = quoted if quoted is not None else number
        pos = match.end()
    return fields


def _optional_int(fields: Mapping[str, str], name: str) -> int | None:
    raw = fields.get(name)
    if raw is None:
        return None
    try:
        return int(raw.split(".")[0])
    except ValueError as exc:
        raise SignatureError(f"signature parameter {name!r} is not a number") from exc


def _decode_b64_signature(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise SignatureError("signature is not valid base64") from exc


def parse_cavage(method: str, url: str, headers: Headers | _GroupedLines) -> ParsedSignature:
    """Read a draft-cavage-12 ``Signature`` header from a request.

    Both signing-string forms are prepared when the target has a query:
    with the query first, then without it.
    """
    lines = _field_lines(headers)
    fields = _parse_cavage_fields(_require_field(lines, "signature"))
    key_id, encoded = fields.get("keyId"), fields.get("signature")
    if not key_id or not encoded:
        raise SignatureError("Signature header lacks keyId or signature")
    declared = fields.get("algorithm", CAVAGE_HS2019).lower()
    if declared not in _CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported cavage algorithm {declared!r}")
    created, expires = _optional_int(fields, "created"), _optional_int(fields, "expires")
    # §2.1.6 defaults to "(created)"; Mastodon and older drafts default to "date".
    default = "(created)" if created is not None else "date"
    components = tuple(fields.get("headers", default).lower().split())
    if not components:
        raise SignatureError("Signature header covers no components")
    bases = _cavage_bases(method, url, lines, components, created, expires)
    return ParsedSignature(
        scheme="cavage",
        key_id=key_id,
        algorithm=_CAVAGE_ALGORITHMS[declared],
        declared_algorithm=declared,
        components=components,
        created=created,
        expires=expires,
        signature=_decode_b64_signature(encoded),
        bases=bases,
        method=method.upper(),
        date=_field_value(lines, "date"),
        digest_headers=_digest_headers(lines),
    )


def _cavage_bases(
    method: str,
    url: str,
    headers: Headers | _GroupedLines,
    components: Sequence[str],
    created: int | None,
    expires: int | None,
) -> tuple[str, ...]:
    def build(include_query: bool) -> str:
        return cavage_signing_string(
            method,
            url,
            headers,
            components,
            created=created,
            expires=expires,
            include_query=include_query,
        )

    with_query = build(True)
    if "(request-target)" not in components or not urlsplit(url).query:
        return (with_query,)
    return (with_query, build(False))
