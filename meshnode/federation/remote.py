"""Remote listings: verify the author's FEP-8b32 proof, store, relay within the hop limit.

Verification (network: the author's actor document) happens before the write transaction;
storing is a pure database step, so a page of activities commits at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiosqlite

from meshnode.federation.keycheck import verify_actor_proof
from meshnode.federation.state import Federation
from meshnode.protocol.activities import activity, check_url, origin_of, same_origin, strip_fragment
from meshnode.protocol.canonical import compact_json
from meshnode.protocol.capacity import only_capacity_moved
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.ldread import signed_form
from meshnode.protocol.listings import ListingDraft, parse_proposal
from meshnode.protocol.proofs import proof_verification_method
from meshnode.protocol.records import quick_init
from meshnode.protocol.timefmt import format_utc, normalise_utc
from meshnode.protocol.trust import RULE_REMOTE, SignatureCheck
from meshnode.protocol.vocab import KNOWN_CONTEXTS, PUBLIC
from meshnode.services import alerts
from meshnode.services.listings import draft_from_row, listing_columns
from meshnode.services.publishing import dumps, queue_activity
from meshnode.store import federation as fq
from meshnode.store import listings as listing_store
from meshnode.store import trust as trust_q

LISTING_TYPES = ("Proposal", "Tombstone")


@quick_init
@dataclass(frozen=True)
class VerifiedObject:
    """A listing object whose proof verified against its author's published Multikey."""

    document: dict[str, Any]
    object_id: str
    author: str
    type: str
    timestamp: str
    draft: ListingDraft | None
    key_id: str = ""
    key_fingerprint: str = ""
    published: str = ""  # read in our compact names (the document may use full IRIs)
    text: str = ""  # the document as stored and relayed (``dumps``); "": not written yet

    def stored_text(self) -> str:
        """The document as stored and relayed: compact JSON (``services.publishing.dumps``)."""
        return self.text or dumps(self.document)

    def check(self, checked_at: str) -> SignatureCheck:
        """The verification just made, to keep with the stored version."""
        return SignatureCheck(True, self.key_id, self.key_fingerprint, RULE_REMOTE, checked_at)


def _timestamp(document: Mapping[str, Any], field: str) -> str:
    return normalise_utc(document.get(field), field=field)


async def verify_listing_object(federation: Federation, obj: object) -> VerifiedObject:
    """Check an embedded listing object and its author's proof, whoever relayed it."""
    if not isinstance(obj, Mapping) or obj.get("type") not in LISTING_TYPES:
        raise ValidationError("expected a Proposal or a Tombstone")
    # ``obj`` is read in our compact names; its proof covers the object as it was received
    # (protocol.ldread.signed_form), which is also what is stored and relayed.
    document = dict(signed_form(obj))
    object_id = check_url(obj.get("id"), "id")
    method = proof_verification_method(document)
    author = strip_fragment(method)
    if not same_origin(object_id, author):
        raise ProofError("the proof's author is not on the object's origin")
    if obj["type"] == "Proposal" and obj.get("attributedTo") != author:
        raise ProofError("the proof was not made by the object's author")
    # Written once for storage and relay; the proof's hashes then skip the walk that
    # proved it plain JSON (canonical.compact_json: the same check, issue 17).
    text = compact_json(document, KNOWN_CONTEXTS)
    key = await verify_actor_proof(federation.directory, document, author,
                                   plain=text is not None)
    key_print = key.fingerprint
    stored = text if text is not None else dumps(document)
    if obj["type"] == "Proposal":
        draft = parse_proposal(obj, decimals=federation.ctx.config.currency.decimals)
        published = _timestamp(obj, "published")
        stamp = _timestamp(obj, "updated") if "updated" in obj else published
        return VerifiedObject(document, object_id, author, "Proposal", stamp, draft, method,
                              key_print, published, stored)
    return VerifiedObject(document, object_id, author, "Tombstone",
                          _timestamp(obj, "deleted"), None, method, key_print, "", stored)


async def store_verified(federation: Federation, tx: aiosqlite.Connection,
                         verified: VerifiedObject) -> str | None:
    """Insert or advance a remote listing; its id, or None when it is ours, stale or a
    duplicate (its ``signed_object`` is then ``verified.stored_text()``)."""
    ctx = federation.ctx
    origin = origin_of(verified.object_id)
    if origin == origin_of(ctx.config.base_url) or await fq.is_blocked(tx, origin):
        return None
    existing = await listing_store.get_listing_by_object_id(tx, verified.object_id)
    if existing is not None and (existing.is_local or existing.author_uri != verified.author):
        return None
    if existing is not None and (existing.status == "withdrawn"
                                 or verified.timestamp <= existing.updated_at):
        return None
    decimals = ctx.config.currency.decimals
    signed = verified.stored_text()
    if verified.draft is None:
        if existing is None:
            return None
        columns = replace(listing_columns(draft_from_row(existing, decimals), decimals),
                          status="withdrawn")
    else:
        columns = listing_columns(verified.draft, decimals)
    if existing is None:
        listing_id = secrets.token_hex(8)
        version = 1
        await listing_store.insert_listing(
            tx, listing_id=listing_id, object_id=verified.object_id, author_id=None,
            author_uri=verified.author, origin=origin, is_local=False, columns=columns,
            published_at=published_at(verified), signed_object=signed,
            updated_at=verified.timestamp)
    else:
        listing_id, version = existing.id, existing.version + 1
        edited = verified.draft is None or not only_capacity_moved(
            json.loads(existing.signed_object), verified.document)
        await listing_store.update_listing(tx, listing_id=listing_id, columns=columns,
                                           updated_at=verified.timestamp, version=version,
                                           signed_object=signed, edited=edited)
    await trust_q.record_check(tx, listing_id, version, verified.check(format_utc(ctx.clock())))
    await listings_arrived(federation, tx, await listing_store.get_listings(tx, [listing_id]))
    return listing_id


async def listings_arrived(federation: Federation, tx: aiosqlite.Connection,
                           rows: Sequence[listing_store.ListingRow]) -> None:
    """The one place for work that must follow remote listings stored or advanced, in the
    transaction that stores them, given their rows as stored: called by ``store_verified``
    for one listing and by ``ingest`` for the new listings of a batch (which never pass
    through ``store_verified``). Hook arrival work here, not in either caller.
    """
    await alerts.match_rows(federation.ctx, tx, rows)  # issue 18: where it arrives


def announce_of(federation: Federation, verified: VerifiedObject, *, hops: int,
                now: str) -> dict[str, Any]:
    """The Group's Announce relaying ``verified`` (its id depends only on the object's id,
    type and timestamp, so the same version is never announced twice)."""
    group = federation.community
    digest = hashlib.sha256(
        f"{verified.object_id}|{verified.type}|{verified.timestamp}".encode()).hexdigest()[:32]
    return activity("Announce", activity_id=f"{group}/announces/{digest}", actor=group,
                    obj=verified.document, to=[PUBLIC], cc=[f"{group}/followers"],
                    published=now, hops=hops + 1)


async def relay(
    federation: Federation, tx: aiosqlite.Connection, verified: VerifiedObject, *, hops: int,
    sender: str, listing_id: str | None = None,
) -> bool:
    """Announce a newly stored object to our followers if ``hops`` is under the limit.

    The author's proof travels unchanged, so every next node verifies the author itself.
    With ``listing_id`` (the listing ``store_verified`` just stored it as), the logged
    Announce points at the listing's text instead of holding a copy.
    """
    if hops >= federation.ctx.config.relay_hop_limit:
        return False
    inboxes = await fq.delivery_inboxes(
        tx, [federation.community],
        exclude_origins=[origin_of(verified.object_id), origin_of(sender)])
    now = format_utc(federation.ctx.clock())
    announce = announce_of(federation, verified, hops=hops, now=now)
    seq = await queue_activity(tx, announce, public=True, inboxes=inboxes, now=now,
                               object_of=listing_id)
    return seq is not None


def published_at(verified: VerifiedObject) -> str:
    """When the listing was first published, as ``store_verified`` stores it (read in our
    compact names when the sender used others; ValidationError if missing)."""
    return verified.published or _timestamp(verified.document, "published")


def hops_of(activity_doc: Mapping[str, Any]) -> int:
    """Hop count an Announce carries (1 for a direct Create)."""
    hops = activity_doc.get("hops", 1)
    return hops if isinstance(hops, int) and 1 <= hops <= 100 else 100

