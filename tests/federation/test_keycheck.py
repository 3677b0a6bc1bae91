"""The one "verify, re-fetch the key, verify again" rule every inbox check shares.

The key source here is a list of real Ed25519 keys standing in for an actor document's
successive versions (no network is needed to exercise the retry rule itself); the proofs
are real FEP-8b32 proofs checked by the real verifier.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nacl.signing import SigningKey

from meshnode.federation.keycheck import verify_or_refetch
from meshnode.protocol.errors import ClockSkewError, ProofError
from meshnode.protocol.proofs import create_proof, verify_proof

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD, NEW = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)
DOC = {"id": "http://127.0.0.1:1/notes/1", "type": "Note", "content": "hello"}


class KeySource:
    """Successive versions of one actor's key; counts how often it was fetched again."""

    def __init__(self, *versions: SigningKey) -> None:
        self.versions = list(versions)
        self.refetches = 0

    async def refetch(self) -> bytes:
        self.refetches += 1
        return bytes(self.versions[min(self.refetches, len(self.versions) - 1)].verify_key)


def _signed_by(key: SigningKey) -> dict[str, object]:
    return create_proof(DOC, seed=bytes(key), verification_method="http://127.0.0.1:1/a#k",
                        created=NOW)


async def test_keycheck__rotated_key_verifies_after_exactly_one_refetch() -> None:
    # Given a document signed with the actor's new key while we cache the old one
    source, document = KeySource(OLD, NEW), _signed_by(NEW)
    # When it is verified
    key, _ = await verify_or_refetch(
        bytes(OLD.verify_key), source.refetch,
        lambda raw: verify_proof(document, public_key=raw), retry_on=ProofError)
    # Then the fresh key verified it, after one fetch
    assert key == bytes(NEW.verify_key)
    assert source.refetches == 1


async def test_keycheck__cached_key_that_verifies_causes_no_fetch() -> None:
    source, document = KeySource(OLD), _signed_by(OLD)
    await verify_or_refetch(bytes(OLD.verify_key), source.refetch,
                            lambda raw: verify_proof(document, public_key=raw),
                            retry_on=ProofError)
    assert source.refetches == 0


async def test_keycheck__forgery_is_refused_after_one_refetch_not_more() -> None:
    # Given a document signed by a key the actor never had
    source = KeySource(OLD, NEW)
    forged = _signed_by(SigningKey(b"\x03" * 32))
    # When it is verified, Then it fails, and the key was fetched again only once
    with pytest.raises(ProofError):
        await verify_or_refetch(bytes(OLD.verify_key), source.refetch,
                                lambda raw: verify_proof(forged, public_key=raw),
                                retry_on=ProofError)
    assert source.refetches == 1


async def test_keycheck__final_errors_never_trigger_a_fetch() -> None:
    # Given a failure a fresh key cannot fix (a stale Date header)
    source = KeySource(OLD, NEW)

    def stale(_raw: bytes) -> None:
        raise ClockSkewError("date outside the window")

    # When verified, Then it fails at once, with no fetch (a hostile peer cannot make us fetch)
    with pytest.raises(ClockSkewError):
        await verify_or_refetch(bytes(OLD.verify_key), source.refetch, stale,
                                retry_on=Exception, final=(ClockSkewError,))
    assert source.refetches == 0
