"""Issuing deal receipts (``protocol/receipts.py``) once a completed deal has both ratings.

A deal inside this community: the node holds both members' keys, so the receipt is signed by
both parties and the node in the transaction that stored the second rating. A deal across two
communities: the author's node signs first (the author and its node) and sends the receipt to
the booker in an ``Update`` of the Agreement; the booker's node checks it against its own
record of the deal (same parties, completed, the rating its member gave), adds the booker's
and its own proof, keeps it and sends it back; the author's node checks all four proofs and
keeps it too. Until then the author's half is kept as ``pending`` and counts for nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.protocol import deals as deal_proto
from meshnode.protocol import receipts as proto
from meshnode.protocol.activities import origin_of
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import deal_url, queue_to
from meshnode.services.signing import (
    community_actor,
    cosign_as_member,
    cosign_as_node,
    sign_as_member,
)
from meshnode.store import deals as deal_q
from meshnode.store import members as member_q
from meshnode.store import receipts as receipt_q
from meshnode.store import trust as trust_q
from meshnode.store.deals import DealRow, FeedbackRow
from meshnode.store.members import MemberRow

RECEIPT_FIELD = "dealReceipt"
UPDATE_CONTEXT: list[Any] = [*deal_proto.DEAL_CONTEXT[:-1],
                             {**deal_proto.DEAL_TERMS, RECEIPT_FIELD: "mn:dealReceipt"}]


def is_receipt_update(activity: Mapping[str, Any]) -> bool:
    """True for an ``Update`` of an Agreement carrying a deal receipt."""
    obj = activity.get("object")
    return (activity.get("type") == "Update" and isinstance(obj, Mapping)
            and obj.get("type") == "Agreement" and RECEIPT_FIELD in obj)


def receipt_values(ctx: NodeContext, receipt: proto.Receipt, document: Mapping[str, Any], *,
                   party: str, holder_id: int, state: str, source: str,
                   keys: Mapping[str, bytes]) -> dict[str, object]:
    """The ``deal_receipts`` row of one party's copy."""
    sides = receipt.side(party)
    if sides is None:
        raise ValueError("the receipt does not name this party")
    mine, other = sides
    return {
        "deal": receipt.deal, "party_actor": mine.actor, "holder_id": holder_id,
        "other_actor": other.actor, "party_node": mine.node, "other_node": other.node,
        "completed_at": format_utc(receipt.completed), "rating": mine.rating,
        "no_show": int(mine.no_show), "other_rating": other.rating,
        "other_no_show": int(other.no_show), "state": state, "source": source,
        "document": json.dumps(document, ensure_ascii=False),
        "keys": json.dumps({method: key.hex() for method, key in keys.items()}),
        "checked_at": format_utc(ctx.clock()),
    }


async def _node_of(ctx: NodeContext, tx: aiosqlite.Connection, actor: str) -> str | None:
    """The community (Group actor) an actor belongs to: ours, or the one on its origin."""
    if origin_of(actor) == origin_of(ctx.config.base_url):
        return community_actor(ctx)
    return (await trust_q.peer_actors(tx)).get(origin_of(actor))


def _completed_at(deal: DealRow, events: list[aiosqlite.Row]) -> datetime:
    done = [event["at"] for event in events if event["to_state"] == "completed"]
    return parse_utc(done[-1] if done else deal.updated_at, field="completed")


async def _member(tx: aiosqlite.Connection, member_id: int) -> MemberRow:
    member = await member_q.get_member(tx, member_id)
    if member is None:
        raise LookupError(f"member {member_id} vanished")
    return member


def _local_keys(ctx: NodeContext, *members: MemberRow) -> dict[str, bytes]:
    keys = {urls.ed25519_key_id(community_actor(ctx)): ctx.identity.ed25519_public}
    for member in members:
        keys[urls.ed25519_key_id(urls.member_actor(ctx.config.base_url, member.username))] = (
            member.ed25519_public)
    return keys


async def _draft(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow,
                 by: Mapping[str, FeedbackRow]) -> dict[str, Any] | None:
    booker_node = await _node_of(ctx, tx, deal.booker_uri)
    author_node = await _node_of(ctx, tx, deal.author_uri)
    if booker_node is None or author_node is None:
        return None  # the other community is not known here yet
    about_booker, about_author = by[deal.author_uri], by[deal.booker_uri]
    return proto.build_receipt(
        deal=deal.agreement_id, completed=_completed_at(deal, await deal_q.events(tx, deal.id)),
        booker=proto.ReceiptParty(deal.booker_uri, booker_node, about_booker.rating,
                           about_booker.no_show),
        author=proto.ReceiptParty(deal.author_uri, author_node, about_author.rating,
                           about_author.no_show))


async def issue_if_ready(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow) -> str:
    """Called in the transaction that stored a rating: once the deal is completed and both
    parties rated it, the author's node signs the receipt (and finishes it for a local deal).
    Returns what happened."""
    if deal.state != "completed" or deal.author_id is None:
        return "not ours to issue"
    by = {row.author_uri: row for row in await deal_q.feedback_for_deal(tx, deal.id)}
    if deal.author_uri not in by or deal.booker_uri not in by:
        return "waiting for both ratings"
    draft = await _draft(ctx, tx, deal, by)
    if draft is None:
        return "the other community is not known"
    now = ctx.clock()
    author = await _member(tx, deal.author_id)
    signed = cosign_as_node(ctx, cosign_as_member(ctx, author, draft, now), now)
    if deal.booker_id is not None:
        booker = await _member(tx, deal.booker_id)
        signed = cosign_as_member(ctx, booker, signed, now)
        receipt = proto.parse_receipt(signed)
        keys = _local_keys(ctx, author, booker)
        for party, holder in ((deal.author_uri, author.id), (deal.booker_uri, booker.id)):
            await receipt_q.upsert_receipt(tx, receipt_values(
                ctx, receipt, signed, party=party, holder_id=holder, state="complete",
                source="deal", keys=keys))
        return "issued"
    receipt = proto.parse_receipt(signed)
    await receipt_q.upsert_receipt(tx, receipt_values(
        ctx, receipt, signed, party=deal.author_uri, holder_id=author.id, state="pending",
        source="deal", keys=_local_keys(ctx, author)))
    await _send(ctx, tx, deal, author, signed, "author", deal.booker_uri)
    return "sent for counter-signature"


async def _send(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, sender: MemberRow,
                receipt: Mapping[str, Any], stage: str, to: str) -> None:
    now = ctx.clock()
    actor = urls.member_actor(ctx.config.base_url, sender.username)
    # the time in the id: a receipt issued again later is a new activity, not a duplicate
    update = {"@context": UPDATE_CONTEXT,
              "id": f"{deal_url(ctx, deal.id)}/receipt/{stage}/{int(now.timestamp())}",
              "type": "Update", "actor": actor, "to": [to],
              "object": {"type": "Agreement", "id": deal.agreement_id,
                         RECEIPT_FIELD: dict(receipt)},
              "published": format_utc(now)}
    await queue_to(ctx, tx, sign_as_member(ctx, sender, update, now), to)


def _matches_our_record(ctx: NodeContext, deal: DealRow, receipt: proto.Receipt,
                        by: Mapping[str, FeedbackRow]) -> str | None:
    """Why the author's receipt does not match what the booker's node knows, or None."""
    if (receipt.booker.actor, receipt.author.actor) != (deal.booker_uri, deal.author_uri):
        return "the receipt names other parties"
    if receipt.booker.node != community_actor(ctx):
        return "the receipt names another community for our member"
    given = by.get(deal.booker_uri)
    if given is None:
        return "our member has not rated this deal"
    if (receipt.author.rating, receipt.author.no_show) != (given.rating, given.no_show):
        return "the receipt misstates our member's rating"
    received = by.get(deal.author_uri)
    if received is not None and (receipt.booker.rating, receipt.booker.no_show) != (
            received.rating, received.no_show):
        return "the receipt misstates the rating our member received"
    if receipt.completed > ctx.clock():
        return "the receipt is dated in the future"
    return None


async def countersign(ctx: NodeContext, tx: aiosqlite.Connection, actor: str,
                      document: Mapping[str, Any], keys: Mapping[str, bytes]) -> str:
    """The booker's node receives the author's half-signed receipt (its two proofs already
    checked with ``keys``): check it against our deal, add our two proofs, keep it, send it
    back. Returns the outcome."""
    receipt = proto.parse_receipt(document)
    deal = await deal_q.deal_by(tx, "agreement_id", receipt.deal)
    if deal is None or deal.booker_id is None or deal.author_id is not None:
        return "ignored: not a deal our member booked from another community"
    if actor != deal.author_uri or deal.state != "completed":
        return "rejected: only the author of a completed deal sends its receipt"
    by = {row.author_uri: row for row in await deal_q.feedback_for_deal(tx, deal.id)}
    problem = _matches_our_record(ctx, deal, receipt, by)
    if problem is not None:
        return f"rejected: {problem}"
    if await receipt_q.get_receipt(tx, receipt.deal, deal.booker_uri) is not None:
        return "ignored: already countersigned"
    now = ctx.clock()
    booker = await _member(tx, deal.booker_id)
    signed = cosign_as_node(ctx, cosign_as_member(ctx, booker, document, now), now)
    await receipt_q.upsert_receipt(tx, receipt_values(
        ctx, receipt, signed, party=deal.booker_uri, holder_id=booker.id, state="complete",
        source="deal", keys={**keys, **_local_keys(ctx, booker)}))
    await _send(ctx, tx, deal, booker, signed, "booker", deal.author_uri)
    return "countersigned"


async def complete(ctx: NodeContext, tx: aiosqlite.Connection, actor: str,
                   document: Mapping[str, Any], keys: Mapping[str, bytes]) -> str:
    """The author's node receives the receipt back with all four proofs (checked with
    ``keys``): it must say exactly what we signed. Returns the outcome."""
    receipt = proto.parse_receipt(document)
    deal = await deal_q.deal_by(tx, "agreement_id", receipt.deal)
    if deal is None or deal.author_id is None or actor != deal.booker_uri:
        return "ignored: not a receipt we sent"
    pending = await receipt_q.get_receipt(tx, receipt.deal, deal.author_uri)
    if pending is None:
        return "ignored: we sent no receipt for this deal"
    if pending.state == "complete":
        return "ignored: already complete"
    ours = {k: v for k, v in json.loads(pending.document).items() if k != "proof"}
    if ours != {k: v for k, v in document.items() if k != "proof"}:
        return "rejected: the receipt was changed"
    author = await _member(tx, deal.author_id)
    await receipt_q.upsert_receipt(tx, receipt_values(
        ctx, receipt, document, party=deal.author_uri, holder_id=author.id,
        state="complete", source="deal", keys={**keys, **_local_keys(ctx, author)}))
    return "completed"


async def issue_missing(ctx: NodeContext) -> int:
    """Issue the receipts a completed, twice-rated deal did not get at the time (its other
    community was not known yet, or it predates receipts); returns how many were issued."""
    issued = 0
    for deal_id in await receipt_q.deals_missing_receipts(ctx.store.reader):
        async with ctx.store.transaction() as tx:
            deal = await deal_q.get_deal(tx, deal_id)
            if deal is not None and (await issue_if_ready(ctx, tx, deal)) in (
                    "issued", "sent for counter-signature"):
                issued += 1
    return issued
