"""Interop with the independent ``http_message_signatures`` package (RFC 9421).

That library reads the wall clock when verifying, so these tests sign with the
current time; the protocol layer itself still only receives ``now``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    MappingKeyResolver,
    algorithms,
)

from meshnode.protocol.httpsig import (
    SigningKey,
    content_digest_header,
    parse_signature,
    sign_rfc9421,
    verify_parsed,
)

URL = "https://node.example/users/bob/inbox?page=1"
BODY = b'{"type":"Follow"}'


@dataclass
class Message:
    """The request shape http_message_signatures expects: method, url, headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _case(kind: str, rsa_key: rsa.RSAPrivateKey) -> tuple[SigningKey, type[HTTPSignatureAlgorithm]]:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(b"\x05" * 32), algorithms.ED25519
    return rsa_key, algorithms.RSA_V1_5_SHA256


def _message() -> Message:
    return Message("POST", URL, {"Host": "node.example", "Content-Type": "application/json"})


@pytest.mark.parametrize("kind", ["ed25519", "rsa-v1_5-sha256"])
def test_verify_parsed__accepts_http_message_signatures(
    kind: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Given a request signed by the independent library (it adds Content-Digest)
    key, algorithm = _case(kind, rsa_key)
    message = _message()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithm,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={"k1": key}),
    )
    now = int(time.time())
    signer.sign(
        message,
        key_id="k1",
        created=datetime.fromtimestamp(now, UTC),
        label="sig1",
        covered_component_ids=("@method", "@authority", "@target-uri"),
        body=BODY,
    )
    # When our verifier checks it
    parsed = parse_signature(message.method, message.url, message.headers)
    verdict = verify_parsed(parsed, key.public_key(), now=now, body=BODY)
    # Then it verifies, with the algorithm the library declared
    assert verdict.algorithm == kind
    assert "content-digest" in parsed.components


@pytest.mark.parametrize("kind", ["ed25519", "rsa-v1_5-sha256"])
def test_sign_rfc9421__accepted_by_http_message_signatures(
    kind: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    key, algorithm = _case(kind, rsa_key)
    message = _message()
    message.headers["Content-Digest"] = content_digest_header(BODY)
    headers = sign_rfc9421(
        message.method,
        message.url,
        message.headers,
        key=key,
        key_id="k1",
        created=int(time.time()),
        components=("@method", "@target-uri", "@authority", "content-type", "content-digest"),
        algorithm=kind,
    )
    message.headers.update(headers)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithm,
        key_resolver=MappingKeyResolver(public_keys={"k1": key.public_key()}, private_keys={}),
    )
    results = verifier.verify(message, body=BODY, require_components=("@method", "@target-uri"))
    assert results[0].parameters["keyid"] == "k1"
    assert results[0].body == BODY
