"""base58btc, Multikey, multibase secrets, PEM and fingerprints."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from meshnode.protocol.errors import KeyFormatError
from meshnode.protocol.multikey import (
    B58_ALPHABET,
    b58decode,
    b58encode,
    ed25519_public_from_pem,
    ed25519_public_pem,
    ed25519_public_to_multikey,
    ed25519_secret_from_multibase,
    ed25519_secret_to_multibase,
    fingerprint,
    multikey_to_ed25519_public,
)


@given(st.binary(max_size=100))
def test_b58__round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_b58encode__known_values() -> None:
    # Bitcoin base58 reference values.
    assert b58encode(b"") == ""
    assert b58encode(b"\0\0\x01") == "112"
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"


@pytest.mark.parametrize("text", ["0", "O", "I", "l", "abc+"])
def test_b58decode__foreign_characters_rejected(text: str) -> None:
    with pytest.raises(KeyFormatError):
        b58decode(text)


def test_b58decode__oversized_input_rejected() -> None:
    with pytest.raises(KeyFormatError):
        b58decode("z" * 10_000)


def test_multikey__vector_public_key(jcs_vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(jcs_vector["key"]["public_hex"])
    assert ed25519_public_to_multikey(raw) == jcs_vector["key"]["publicKeyMultibase"]
    assert multikey_to_ed25519_public(jcs_vector["key"]["publicKeyMultibase"]) == raw


def test_multikey__vector_secret_key(jcs_vector: dict[str, Any]) -> None:
    seed = ed25519_secret_from_multibase(jcs_vector["key"]["secretKeyMultibase"])
    assert seed.hex() == jcs_vector["key"]["seed_hex"]
    assert ed25519_secret_to_multibase(seed) == jcs_vector["key"]["secretKeyMultibase"]
    assert bytes(SigningKey(seed).verify_key).hex() == jcs_vector["key"]["public_hex"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",  # no multibase prefix
        "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq",  # a secret key, wrong codec
        "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ",  # truncated
        "z6Mk0000",
    ],
)
def test_multikey_to_ed25519_public__bad_values_rejected(value: str) -> None:
    with pytest.raises(KeyFormatError):
        multikey_to_ed25519_public(value)


def test_ed25519_secret_from_multibase__public_key_rejected(jcs_vector: dict[str, Any]) -> None:
    with pytest.raises(KeyFormatError):
        ed25519_secret_from_multibase(jcs_vector["key"]["publicKeyMultibase"])


def test_ed25519_public_pem__round_trip_and_rfc9421_key(rfc9421_vector: dict[str, Any]) -> None:
    raw = ed25519_public_from_pem(rfc9421_vector["key"]["public_pem"])
    assert len(raw) == 32
    assert ed25519_public_pem(raw) == rfc9421_vector["key"]["public_pem"]


def test_ed25519_public_from_pem__garbage_rejected() -> None:
    with pytest.raises(KeyFormatError):
        ed25519_public_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_ed25519_public_to_multikey__wrong_length_rejected() -> None:
    with pytest.raises(KeyFormatError):
        ed25519_public_to_multikey(b"\x01" * 31)


def test_fingerprint__short_stable_and_distinct() -> None:
    first = fingerprint(b"\x01" * 32)
    assert first == fingerprint(b"\x01" * 32)
    assert len(first) == 19
    assert first.count("-") == 3
    assert first != fingerprint(b"\x02" * 32)


@settings(max_examples=300)
@given(text=st.text(alphabet=st.sampled_from([*B58_ALPHABET, "0", "O", "I", "l", "é", "\ud800",
                                              "\x00", "+"]), max_size=40))
def test_b58decode__agrees_with_the_digit_by_digit_definition(text: str) -> None:
    # Given any text, some of it outside the alphabet: the value of its digits, big-endian,
    # with a zero byte for each leading "1" -- or the first foreign character named
    foreign = [char for char in text if char not in B58_ALPHABET]
    if foreign:
        with pytest.raises(KeyFormatError, match=re.escape(repr(foreign[0]))):
            b58decode(text)
        return
    number = 0
    for char in text:
        number = number * 58 + B58_ALPHABET.index(char)
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    assert b58decode(text) == b"\0" * zeros + body
