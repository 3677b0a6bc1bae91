"""Discovery challenge / response: a node proves it holds the key its mDNS advert names.

Pure: the nonce and ``now`` come in as parameters. Used by the verifier in
``meshnode/federation/discovery.py`` (challenger) and ``POST /.well-known/meshnode/challenge``
(responder).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import SigningKey, VerifyKey

from meshnode.protocol.canonical import canonicalize
from meshnode.protocol.discovery import PROTOCOL_VERSION
from meshnode.protocol.errors import KeyFormatError, SignatureError, ValidationError
from meshnode.protocol.multikey import (
    b58decode,
    b58encode,
    ed25519_public_to_multikey,
    multikey_to_ed25519_public,
)
from meshnode.protocol.timefmt import format_utc, parse_utc

__all__ = [
    "CHALLENGE_WINDOW_SECONDS",
    "Challenge",
    "ChallengeError",
    "ChallengeExpiredError",
    "ChallengeMismatchError",
    "ChallengeResponse",
    "answer_challenge",
    "new_challenge",
    "parse_challenge",
    "parse_challenge_response",
    "verify_challenge_response",
]

# The challenger sends {nonce, issued, target}; the responder signs a statement binding the
# nonce, the challenger's issue time, the *target origin the challenger contacted* and its
# own key. Binding the target stops a relay: an attacker advertising a victim's key cannot
# forward our challenge to the victim, because the victim refuses a target that is not one
# of its own origins. The nonce is single-use (kept only by the challenger, in memory, for
# one attempt), so a captured response never verifies a second time.

CHALLENGE_TYPE = "meshnode-discovery-challenge"
CHALLENGE_WINDOW_SECONDS = 60
NONCE_BYTES = 32
_NONCE_RE = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_RE = re.compile(r"^z[1-9A-HJ-NP-Za-km-z]{80,100}$")


class ChallengeError(SignatureError):
    """A discovery challenge or its response is malformed or does not verify."""

    code = "bad_challenge"


class ChallengeExpiredError(ChallengeError):
    """The challenge (or the response's signing time) lies outside the time window."""

    code = "challenge_expired"


class ChallengeMismatchError(ChallengeError):
    """The response answers another challenge (replayed, or relayed to another target)."""

    code = "challenge_mismatch"


@dataclass(frozen=True)
class Challenge:
    """What the challenger sends: a fresh nonce, its own clock reading and the target."""

    nonce: str
    issued: datetime
    target: str

    def as_json(self) -> dict[str, str]:
        """The request body of ``POST /.well-known/meshnode/challenge``."""
        return {"nonce": self.nonce, "issued": format_utc(self.issued), "target": self.target}


@dataclass(frozen=True)
class ChallengeResponse:
    """The responder's answer: the challenge echoed, its key, signing time and signature."""

    challenge: Challenge
    key: bytes
    signed: datetime
    signature: bytes

    def as_json(self) -> dict[str, str]:
        """The response body."""
        return {
            **self.challenge.as_json(),
            "key": ed25519_public_to_multikey(self.key),
            "signed": format_utc(self.signed),
            "signature": "z" + b58encode(self.signature),
        }


def new_challenge(nonce: bytes, now: datetime, target: str) -> Challenge:
    """A challenge for ``target`` (an ``http://host:port`` origin); ``nonce`` is 32 random bytes."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    return Challenge(nonce=nonce.hex(), issued=now.replace(microsecond=0), target=target)


def _str_field(document: Mapping[str, Any], name: str, max_len: int) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise ChallengeError(f"challenge field {name!r} missing or too long")
    return value


def _time_field(document: Mapping[str, Any], name: str) -> datetime:
    try:
        return parse_utc(document.get(name), field=name)
    except ValidationError as exc:
        raise ChallengeError(f"challenge field {name!r} is not a UTC date-time") from exc


def parse_challenge(document: object) -> Challenge:
    """Parse a challenge body strictly (what the responder receives)."""
    if not isinstance(document, Mapping):
        raise ChallengeError("challenge must be a JSON object")
    nonce = _str_field(document, "nonce", 64)
    if not _NONCE_RE.fullmatch(nonce):
        raise ChallengeError("challenge nonce must be 64 lowercase hex digits")
    target = _str_field(document, "target", 200)
    if not target.startswith(("http://", "https://")) or "/" in target.split("://", 1)[1]:
        raise ChallengeError("challenge target must be an origin (http://host:port)")
    return Challenge(nonce=nonce, issued=_time_field(document, "issued"), target=target)


def _statement(challenge: Challenge, key: bytes, signed: datetime) -> bytes:
    # Domain-separated and canonical (JCS), so the bytes cannot be confused with a proof.
    return canonicalize(
        {
            "type": CHALLENGE_TYPE,
            "version": PROTOCOL_VERSION,
            **challenge.as_json(),
            "key": ed25519_public_to_multikey(key),
            "signed": format_utc(signed),
        }
    )


def _check_window(what: str, when: datetime, now: datetime) -> None:
    if abs((now - when).total_seconds()) > CHALLENGE_WINDOW_SECONDS:
        raise ChallengeExpiredError(
            f"{what} {format_utc(when)} is more than {CHALLENGE_WINDOW_SECONDS} s from "
            f"{format_utc(now)} (clock skew, or an old challenge)"
        )


def answer_challenge(
    challenge: Challenge, seed: bytes, now: datetime, own_origins: Iterable[str]
) -> ChallengeResponse:
    """Sign ``challenge`` with the node's Ed25519 ``seed`` (the responder side).

    Refuses challenges aimed at another origin (see the relay note above) and challenges
    issued outside the time window of the responder's clock.
    """
    if challenge.target not in set(own_origins):
        raise ChallengeMismatchError(f"challenge target {challenge.target!r} is not this node")
    _check_window("challenge issued", challenge.issued, now)
    signing_key = SigningKey(seed)
    key = bytes(signing_key.verify_key)
    signed = now.replace(microsecond=0)
    signature = signing_key.sign(_statement(challenge, key, signed)).signature
    return ChallengeResponse(challenge, key, signed, bytes(signature))


def parse_challenge_response(document: object) -> ChallengeResponse:
    """Parse a response body strictly (what the challenger receives)."""
    challenge = parse_challenge(document)
    assert isinstance(document, Mapping)  # checked by parse_challenge
    signature_text = _str_field(document, "signature", 120)
    if not _SIGNATURE_RE.fullmatch(signature_text):
        raise ChallengeError("response signature must be base58btc multibase")
    try:
        key = multikey_to_ed25519_public(_str_field(document, "key", 120))
        signature = b58decode(signature_text[1:])
    except KeyFormatError as exc:
        raise ChallengeError(f"response key or signature unreadable: {exc}") from exc
    if len(signature) != 64:
        raise ChallengeError("response signature must be 64 bytes")
    return ChallengeResponse(challenge, key, _time_field(document, "signed"), signature)


def verify_challenge_response(
    challenge: Challenge, response: ChallengeResponse, expected_key: bytes, now: datetime
) -> None:
    """Check that ``response`` answers *our* ``challenge`` with ``expected_key``, in time.

    Raises :class:`ChallengeMismatchError` for another nonce or target (replay, relay),
    :class:`ChallengeError` for a foreign key or a bad signature, and
    :class:`ChallengeExpiredError` outside the window.
    """
    if response.challenge != challenge:
        raise ChallengeMismatchError("response answers a different challenge (replayed?)")
    if response.key != expected_key:
        raise ChallengeError("response is signed by a key other than the advertised one")
    _check_window("challenge issued", challenge.issued, now)
    _check_window("response signed", response.signed, now)
    try:
        VerifyKey(expected_key).verify(
            _statement(challenge, response.key, response.signed), response.signature
        )
    except (BadSignatureError, NaclValueError) as exc:
        raise ChallengeError("challenge signature does not verify") from exc
