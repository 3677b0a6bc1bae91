"""HTTP signatures: RFC 9421 and draft-cavage-http-signatures-12, sign and verify.

Verification is split in two so the caller can fetch the key in between
(I/O lives outside this package)::

    parsed = parse_signature(method, url, headers)   # pure, cheap
    key = await fetch_key(parsed.key_id)              # the caller's I/O
    verdict = verify_parsed(parsed, key, now=now, body=body)

* RFC 9421: https://www.rfc-editor.org/rfc/rfc9421
* draft-cavage-12: https://datatracker.ietf.org/doc/html/draft-cavage-http-signatures-12
* RFC 9530 (Content-Digest): https://www.rfc-editor.org/rfc/rfc9530
* RFC 3230 (Digest), as used by Mastodon: https://www.rfc-editor.org/rfc/rfc3230
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TypeAlias, Union
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.signing

from meshnode.protocol.errors import (
    ClockSkewError,
    DigestMismatchError,
    KeyFormatError,
    SignatureError,
    SignatureExpiredError,
    ValidationError,
)
from meshnode.protocol.multikey import (
    ed25519_private_from_pem,
    ed25519_public_from_der,
    pem_der_body,
)
from meshnode.protocol.structured import (
    MAX_FIELD_LEN,
    Params,
    SFInnerList,
    SFItem,
    parse_dictionary,
    serialize_inner_list,
)

__all__ = [
    "DEFAULT_MAX_SKEW",
    "Headers",
    "ParsedSignature",
    "SignatureVerdict",
    "SigningKey",
    "VerifyingKey",
    "cavage_signing_string",
    "check_body_digest",
    "check_replay_window",
    "content_digest_header",
    "load_private_pem",
    "load_public_pem",
    "parse_cavage",
    "parse_http_date",
    "parse_rfc9421",
    "parse_signature",
    "rfc9421_signature_base",
    "sha256_digest_header",
    "sign_cavage",
    "sign_rfc9421",
    "verify_parsed",
]

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


# --------------------------------------------------------------------------- keys


def load_public_pem(pem: str) -> VerifyingKey:
    """Load an Ed25519 (as a PyNaCl key) or RSA public key from SubjectPublicKeyInfo PEM."""
    raw = ed25519_public_from_der(pem_der_body(pem, "PUBLIC KEY"))
    if raw is not None:
        return nacl.signing.VerifyKey(raw)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable public key PEM: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise KeyFormatError(f"unsupported public key type {type(key).__name__}")
    return key


def load_private_pem(pem: bytes) -> SigningKey:
    """Load an unencrypted Ed25519 (as a PyNaCl key) or RSA private key from PEM."""
    seed = ed25519_private_from_pem(pem)
    if seed is not None:
        return nacl.signing.SigningKey(seed)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable private key PEM: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise KeyFormatError(f"unsupported private key type {type(key).__name__}")
    return key


def _sign_bytes(key: SigningKey, algorithm: str, data: bytes) -> bytes:
    if isinstance(key, nacl.signing.SigningKey):
        if algorithm != ED25519:
            raise ValidationError(f"an Ed25519 key cannot sign {algorithm!r}")
        return key.sign(data).signature
    return _sign_with_cryptography(key, algorithm, data)


def _sign_with_cryptography(
    key: Ed25519PrivateKey | RSAPrivateKey, algorithm: str, data: bytes
) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        if algorithm != ED25519:
            raise ValidationError(f"an Ed25519 key cannot sign {algorithm!r}")
        return key.sign(data)
    if algorithm == RSA_V1_5_SHA256:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if algorithm == RSA_PSS_SHA512:
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA512()), 64), hashes.SHA512())
    raise ValidationError(f"an RSA key cannot sign {algorithm!r}")


def _verify_bytes(key: VerifyingKey, algorithm: str, signature: bytes, data: bytes) -> bool:
    """Return whether ``signature`` is valid; wrong key type for ``algorithm`` raises."""
    if isinstance(key, nacl.signing.VerifyKey):
        if algorithm != ED25519:
            raise SignatureError(f"algorithm {algorithm!r} does not match an Ed25519 key")
        try:
            key.verify(data, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
            return False
        return True
    return _verify_with_cryptography(key, algorithm, signature, data)


def _verify_with_cryptography(
    key: Ed25519PublicKey | RSAPublicKey, algorithm: str, signature: bytes, data: bytes
) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        if isinstance(key, Ed25519PublicKey):
            if algorithm != ED25519:
                raise SignatureError(f"algorithm {algorithm!r} does not match an Ed25519 key")
            key.verify(signature, data)
        elif algorithm == RSA_V1_5_SHA256:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == RSA_PSS_SHA512:
            pss = padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.AUTO)
            key.verify(signature, data, pss, hashes.SHA512())
        else:
            raise SignatureError(f"algorithm {algorithm!r} does not match an RSA key")
    except InvalidSignature:
        return False
    return True


def _is_ed25519(key: SigningKey | VerifyingKey) -> bool:
    if isinstance(key, nacl.signing.SigningKey | nacl.signing.VerifyKey):
        return True
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    return isinstance(key, Ed25519PrivateKey | Ed25519PublicKey)


def _default_algorithm(key: SigningKey | VerifyingKey) -> str:
    return ED25519 if _is_ed25519(key) else RSA_V1_5_SHA256


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- RFC 9421


def _authority(scheme: str, host: str, port: int | None) -> str:
    # RFC 9421 §2.2.3: lowercased host, default port omitted.
    default = {"http": 80, "https": 443}.get(scheme)
    return host if port is None or port == default else f"{host}:{port}"


def _derived_component(name: str, method: str, url: str) -> str:
    """Value of an RFC 9421 §2.2 derived component."""
    parts = urlsplit(url)
    path = parts.path or "/"
    query = "?" + parts.query
    try:
        port = parts.port
    except ValueError as exc:
        raise SignatureError(f"invalid port in URL {url!r}") from exc
    scheme = parts.scheme.lower()
    values = {
        "@method": method,
        "@target-uri": url,
        "@authority": _authority(scheme, (parts.hostname or "").lower(), port),
        "@scheme": scheme,
        "@path": path,
        "@query": query,
        "@request-target": path + (query if parts.query else ""),
    }
    if name not in values:
        raise SignatureError(f"unsupported derived component {name!r}")
    return values[name]


def _component_value(name: str, method: str, url: str, lines: Mapping[str, list[str]]) -> str:
    if name.startswith("@"):
        return _derived_component(name, method, url)
    return _require_field(lines, name)


def rfc9421_signature_base(
    method: str, url: str, headers: Headers | _GroupedLines, components: Sequence[str],
    params_str: str,
) -> str:
    """Build the RFC 9421 §2.5 signature base.

    ``params_str`` is the serialised ``@signature-params`` value, e.g.
    ``("@method" "@path");created=1618884473;keyid="k"``.
    """
    lines = _field_lines(headers)
    out: list[str] = []
    for name in components:
        if name != name.lower():
            raise SignatureError(f"component name {name!r} must be lowercase")
        value = _component_value(name, method, url, lines)
        if "\n" in value or "\r" in value:
            raise SignatureError(f"component {name!r} contains a newline")
        out.append(f'"{name}": {value}')
    out.append(f'"@signature-params": {params_str}')
    return "\n".join(out)


def _signature_params(
    components: Sequence[str],
    *,
    created: int,
    key_id: str,
    algorithm: str | None,
    expires: int | None,
    nonce: str | None,
) -> SFInnerList:
    params: list[tuple[str, int | str]] = [("created", created), ("keyid", key_id)]
    if algorithm is not None:
        params.append(("alg", algorithm))
    if expires is not None:
        params.append(("expires", expires))
    if nonce is not None:
        params.append(("nonce", nonce))
    items = tuple(SFItem(name) for name in components)
    return SFInnerList(items, tuple(params))


def sign_rfc9421(
    method: str,
    url: str,
    headers: Headers,
    *,
    key: SigningKey,
    key_id: str,
    created: int,
    components: Sequence[str],
    label: str = "sig1",
    algorithm: str | None = None,
    expires: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign a request per RFC 9421; return its ``Signature-Input`` and ``Signature`` headers.

    With ``algorithm=None`` the ``alg`` parameter is omitted (as in RFC 9421
    §B.2.6) and the algorithm follows the key type.
    """
    inner = _signature_params(
        components,
        created=created,
        key_id=key_id,
        algorithm=algorithm,
        expires=expires,
        nonce=nonce,
    )
    params_str = serialize_inner_list(inner)
    base = rfc9421_signature_base(method, url, headers, components, params_str)
    signature = _sign_bytes(key, algorithm or _default_algorithm(key), base.encode("ascii"))
    encoded = base64.b64encode(signature).decode("ascii")
    return {"Signature-Input": f"{label}={params_str}", "Signature": f"{label}=:{encoded}:"}


def _pick_label(
    inputs: Mapping[str, SFItem | SFInnerList], signatures: Mapping[str, SFItem | SFInnerList]
) -> str:
    for label in inputs:
        if label in signatures:
            return label
    raise SignatureError("Signature-Input and Signature share no label")


def _param(params: Params, name: str, kind: type[int] | type[str]) -> int | str | None:
    for key, value in params:
        if key == name:
            if type(value) is not kind:
                raise SignatureError(f"signature parameter {name!r} has the wrong type")
            return value
    return None


def _int_param(params: Params, name: str) -> int | None:
    value = _param(params, name, int)
    return value if isinstance(value, int) else None


def _str_param(params: Params, name: str) -> str | None:
    value = _param(params, name, str)
    return value if isinstance(value, str) else None


def _component_names(inner: SFInnerList) -> tuple[str, ...]:
    names: list[str] = []
    for item in inner.items:
        if not isinstance(item.value, str) or item.params:
            raise SignatureError("only plain string component identifiers are supported")
        names.append(item.value)
    if len(set(names)) != len(names):
        raise SignatureError("a component is covered twice")
    return tuple(names)


def _normalise_9421_algorithm(alg: str | None) -> str | None:
    if alg is not None and alg not in (ED25519, RSA_V1_5_SHA256, RSA_PSS_SHA512):
        raise SignatureError(f"unsupported signature algorithm {alg!r}")
    return alg


def _digest_headers(lines: Mapping[str, list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, value)
        for name in ("digest", "content-digest")
        if (value := _field_value(lines, name)) is not None
    )


def parse_rfc9421(method: str, url: str, headers: Headers | _GroupedLines) -> ParsedSignature:
    """Read an RFC 9421 signature (``Signature-Input`` + ``Signature``) from a request.

    When several labels are present, the first one found in both headers is used.
    Raises :class:`SignatureError` when the headers are missing or malformed.
    """
    lines = _field_lines(headers)
    inputs = parse_dictionary(_require_field(lines, "signature-input"))
    signatures = parse_dictionary(_require_field(lines, "signature"))
    label = _pick_label(inputs, signatures)
    inner, sig_item = inputs[label], signatures[label]
    if not isinstance(inner, SFInnerList):
        raise SignatureError(f"Signature-Input member {label!r} is not an inner list")
    if not isinstance(sig_item, SFItem) or not isinstance(sig_item.value, bytes):
        raise SignatureError(f"Signature member {label!r} is not a byte sequence")
    key_id = _str_param(inner.params, "keyid")
    if not key_id:
        raise SignatureError("signature has no keyid")
    components = _component_names(inner)
    alg = _normalise_9421_algorithm(_str_param(inner.params, "alg"))
    base = rfc9421_signature_base(method, url, lines, components, serialize_inner_list(inner))
    return ParsedSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        declared_algorithm=alg,
        components=components,
        created=_int_param(inner.params, "created"),
        expires=_int_param(inner.params, "expires"),
        signature=sig_item.value,
        bases=(base,),
        method=method.upper(),
        date=_field_value(lines, "date"),
        digest_headers=_digest_headers(lines),
        label=label,
        nonce=_str_param(inner.params, "nonce"),
    )


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


def parse_signature(method: str, url: str, headers: Headers) -> ParsedSignature:
    """Read whichever signature a request carries: RFC 9421 first, then cavage."""
    lines = _field_lines(headers)
    if "signature-input" in lines:
        return parse_rfc9421(method, url, lines)
    if "signature" in lines:
        return parse_cavage(method, url, lines)
    raise SignatureError("no signature")


# --------------------------------------------------------------------------- verification


def _as_unix(now: int | datetime) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValidationError("now must be an aware datetime")
        return int(now.timestamp())
    return now


# RFC 9110 §5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Parsed by
# hand: email.utils imports socket, random and time, which this package avoids.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_http_date(value: str) -> int:
    """Parse an RFC 9110 IMF-fixdate ``Date`` value into unix seconds."""
    match = _IMF_FIXDATE.fullmatch(value.strip())
    if match is None or match[2] not in _MONTHS:
        raise SignatureError(f"unreadable Date header {value!r}")
    day, year, hour, minute, second = (int(match[i]) for i in (1, 3, 4, 5, 6))
    try:
        when = datetime(year, _MONTHS.index(match[2]) + 1, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError(f"unreadable Date header {value!r}") from exc
    return int(when.timestamp())


def check_replay_window(parsed: ParsedSignature) -> None:
    """Refuse an RFC 9421 signature without ``created``: nothing would bound its replay.

    RFC 9421 §2.3 makes ``created`` optional, but Mastodon and Fedify require it (REFERENCE
    §2); a ``Date`` header is not part of an RFC 9421 signature unless covered, and even then
    the time window then depends on a header the signer may not have meant to sign.
    """
    if parsed.scheme == "rfc9421" and parsed.created is None:
        raise SignatureError("an RFC 9421 signature must carry a created parameter")


def _signed_time(parsed: ParsedSignature) -> tuple[int, str]:
    check_replay_window(parsed)
    if parsed.created is not None:
        return parsed.created, "created"
    if parsed.date is None or "date" not in parsed.components:
        raise SignatureError("signature covers neither a created time nor the Date header")
    return parse_http_date(parsed.date), "Date header"


def _check_time(parsed: ParsedSignature, now: int, max_skew: int) -> None:
    signed_at, source = _signed_time(parsed)
    delta = now - signed_at
    if abs(delta) > max_skew:
        direction = "in the past" if delta > 0 else "in the future"
        raise ClockSkewError(
            f"signature {source} is {abs(delta)} seconds {direction} (allowed ±{max_skew} s);"
            " one of the two servers' clocks is probably wrong"
        )
    if parsed.expires is not None and now > parsed.expires:
        raise SignatureExpiredError(f"signature expired {now - parsed.expires} seconds ago")


def _check_target_covered(parsed: ParsedSignature) -> None:
    covered = set(parsed.components)
    if parsed.scheme == "cavage":
        if "(request-target)" not in covered:
            raise SignatureError("signature does not cover (request-target)")
    elif "@method" not in covered or not covered & _TARGET_COMPONENTS_9421:
        raise SignatureError("signature does not cover @method and the target (@target-uri/@path)")


def _check_body(parsed: ParsedSignature, body: bytes | None) -> None:
    if body is None or (not body and not parsed.digest_headers):
        return
    if not _DIGEST_COMPONENTS & set(parsed.components):
        raise SignatureError("request has a body but the signature does not cover its digest")
    check_body_digest(parsed.digest_headers, body)


def _effective_algorithm(parsed: ParsedSignature, key: VerifyingKey) -> str:
    return parsed.algorithm or _default_algorithm(key)


def verify_parsed(
    parsed: ParsedSignature,
    key: VerifyingKey,
    *,
    now: int | datetime,
    max_skew: int = DEFAULT_MAX_SKEW,
    body: bytes | None,
) -> SignatureVerdict:
    """Verify a parsed signature with the key the caller fetched for ``parsed.key_id``.

    Checks, in order: method and target covered; ``created``/``Date`` within
    ±``max_skew`` of ``now`` (:class:`ClockSkewError`) and ``expires`` not
    past; a body's digest covered and matching (:class:`DigestMismatchError`);
    then the signature itself (:class:`SignatureError`).
    """
    _check_target_covered(parsed)
    _check_time(parsed, _as_unix(now), max_skew)
    _check_body(parsed, body)
    algorithm = _effective_algorithm(parsed, key)
    if not any(_verify_bytes(key, algorithm, parsed.signature, b.encode()) for b in parsed.bases):
        raise SignatureError(f"signature by {parsed.key_id!r} does not verify")
    return SignatureVerdict(
        key_id=parsed.key_id, scheme=parsed.scheme, algorithm=algorithm, created=parsed.created
    )
