"""Verify with the cached key; on failure re-fetch the key once and verify again.

A remote actor may rotate its keys (REFERENCE §3): a signature or proof that fails with the
cached copy is retried exactly once with a fresh copy of the actor's document. Failures a
fresh key cannot fix (a stale date, a digest mismatch) are passed in ``final`` and never
cause a fetch. Every inbox check (HTTP signatures, listing, deal and IOU proofs) uses this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from meshnode.federation.directory import ActorDirectory, ActorKey
from meshnode.protocol.activities import strip_fragment
from meshnode.protocol.errors import ProofError
from meshnode.protocol.ldread import signed_form
from meshnode.protocol.proofs import proof_verification_method, verify_proof

K = TypeVar("K")
R = TypeVar("R")


async def verify_or_refetch(
    key: K, refetch: Callable[[], Awaitable[K]], verify: Callable[[K], R], *,
    retry_on: type[Exception] | tuple[type[Exception], ...],
    final: tuple[type[Exception], ...] = (),
) -> tuple[K, R]:
    """``verify(key)``; when it raises ``retry_on`` (but not ``final``), verify once more
    with ``await refetch()`` (key rotation). Returns the key that verified and the result."""
    try:
        return key, verify(key)
    except final:
        raise
    except retry_on:
        fresh = await refetch()
        return fresh, verify(fresh)


async def verify_actor_proof(directory: ActorDirectory, document: Mapping[str, Any],
                             actor: str, *, plain: bool = False) -> ActorKey:
    """The document carries a valid FEP-8b32 proof made with one of ``actor``'s own keys
    (https://w3id.org/fep/8b32); ProofError otherwise. A document read in our compact names
    (``protocol.ldread``) is checked as it was received: that is what was signed.
    ``plain``: ``compact_json`` accepted the document as received (``proofs.proof_hashes``)."""
    document = signed_form(document)
    method = proof_verification_method(document)
    if strip_fragment(method) != actor:
        raise ProofError("the proof was not made by the activity's actor")
    key = await directory.key(method)
    if key.actor_id != actor:
        raise ProofError("the verification method is not the actor's")

    def check(candidate: ActorKey) -> None:
        verify_proof(document, public_key=candidate.ed25519_raw, plain=plain)

    verified, _ = await verify_or_refetch(
        key, lambda: directory.key(method, refresh=True), check, retry_on=ProofError)
    return verified
