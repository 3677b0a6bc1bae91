"""Portable reputation: what a member's deal receipts count for, each receipt checked again,
and the signed export a member takes when moving to another community.

Counting rules (issue 18): a receipt counts once (one row per deal and party, whatever way
it arrived); only a receipt carrying the proofs of both parties and both communities is kept
as complete (a half-signed one counts for nothing); a deal between two accounts of one
community counts at most once per pair and calendar month. No-shows all count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol import receipts as proto
from meshnode.protocol.activities import check_url
from meshnode.protocol.errors import ProtocolError, ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.receipts import receipt_values
from meshnode.services.signing import community_actor, cosign_as_member, cosign_as_node
from meshnode.store import members as member_q
from meshnode.store import receipts as receipt_q
from meshnode.store.members import MemberRow
from meshnode.store.receipts import ReceiptRow

# A bundle holds at most this many receipts (each about 2-2.5 KB with four proofs), in a
# request body of at most MAX_BUNDLE_BYTES (413 beyond; the import route's own cap, above the
# general 256 KiB so that 100 receipts with long names always fit).
MAX_BUNDLE_RECEIPTS = 100
MAX_BUNDLE_BYTES = 512 * 1024
# Receipts a page or the API lists (newest first), each checked again on every read.
PAGE_RECEIPTS = 50


@dataclass(frozen=True)
class Reputation:
    """What a member's receipts count for: completed deals, of which with other
    communities, and times they were reported absent."""

    deals: int
    cross_community: int
    no_shows: int

    def to_json(self) -> dict[str, int]:
        """The counts as the API shows them."""
        return {"deals": self.deals, "cross_community": self.cross_community,
                "no_shows": self.no_shows}


@dataclass(frozen=True)
class CheckedReceipt:
    """A stored receipt and the verdict of checking its proofs again now."""

    row: ReceiptRow
    verified: bool
    error: str


def _local_username(ctx: NodeContext, actor_id: str) -> str | None:
    prefix = urls.member_actor(ctx.config.base_url, "")
    rest = actor_id[len(prefix):] if actor_id.startswith(prefix) else ""
    return rest if rest and "/" not in rest else None


async def count_for(ctx: NodeContext, actor_id: str) -> Reputation:
    """What ``actor_id``'s receipts count for: a member of this node by the receipts they
    hold (their own deals and those they imported); a member of another node by the complete
    receipts of their deals with our members."""
    username = _local_username(ctx, actor_id)
    if username is not None:
        member = await member_q.get_member_by_username(ctx.store.reader, username)
        if member is None:
            return Reputation(0, 0, 0)
        counts = await receipt_q.count_for_holder(ctx.store.reader, member.id)
    else:
        counts = await receipt_q.count_for_other(ctx.store.reader, actor_id)
    return Reputation(counts.deals, counts.cross_community, counts.no_shows)


def recheck(row: ReceiptRow) -> CheckedReceipt:
    """Verify the stored receipt again with the keys it was checked with when it arrived
    (one Ed25519 check per proof), so a row altered in the database never shows verified."""
    try:
        document = json.loads(row.document)
        receipt = proto.parse_receipt(document)
        keys = {method: bytes.fromhex(key) for method, key in json.loads(row.keys).items()}
        proto.verify_signed(document, receipt.signers, keys)
        if receipt.side(row.party_actor) is None or receipt.deal != row.deal:
            raise ValidationError("the stored receipt does not name its holder")
    except (ProtocolError, ValueError) as exc:
        return CheckedReceipt(row, verified=False, error=str(exc)[:300])
    return CheckedReceipt(row, verified=True, error="")


async def receipts_of(ctx: NodeContext, username: str) -> tuple[Reputation, list[CheckedReceipt]]:
    """A member's counts and newest complete receipts (``PAGE_RECEIPTS``), each checked
    again."""
    member = await member_q.get_member_by_username(ctx.store.reader, username)
    if member is None or not member.is_active:
        raise NotFoundError(Text("no member named %(name)s", name=repr(username)))
    rows = await receipt_q.held_by(ctx.store.reader, member.id, limit=PAGE_RECEIPTS)
    actor = urls.member_actor(ctx.config.base_url, member.username)
    return await count_for(ctx, actor), [recheck(row) for row in rows]


def parse_moving_to(value: object) -> str:
    """The account a member moves to: its actor URL (``for=``)."""
    try:
        return check_url(value, "for")
    except ValidationError as exc:
        raise ValidationError("say which account you move to",
                              {"for": "the actor URL of your new account"}) from exc


async def export_bundle(ctx: NodeContext, member: MemberRow, moving_to: object
                        ) -> dict[str, Any]:
    """The member's complete receipts as a bundle signed by the member and this node, for
    the account named by ``moving_to``."""
    target = parse_moving_to(moving_to)
    rows = await receipt_q.held_by(ctx.store.reader, member.id, limit=MAX_BUNDLE_RECEIPTS)
    now = ctx.clock()
    bundle = proto.build_bundle(
        actor=urls.member_actor(ctx.config.base_url, member.username),
        node=community_actor(ctx), moving_to=target, exported=now,
        receipts=[json.loads(row.document) for row in rows if recheck(row).verified])
    return cosign_as_node(ctx, cosign_as_member(ctx, member, bundle, now), now)


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt of an import whose proofs all verified, with the keys that verified them."""

    receipt: proto.Receipt
    document: Mapping[str, Any]
    keys: Mapping[str, bytes]


async def store_imported(ctx: NodeContext, member: MemberRow, party: str,
                         items: Sequence[VerifiedReceipt]) -> int:
    """Keep verified imported receipts for ``member`` as ``party`` (the actor they had on
    their former node), all or none: a receipt already here is a 409 naming it."""
    known = await receipt_q.known_deals(ctx.store.reader, [i.receipt.deal for i in items],
                                        [party])
    duplicates = {f"receipts.{n}": "already imported"
                  for n, item in enumerate(items) if item.receipt.deal in known}
    if duplicates:
        raise ConflictError("some receipts are already on this node", duplicates)
    async with ctx.store.transaction() as tx:
        for n, item in enumerate(items):
            values = receipt_values(ctx, item.receipt, item.document, party=party,
                                    holder_id=member.id, state="complete", source="import",
                                    keys=item.keys)
            values["checked_at"] = format_utc(ctx.clock())
            if not await receipt_q.insert_imported(tx, values):
                raise ConflictError("some receipts are already on this node",
                                    {f"receipts.{n}": "already imported"})
    return len(items)
