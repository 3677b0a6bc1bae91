"""HTTP signatures: RFC 9421 vector, round trips, mutate-then-fail, cavage quirks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from meshnode.protocol.errors import (
    ClockSkewError,
    DigestMismatchError,
    KeyFormatError,
    SignatureError,
    SignatureExpiredError,
    ValidationError,
)
from meshnode.protocol.httpsig import (
    ParsedSignature,
    SignatureVerdict,
    SigningKey,
    VerifyingKey,
    cavage_signing_string,
    check_body_digest,
    content_digest_header,
    load_private_pem,
    load_public_pem,
    parse_cavage,
    parse_http_date,
    parse_rfc9421,
    parse_signature,
    rfc9421_signature_base,
    sha256_digest_header,
    sign_cavage,
    sign_rfc9421,
    verify_parsed,
)

NOW = 1_795_000_000
URL = "https://node.example/users/bob/inbox"
BODY = b'{"type":"Create","actor":"https://peer.example/users/alice"}'
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None


def _http_date(stamp: int) -> str:
    return format_datetime(datetime.fromtimestamp(stamp, UTC), usegmt=True)


def _request(body: bytes = BODY, url: str = URL, stamp: int = NOW) -> Request:
    headers = [
        ("Host", "node.example"),
        ("Date", _http_date(stamp)),
        ("Content-Type", "application/activity+json"),
        ("Digest", sha256_digest_header(body)),
        ("Content-Digest", content_digest_header(body)),
    ]
    return Request("POST", url, headers, body)


Signer = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class Scheme:
    name: str
    key: SigningKey
    sign: Signer
    digest_free_components: tuple[str, ...]


def _rfc9421(algorithm: str) -> Signer:
    def sign(
        req: Request,
        key: SigningKey,
        components: Sequence[str] | None = None,
        expires: int | None = None,
    ) -> dict[str, str]:
        covered = components or (
            "@method",
            "@target-uri",
            "@authority",
            "host",
            "date",
            "content-digest",
        )
        return sign_rfc9421(
            req.method,
            req.url,
            req.headers,
            key=key,
            key_id="k1",
            created=NOW,
            components=covered,
            algorithm=algorithm,
            expires=expires,
        )

    return sign


def _cavage(algorithm: str, *, with_created: bool = False) -> Signer:
    def sign(
        req: Request,
        key: SigningKey,
        components: Sequence[str] | None = None,
        expires: int | None = None,
    ) -> dict[str, str]:
        default = ("(request-target)", "host", "(created)" if with_created else "date", "digest")
        return sign_cavage(
            req.method,
            req.url,
            req.headers,
            key=key,
            key_id="k1",
            components=components or default,
            algorithm=algorithm,
            created=NOW if with_created else None,
            expires=expires,
        )

    return sign


@pytest.fixture(
    params=[
        "rfc9421-ed25519",
        "rfc9421-rsa",
        "cavage-rsa-sha256",
        "cavage-hs2019",
        "cavage-hs2019-ed25519",
    ]
)
def scheme(request: pytest.FixtureRequest, rsa_key: rsa.RSAPrivateKey) -> Scheme:
    name: str = request.param
    table: dict[str, tuple[SigningKey, Signer, tuple[str, ...]]] = {
        "rfc9421-ed25519": (ED_KEY, _rfc9421("ed25519"), ("@method", "@target-uri", "date")),
        "rfc9421-rsa": (rsa_key, _rfc9421("rsa-v1_5-sha256"), ("@method", "@path", "date")),
        "cavage-rsa-sha256": (rsa_key, _cavage("rsa-sha256"), ("(request-target)", "date")),
        "cavage-hs2019": (rsa_key, _cavage("hs2019"), ("(request-target)", "date")),
        "cavage-hs2019-ed25519": (
            ED_KEY,
            _cavage("hs2019", with_created=True),
            ("(request-target)", "(created)"),
        ),
    }
    key, signer, digest_free = table[name]
    return Scheme(name, key, signer, digest_free)


def _signed(scheme: Scheme, req: Request, **kwargs: Any) -> Request:
    headers = scheme.sign(req, scheme.key, **kwargs)
    return replace(req, headers=req.headers + list(headers.items()))


def _verify(req: Request, key: VerifyingKey, now: int = NOW) -> SignatureVerdict:
    parsed = parse_signature(req.method, req.url, req.headers)
    return verify_parsed(parsed, key, now=now, body=req.body)


def _set_header(req: Request, name: str, value: str) -> Request:
    kept = [(n, v) for n, v in req.headers if n.lower() != name.lower()]
    return replace(req, headers=[*kept, (name, value)])


# ------------------------------------------------------------------ RFC 9421 vector


def _vector_request(vector: dict[str, Any]) -> Request:
    req = vector["request"]
    headers = [(name, value) for name, value in req["headers"]]
    return Request(
        req["method"], "https://example.com" + req["target"], headers, req["body"].encode()
    )


def test_rfc9421_signature_base__reproduces_b26(rfc9421_vector: dict[str, Any]) -> None:
    req = _vector_request(rfc9421_vector)
    base = rfc9421_signature_base(
        req.method,
        req.url,
        req.headers,
        rfc9421_vector["covered_components"],
        rfc9421_vector["signature_params"],
    )
    assert base == rfc9421_vector["signature_base"]


def test_sign_rfc9421__reproduces_b26_headers(rfc9421_vector: dict[str, Any]) -> None:
    req = _vector_request(rfc9421_vector)
    key = load_private_pem(rfc9421_vector["key"]["private_pem"].encode())
    headers = sign_rfc9421(
        req.method,
        req.url,
        req.headers,
        key=key,
        key_id=rfc9421_vector["key"]["keyid"],
        created=1618884473,
        components=rfc9421_vector["covered_components"],
        label="sig-b26",
    )
    assert headers == rfc9421_vector["expected_headers"]


def test_verify_parsed__accepts_b26(rfc9421_vector: dict[str, Any]) -> None:
    req = _vector_request(rfc9421_vector)
    headers = req.headers + list(rfc9421_vector["expected_headers"].items())
    parsed = parse_rfc9421(req.method, req.url, headers)
    assert parsed.bases == (rfc9421_vector["signature_base"],)
    assert parsed.label == "sig-b26"
    key = load_public_pem(rfc9421_vector["key"]["public_pem"])
    verdict = verify_parsed(parsed, key, now=1618884473 + 30, body=None)
    assert verdict == SignatureVerdict("test-key-ed25519", "rfc9421", "ed25519", 1618884473)


def test_verify_parsed__b26_with_body_rejected_for_uncovered_digest(
    rfc9421_vector: dict[str, Any],
) -> None:
    # B.2.6 signs a POST body without covering Content-Digest: we refuse that.
    req = _vector_request(rfc9421_vector)
    headers = req.headers + list(rfc9421_vector["expected_headers"].items())
    parsed = parse_rfc9421(req.method, req.url, headers)
    key = load_public_pem(rfc9421_vector["key"]["public_pem"])
    with pytest.raises(SignatureError, match="digest"):
        verify_parsed(parsed, key, now=1618884473, body=req.body)


def test_check_body_digest__b26_sha512_content_digest(rfc9421_vector: dict[str, Any]) -> None:
    req = _vector_request(rfc9421_vector)
    assert req.body is not None
    check_body_digest(req.headers, req.body)


# ------------------------------------------------------------------ round trips


def test_verify_parsed__round_trip(scheme: Scheme) -> None:
    req = _signed(scheme, _request())
    verdict = _verify(req, scheme.key.public_key())
    assert verdict.key_id == "k1"
    assert verdict.scheme == scheme.name.split("-")[0]


def test_verify_parsed__get_without_body(scheme: Scheme) -> None:
    req = _signed(
        scheme,
        replace(_request(), method="GET", body=None),
        components=scheme.digest_free_components,
    )
    assert _verify(req, scheme.key.public_key()).key_id == "k1"


def test_verify_parsed__skew_within_window_accepted(scheme: Scheme) -> None:
    req = _signed(scheme, _request())
    _verify(req, scheme.key.public_key(), now=NOW + 3500)
    _verify(req, scheme.key.public_key(), now=NOW - 3500)


def test_parse_signature__cavage_fields(rsa_key: rsa.RSAPrivateKey) -> None:
    req = _signed(Scheme("c", rsa_key, _cavage("rsa-sha256"), ()), _request())
    parsed = parse_signature(req.method, req.url, req.headers)
    assert isinstance(parsed, ParsedSignature)
    assert parsed.scheme == "cavage"
    assert parsed.components == ("(request-target)", "host", "date", "digest")
    assert parsed.declared_algorithm == "rsa-sha256"
    assert parsed.bases[0].startswith("(request-target): post /users/bob/inbox\nhost: ")


# ------------------------------------------------------------------ mutate then fail


def test_verify_parsed__tampered_body_fails(scheme: Scheme) -> None:
    req = replace(_signed(scheme, _request()), body=BODY.replace(b"alice", b"mallory"))
    with pytest.raises(DigestMismatchError):
        _verify(req, scheme.key.public_key())


def test_verify_parsed__wrong_digest_header_fails(scheme: Scheme) -> None:
    # Given a digest recomputed for a forged body after signing
    forged = BODY + b" "
    req = _signed(scheme, _request())
    req = _set_header(req, "Digest", sha256_digest_header(forged))
    req = _set_header(replace(req, body=forged), "Content-Digest", content_digest_header(forged))
    # Then the signature over the original digests no longer verifies
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(req, scheme.key.public_key())


def test_verify_parsed__digest_header_not_matching_body_fails(scheme: Scheme) -> None:
    req = _signed(scheme, _request(body=b"{}"))
    with pytest.raises(DigestMismatchError):
        _verify(replace(req, body=BODY), scheme.key.public_key())


def test_verify_parsed__changed_header_fails(scheme: Scheme) -> None:
    req = _set_header(_signed(scheme, _request()), "Host", "evil.example")
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(req, scheme.key.public_key())


def test_verify_parsed__changed_path_fails(scheme: Scheme) -> None:
    req = replace(_signed(scheme, _request()), url="https://node.example/users/carol/inbox")
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(req, scheme.key.public_key())


def test_verify_parsed__stale_date_fails(scheme: Scheme) -> None:
    req = _signed(scheme, _request())
    with pytest.raises(ClockSkewError, match="7200 seconds in the past"):
        _verify(req, scheme.key.public_key(), now=NOW + 7200)


def test_verify_parsed__future_date_fails(scheme: Scheme) -> None:
    req = _signed(scheme, _request())
    with pytest.raises(ClockSkewError, match="7200 seconds in the future"):
        _verify(req, scheme.key.public_key(), now=NOW - 7200)


def test_verify_parsed__expired_fails(scheme: Scheme) -> None:
    req = _signed(scheme, _request(), expires=NOW + 60)
    _verify(req, scheme.key.public_key(), now=NOW + 30)
    with pytest.raises(SignatureExpiredError):
        _verify(req, scheme.key.public_key(), now=NOW + 120)


def test_verify_parsed__wrong_key_fails(scheme: Scheme, other_rsa_key: rsa.RSAPrivateKey) -> None:
    other = OTHER_ED_KEY if isinstance(scheme.key, ed25519.Ed25519PrivateKey) else other_rsa_key
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(_signed(scheme, _request()), other.public_key())


def test_verify_parsed__key_of_other_type_fails(
    scheme: Scheme, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    other = other_rsa_key if isinstance(scheme.key, ed25519.Ed25519PrivateKey) else OTHER_ED_KEY
    with pytest.raises(SignatureError):
        _verify(_signed(scheme, _request()), other.public_key())


def test_verify_parsed__digest_not_covered_fails(scheme: Scheme) -> None:
    req = _signed(scheme, _request(), components=scheme.digest_free_components)
    with pytest.raises(SignatureError, match="does not cover its digest"):
        _verify(req, scheme.key.public_key())


def test_parse_signature__missing_signature_fails() -> None:
    with pytest.raises(SignatureError, match="no signature"):
        parse_signature("POST", URL, _request().headers)


def test_verify_parsed__rfc9421_without_method_fails() -> None:
    req = _signed(
        Scheme("r", ED_KEY, _rfc9421("ed25519"), ()),
        _request(),
        components=("@target-uri", "date", "content-digest"),
    )
    with pytest.raises(SignatureError, match="@method"):
        _verify(req, ED_KEY.public_key())


def test_verify_parsed__cavage_without_request_target_fails(rsa_key: rsa.RSAPrivateKey) -> None:
    req = _signed(
        Scheme("c", rsa_key, _cavage("rsa-sha256"), ()),
        _request(),
        components=("host", "date", "digest"),
    )
    with pytest.raises(SignatureError, match=r"\(request-target\)"):
        _verify(req, rsa_key.public_key())


def test_verify_parsed__uncovered_date_cannot_set_time(rsa_key: rsa.RSAPrivateKey) -> None:
    req = _signed(
        Scheme("c", rsa_key, _cavage("rsa-sha256"), ()),
        _request(),
        components=("(request-target)", "host", "digest"),
    )
    with pytest.raises(SignatureError, match="neither a created time nor the Date"):
        _verify(req, rsa_key.public_key())


@pytest.mark.parametrize(
    "headers",
    [
        [("Signature-Input", 'sig1=("@method";created=1'), ("Signature", "sig1=:AA==:")],
        [("Signature-Input", 'sig1=("@method");created=1'), ("Signature", "sig2=:AA==:")],
        [("Signature-Input", 'sig1=("@method");created=1'), ("Signature", "sig1=:AA==:")],
        [("Signature-Input", 'sig1=("@method" "@method");keyid="k"'), ("Signature", "sig1=:AA==:")],
        [("Signature-Input", 'sig1=("@method");keyid="k"'), ("Signature", 'sig1="text"')],
        [
            ("Signature-Input", 'sig1=("@method");keyid="k";alg="hmac-sha256"'),
            ("Signature", "sig1=:AA==:"),
        ],
        [("Signature-Input", 'sig1=("@status");keyid="k"'), ("Signature", "sig1=:AA==:")],
        [("Signature-Input", 'sig1=("x-missing");keyid="k"'), ("Signature", "sig1=:AA==:")],
        [("Signature-Input", "sig1=" + "x" * 20_000), ("Signature", "sig1=:AA==:")],
        [("Signature", 'keyId="k",algorithm="rsa-sha256",signature="%%%"')],
        [("Signature", 'keyId="k",algorithm="dsa",signature="AA=="')],
        [("Signature", 'algorithm="rsa-sha256",signature="AA=="')],
        [("Signature", 'keyId="k" signature="AA=="')],
    ],
)
def test_parse_signature__malformed_headers_fail(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(SignatureError):
        parse_signature("POST", URL, headers)


# ------------------------------------------------------------------ cavage specifics


def test_verify_parsed__cavage_request_target_without_query(rsa_key: rsa.RSAPrivateKey) -> None:
    # Given a peer that signed (request-target) without the query string
    req = _request()
    signature = sign_cavage(req.method, URL, req.headers, key=rsa_key, key_id="k1")
    # When the request arrives with a query
    arrived = Request("POST", URL + "?page=2", [*req.headers, *signature.items()], BODY)
    parsed = parse_cavage(arrived.method, arrived.url, arrived.headers)
    assert len(parsed.bases) == 2
    # Then the query-less form verifies
    assert verify_parsed(parsed, rsa_key.public_key(), now=NOW, body=BODY).key_id == "k1"


def test_verify_parsed__cavage_request_target_with_query(rsa_key: rsa.RSAPrivateKey) -> None:
    req = _request(url=URL + "?page=2")
    signed = _signed(Scheme("c", rsa_key, _cavage("rsa-sha256"), ()), req)
    assert _verify(signed, rsa_key.public_key()).scheme == "cavage"


def test_cavage_signing_string__created_and_expires() -> None:
    text = cavage_signing_string(
        "GET",
        URL + "?a=1",
        [("Host", "node.example")],
        ["(request-target)", "(created)", "(expires)", "host"],
        created=10,
        expires=20,
        include_query=False,
    )
    assert text == (
        "(request-target): get /users/bob/inbox\n(created): 10\n(expires): 20\nhost: node.example"
    )


def test_cavage_signing_string__missing_created_fails() -> None:
    with pytest.raises(SignatureError, match="created"):
        cavage_signing_string("GET", URL, [], ["(created)"])


def test_cavage_signing_string__repeated_header_joined() -> None:
    text = cavage_signing_string("GET", URL, [("X-A", " 1 "), ("x-a", "2")], ["x-a"])
    assert text == "x-a: 1, 2"


def test_sign_cavage__ed25519_key_refuses_rsa_sha256() -> None:
    req = _request()
    with pytest.raises(ValidationError, match="Ed25519"):
        sign_cavage(req.method, req.url, req.headers, key=ED_KEY, key_id="k")


# ------------------------------------------------------------------ digests


def test_sha256_digest_header__known_value() -> None:
    assert sha256_digest_header(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_content_digest_header__known_value() -> None:
    assert content_digest_header(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    assert content_digest_header(b"x", "sha-512").startswith("sha-512=:")


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": sha256_digest_header(BODY)},
        {"digest": "sha-256=" + sha256_digest_header(BODY).split("=", 1)[1]},
        {"Content-Digest": content_digest_header(BODY)},
        {"Content-Digest": content_digest_header(BODY, "sha-512")},
        {"Digest": sha256_digest_header(BODY), "Content-Digest": content_digest_header(BODY)},
    ],
)
def test_check_body_digest__accepted(headers: dict[str, str]) -> None:
    check_body_digest(headers, BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": sha256_digest_header(b"other")},
        {"Content-Digest": content_digest_header(b"other", "sha-512")},
        {"Digest": sha256_digest_header(BODY), "Content-Digest": content_digest_header(b"x")},
        {"Digest": "SHA-256=not base64!"},
        {"Content-Digest": "sha-256=:not base64!:"},
    ],
)
def test_check_body_digest__mismatch_fails(headers: dict[str, str]) -> None:
    with pytest.raises(DigestMismatchError):
        check_body_digest(headers, BODY)


@pytest.mark.parametrize("headers", [{}, {"Digest": "MD5=AAAA"}, {"Content-Digest": "md5=:AA==:"}])
def test_check_body_digest__no_usable_digest_fails(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="no supported"):
        check_body_digest(headers, BODY)


def test_check_body_digest__empty_body_without_digest_ok() -> None:
    check_body_digest({}, b"")


# ------------------------------------------------------------------ keys


def test_load_public_pem__rsa_and_ed25519(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert isinstance(load_public_pem(pem), rsa.RSAPublicKey)


def test_load_private_pem__round_trip(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert isinstance(load_private_pem(pem), rsa.RSAPrivateKey)


@pytest.mark.parametrize("pem", ["", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"])
def test_load_public_pem__garbage_fails(pem: str) -> None:
    with pytest.raises(KeyFormatError):
        load_public_pem(pem)


def test_load_private_pem__garbage_fails() -> None:
    with pytest.raises(KeyFormatError):
        load_private_pem(b"not a key")


# ------------------------------------------------------------------ Date header


def test_parse_http_date__imf_fixdate() -> None:
    assert parse_http_date("Tue, 20 Apr 2021 02:07:55 GMT") == 1618884475


@pytest.mark.parametrize(
    "value",
    [
        "Tuesday, 20-Apr-21 02:07:55 GMT",
        "Tue, 20 Foo 2021 02:07:55 GMT",
        "Tue, 31 Feb 2021 02:07:55 GMT",
        "1618884475",
        "",
    ],
)
def test_parse_http_date__unreadable_fails(value: str) -> None:
    with pytest.raises(SignatureError, match="Date"):
        parse_http_date(value)


def test_check_replay_window__rfc9421_without_created_is_refused() -> None:
    # Given an RFC 9421 signature whose parameters carry no created time
    from meshnode.protocol.httpsig import check_replay_window, parse_signature
    headers = [("Signature-Input", 'sig1=("@method" "@target-uri");keyid="k"'),
               ("Signature", "sig1=:" + "A" * 86 + "==:")]
    parsed = parse_signature("POST", "http://127.0.0.1:9/inbox", headers)
    # Then it is refused: nothing would bound its replay
    with pytest.raises(SignatureError, match="created"):
        check_replay_window(parsed)
    with_created = [("Signature-Input", 'sig1=("@method" "@target-uri");created=1;keyid="k"'),
                    headers[1]]
    check_replay_window(parse_signature("POST", "http://127.0.0.1:9/inbox", with_created))
