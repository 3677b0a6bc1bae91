"""RFC 9421 HTTP Message Signatures: signature base, signing and parsing
(https://www.rfc-editor.org/rfc/rfc9421)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from meshnode.protocol.errors import SignatureError
from meshnode.protocol.httpsig.common import (
    ED25519,
    RSA_PSS_SHA512,
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
from meshnode.protocol.structured import (
    MAX_FIELD_LEN,
    Params,
    SFInnerList,
    SFItem,
    parse_dictionary,
    serialize_inner_list,
)

# --------------------------------------------------------------------------- RFC 9421

# The usual Signature-Input (issue 17: the door spent ~25 µs a request parsing it and writing
# it back): one member whose inner list holds plain strings and whose parameters are integers
# or plain strings, each written exactly as RFC 8941 §4.1 serialises it (no spaces to skip, no
# leading zeros, no escapes). Such a text is its own serialisation, so the
# ``@signature-params`` value (RFC 9421 §2.3) is the text as it stands. Anything else (several
# labels, tokens, booleans, escapes, a key twice) goes to the general parser;
# tests/protocol/test_httpsig_fast.py compares both on random fields.
_PLAIN = r'"[ !#-\[\]-~]*+"'
_USUAL_INPUT_RE = re.compile(
    rf"([a-z*][a-z0-9_\-.*]*+)=(\(((?:{_PLAIN}(?: {_PLAIN})*+)?)\)"
    rf"((?:;[a-z*][a-z0-9_\-.*]*+=(?:0|-?[1-9][0-9]{{0,14}}|{_PLAIN}))*+))")
_USUAL_ITEM_RE = re.compile(r'"([ !#-\[\]-~]*)"')
_USUAL_PARAM_RE = re.compile(r';([a-z*][a-z0-9_\-.*]*)=(?:(-?[0-9]+)|"([ !#-\[\]-~]*)")')


class _Input(NamedTuple):
    """A Signature-Input member as ``parse_rfc9421`` uses it."""

    label: str
    components: tuple[str, ...]
    params: Params
    params_str: str  # its serialisation: the @signature-params value


def _usual_input(field: str) -> _Input | None:
    """A Signature-Input of the usual shape (above) read as it stands, or None for the general
    parser. Components covered twice are refused later, as for any field."""
    if len(field) > MAX_FIELD_LEN:
        return None
    match = _USUAL_INPUT_RE.fullmatch(field)
    if match is None:
        return None
    label, text, items_text, params_text = match.groups()
    params = tuple([(key, int(integer) if integer else string)
                    for key, integer, string in _USUAL_PARAM_RE.findall(params_text)])
    if len({key for key, _ in params}) != len(params):
        return None
    return _Input(label, tuple(_USUAL_ITEM_RE.findall(items_text)), params, text)


def _general_input(field: str, lines: Mapping[str, list[str]]
                   ) -> tuple[_Input, dict[str, SFItem | SFInnerList]]:
    """Signature-Input read by the general parser: its member that the Signature field signs,
    and that field's members."""
    inputs = parse_dictionary(field)
    signatures = parse_dictionary(_require_field(lines, "signature"))
    label = _pick_label(inputs, signatures)
    inner = inputs[label]
    if not isinstance(inner, SFInnerList):
        raise SignatureError(f"Signature-Input member {label!r} is not an inner list")
    names: list[str] = []
    for item in inner.items:
        if not isinstance(item.value, str) or item.params:
            raise SignatureError("only plain string component identifiers are supported")
        names.append(item.value)
    return _Input(label, tuple(names), inner.params, serialize_inner_list(inner)), signatures


def _authority(scheme: str, host: str, port: int | None) -> str:
    # RFC 9421 §2.2.3: lowercased host, default port omitted.
    default = {"http": 80, "https": 443}.get(scheme)
    return host if port is None or port == default else f"{host}:{port}"


# An inbox is posted to at a handful of URLs: the derived components of each (~1.5 µs a
# request) are kept for the last DERIVED_KEPT short URLs (a sender chooses the path and
# query: at most 64 × a few hundred bytes).
DERIVED_KEPT = 64
DERIVED_KEPT_URL = 256


def _derived_components(method: str, url: str) -> Mapping[str, str]:
    """The values of the RFC 9421 §2.2 derived components of one request (the URL split once
    per signature base, not once per covered component; kept for a short URL)."""
    if len(url) <= DERIVED_KEPT_URL:
        return _kept_components(method, url)
    return _split_components(method, url)


def _split_components(method: str, url: str) -> Mapping[str, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    query = "?" + parts.query
    try:
        port = parts.port
    except ValueError as exc:
        raise SignatureError(f"invalid port in URL {url!r}") from exc
    scheme = parts.scheme.lower()
    return MappingProxyType({
        "@method": method,
        "@target-uri": url,
        "@authority": _authority(scheme, (parts.hostname or "").lower(), port),
        "@scheme": scheme,
        "@path": path,
        "@query": query,
        "@request-target": path + (query if parts.query else ""),
    })


_kept_components = lru_cache(maxsize=DERIVED_KEPT)(_split_components)


def rfc9421_signature_base(
    method: str, url: str, headers: Headers | _GroupedLines, components: Sequence[str],
    params_str: str,
) -> str:
    """Build the RFC 9421 §2.5 signature base.

    ``params_str`` is the serialised ``@signature-params`` value, e.g.
    ``("@method" "@path");created=1618884473;keyid="k"``.
    """
    lines = _field_lines(headers)
    derived: Mapping[str, str] | None = None
    out: list[str] = []
    for name in components:
        if name != name.lower():
            raise SignatureError(f"component name {name!r} must be lowercase")
        if name.startswith("@"):
            if derived is None:
                derived = _derived_components(method, url)
            value = derived.get(name)
            if value is None:
                raise SignatureError(f"unsupported derived component {name!r}")
        else:
            value = _require_field(lines, name)
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


def _unique(components: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(components)) != len(components):
        raise SignatureError("a component is covered twice")
    return components


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
    field = _require_field(lines, "signature-input")
    signed = _usual_input(field)
    if signed is None:
        signed, signatures = _general_input(field, lines)
    else:
        signatures = parse_dictionary(_require_field(lines, "signature"))
    label, params = signed.label, signed.params
    sig_item = signatures.get(label)
    if sig_item is None:
        raise SignatureError("Signature-Input and Signature share no label")
    if not isinstance(sig_item, SFItem) or not isinstance(sig_item.value, bytes):
        raise SignatureError(f"Signature member {label!r} is not a byte sequence")
    key_id = _str_param(params, "keyid")
    if not key_id:
        raise SignatureError("signature has no keyid")
    components = _unique(signed.components)
    alg = _normalise_9421_algorithm(_str_param(params, "alg"))
    base = rfc9421_signature_base(method, url, lines, components, signed.params_str)
    return ParsedSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        declared_algorithm=alg,
        components=components,
        created=_int_param(params, "created"),
        expires=_int_param(params, "expires"),
        signature=sig_item.value,
        bases=(base,),
        method=method.upper(),
        date=_field_value(lines, "date"),
        digest_headers=_digest_headers(lines),
        label=label,
        nonce=_str_param(params, "nonce"),
    )
