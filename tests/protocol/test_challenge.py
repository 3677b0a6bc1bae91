"""Discovery challenge/response: round trip, then mutate-then-fail for each attack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from nacl.signing import SigningKey

from meshnode.protocol.challenge import (
    ChallengeError,
    ChallengeExpiredError,
    ChallengeMismatchError,
    answer_challenge,
    new_challenge,
    parse_challenge,
    parse_challenge_response,
    verify_challenge_response,
)

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
SEED = bytes(range(32))
KEY = bytes(SigningKey(SEED).verify_key)
ATTACKER_SEED = bytes(range(100, 132))
TARGET = "http://127.0.0.1:8081"
ORIGINS = {TARGET, "http://192.168.1.20:8081"}


def _round_trip(nonce: bytes = b"\x01" * 32):  # type: ignore[no-untyped-def]
    challenge = new_challenge(nonce, NOW, TARGET)
    wire = parse_challenge(challenge.as_json())
    answer = answer_challenge(wire, SEED, NOW + timedelta(seconds=1), ORIGINS)
    return challenge, parse_challenge_response(answer.as_json())


def test_challenge__round_trip_verifies() -> None:
    challenge, response = _round_trip()
    verify_challenge_response(challenge, response, KEY, NOW + timedelta(seconds=2))


def test_challenge__deterministic_signature_for_fixed_inputs() -> None:
    _, first = _round_trip()
    _, second = _round_trip()
    assert first.signature == second.signature  # Ed25519 is deterministic


def test_challenge__replayed_response_to_a_new_nonce_rejected() -> None:
    # Given a response captured for an earlier challenge
    _, captured = _round_trip(b"\x01" * 32)
    fresh = new_challenge(b"\x02" * 32, NOW, TARGET)
    # When it is offered as the answer to a fresh challenge, Then it does not verify
    with pytest.raises(ChallengeMismatchError):
        verify_challenge_response(fresh, captured, KEY, NOW)


def test_challenge__old_response_rejected_outside_window() -> None:
    challenge, response = _round_trip()
    with pytest.raises(ChallengeExpiredError):
        verify_challenge_response(challenge, response, KEY, NOW + timedelta(minutes=5))


def test_challenge__foreign_key_rejected() -> None:
    # The attacker answers with its own key while advertising the victim's
    challenge = new_challenge(b"\x01" * 32, NOW, TARGET)
    answer = answer_challenge(challenge, ATTACKER_SEED, NOW, ORIGINS)
    with pytest.raises(ChallengeError):
        verify_challenge_response(challenge, parse_challenge_response(answer.as_json()), KEY, NOW)


def test_challenge__responder_refuses_relayed_challenge_for_another_target() -> None:
    # An attacker forwards the challenge it received (target = attacker) to the victim
    relayed = new_challenge(b"\x01" * 32, NOW, "http://127.0.0.1:9999")
    with pytest.raises(ChallengeMismatchError):
        answer_challenge(relayed, SEED, NOW, ORIGINS)


def test_challenge__responder_refuses_stale_challenge() -> None:
    stale = new_challenge(b"\x01" * 32, NOW - timedelta(minutes=10), TARGET)
    with pytest.raises(ChallengeExpiredError):
        answer_challenge(stale, SEED, NOW, ORIGINS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("nonce", "00" * 32), ("signed", "2026-11-26T10:00:09Z"), ("target", "http://x:1")],
)
def test_challenge__tampered_field_rejected(field: str, value: str) -> None:
    challenge, response = _round_trip()
    document = response.as_json() | {field: value}
    tampered = parse_challenge_response(document)
    with pytest.raises(ChallengeError):
        verify_challenge_response(challenge, tampered, KEY, NOW)


def test_challenge__flipped_signature_bit_rejected() -> None:
    challenge, response = _round_trip()
    bad = bytearray(response.signature)
    bad[0] ^= 1
    with pytest.raises(ChallengeError):
        verify_challenge_response(challenge, replace(response, signature=bytes(bad)), KEY, NOW)


@pytest.mark.parametrize(
    "document",
    [
        None, [], {"nonce": "zz"}, {"nonce": "ab" * 32, "issued": "yesterday", "target": TARGET},
        {"nonce": "AB" * 32, "issued": "2026-11-26T10:00:00Z", "target": TARGET},
        {"nonce": "ab" * 32, "issued": "2026-11-26T10:00:00Z", "target": "http://x/path"},
        {"nonce": "ab" * 32, "issued": "2026-11-26T10:00:00Z", "target": "ftp://x"},
    ],
)
def test_parse_challenge__garbage_rejected(document: object) -> None:
    with pytest.raises(ChallengeError):
        parse_challenge(document)


def test_parse_challenge_response__garbage_signature_rejected() -> None:
    _, response = _round_trip()
    for bad in ("z" + "1" * 90, "not-multibase", "z0OIl" * 20):
        with pytest.raises(ChallengeError):
            parse_challenge_response(response.as_json() | {"signature": bad})
