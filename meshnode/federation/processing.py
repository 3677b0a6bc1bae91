"""Applying activities: a dispatch table by type, in two phases.

``prepare`` does the network work (actor documents, proof keys) and the CPU work (proofs)
and returns an ``Effect``; a batch of effects runs inside one write transaction
(``ingest.apply_effects``), marked processed in that same transaction. The inbox worker and
catch-up sync share this. Processing the same activity twice has no further effect (ids and
versions dedupe).

The handlers of deals, waiting lists, reports and direct messages are imported on the first
activity of their kind (``LAZY``): a node that never receives one does not hold those
services in memory (issue 17: about 170 of our modules were imported at start).
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.federation.inbox import sender_facts
from meshnode.federation.ingest import EXPECTED, Effect, StoreListing, apply_effects, run_effect
from meshnode.federation.iou import IOU_PREPARERS
from meshnode.federation.peering import PEER_TYPES, answer_follow, queue_follow
from meshnode.federation.readers import classify_reader
from meshnode.federation.remote import hops_of, verify_listing_object
from meshnode.federation.state import Federation
from meshnode.protocol.activities import id_of, origin_of, same_origin
from meshnode.protocol.deals import deal_activity_kind
from meshnode.protocol.direct_messages import is_direct_note
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.flags import is_flag_activity
from meshnode.protocol.inbox_policy import Sender, decide
from meshnode.protocol.ldread import ContextError, read_document
from meshnode.protocol.peering import next_peer_state
from meshnode.protocol.queue_wire import queue_activity_kind
from meshnode.protocol.timefmt import format_utc
from meshnode.store import account_deletions as deletion_store
from meshnode.store import federation as fq
from meshnode.store import listings as listing_store

Preparer = Callable[[Federation, Mapping[str, Any]], Awaitable[Effect]]
__all__ = ["EXPECTED", "Effect", "InboxWorker", "outcome", "prepare", "run_effect"]
# Inbox activities taken per step: verified one by one, then written in one transaction.
INBOX_BATCH = 200
# The worker lets requests in (the inbox answering peers) after verifying this many.
YIELD_EVERY = 4


class ForbiddenChangeError(ProtocolError):
    """The activity's actor may not change this object (REFERENCE §2)."""


def outcome(text: str) -> Effect:
    """An effect that writes nothing."""
    async def effect(_tx: aiosqlite.Connection) -> str:
        return text
    return effect


def _local_target(federation: Federation, target: str) -> tuple[str, str] | None:
    base = federation.ctx.config.base_url
    if target == federation.community:
        return "group", target
    prefix = urls.member_actor(base, "")
    if target.startswith(prefix) and "/" not in target[len(prefix):]:
        return "member", target
    return None


async def prepare_follow(federation: Federation, act: Mapping[str, Any]) -> Effect:
    target = id_of(act.get("object"), "object")
    local = _local_target(federation, target)
    if local is None:
        return outcome("ignored: not one of our actors")
    remote = await federation.directory.get_actor(str(act["actor"]))
    ctx = federation.ctx
    follow = {"id": act["id"], "type": "Follow", "actor": remote.id, "object": target}
    reader = await classify_reader(federation, remote) if local[0] == "group" else None

    async def effect(tx: aiosqlite.Connection) -> str:
        if local[0] == "member":
            await answer_follow(ctx, tx, local_actor=target, remote=remote, follow=follow,
                                accept=True)
            return "accepted"
        peer = await fq.get_peer(tx, remote.origin)
        # We already asked (resolving, following, peered) when their Follow cannot make us
        # follow them (protocol.peering.PEERING_GRAPH).
        we_asked = peer is not None and next_peer_state(peer["out_state"], "follow",
                                                        "peer") is None
        if ctx.config.peering_policy == "auto" or we_asked:
            await answer_follow(ctx, tx, local_actor=target, remote=remote, follow=follow,
                                accept=True, reader=reader)
            if remote.type in PEER_TYPES and not we_asked:
                await queue_follow(ctx, tx, remote)
            return "accepted"
        await fq.upsert_follower(tx, local_actor=target, remote_actor=remote.id,
                                 follow_id=str(act["id"]), state="pending",
                                 now=format_utc(ctx.clock()), reader=reader)
        await fq.insert_peer(tx, origin=remote.origin, requested=remote.id, out_state="none",
                             now=format_utc(ctx.clock()))
        await fq.update_peer(tx, remote.origin, format_utc(ctx.clock()), actor_id=remote.id)
        return "pending approval"

    return effect


def _answer_preparer(event: str) -> Preparer:
    async def prepare(federation: Federation, act: Mapping[str, Any]) -> Effect:
        follow_id = id_of(act.get("object"), "object")
        actor = str(act["actor"])

        async def effect(tx: aiosqlite.Connection) -> str:
            peer = await fq.get_peer(tx, origin_of(actor))
            if peer is None or peer["out_follow_id"] != follow_id or peer["actor_id"] != actor:
                return "ignored: not an answer to our Follow"
            target = next_peer_state(peer["out_state"], event, "peer")
            if target is None:
                return f"ignored: peering is {peer['out_state']}"
            await fq.update_peer(tx, peer["origin"], format_utc(federation.ctx.clock()),
                                 out_state=target, sync_due=int(target == "peered"))
            return target

        return effect

    return prepare


async def prepare_undo(federation: Federation, act: Mapping[str, Any]) -> Effect:
    obj = act.get("object")
    follow_id = id_of(obj, "object")
    if isinstance(obj, Mapping) and obj.get("type") not in (None, "Follow"):
        return outcome("ignored: only Undo Follow is supported")
    actor = str(act["actor"])

    async def effect(tx: aiosqlite.Connection) -> str:
        removed = await fq.delete_follow(tx, actor, follow_id)
        return "unfollowed" if removed else "ignored: no such follow"

    return effect


async def prepare_listing(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """Create / Update / Delete sent by the author's own node; Announce by a relay."""
    actor = str(act["actor"])
    obj = act.get("object")
    if act["type"] == "Delete" and isinstance(obj, str):
        return await _unsigned_delete(federation, actor, obj)
    if act["type"] == "Announce" and not isinstance(obj, Mapping):
        return outcome("ignored: Announce of a link")
    verified = await verify_listing_object(federation, obj)
    if act["type"] != "Announce" and verified.author != actor:
        raise ForbiddenChangeError("only the author's own node may Create, Update or Delete it")
    hops = hops_of(act) if act["type"] == "Announce" else 1
    if hops > 1 and await _peered_with(federation, verified.author):
        # We are one hop from the author, whoever relayed this version to us first: counting
        # the relay's hops would leave our side of the author's radius without it when a
        # relay (or a catch-up page) outruns the author's own delivery (docs/scale.md).
        hops = 1
    return StoreListing(federation, verified, hops, actor)


async def _peered_with(federation: Federation, author: str) -> bool:
    peer = await fq.get_peer(federation.ctx.store.reader, origin_of(author))
    return peer is not None and peer["out_state"] == "peered" and not peer["blocked"]


async def _unsigned_delete(federation: Federation, actor: str, object_id: str) -> Effect:
    if not same_origin(actor, object_id):
        return outcome("rejected: Delete from another origin")

    async def effect(tx: aiosqlite.Connection) -> str:
        row = await listing_store.get_listing_by_object_id(tx, object_id)
        if row is None and await deletion_store.delete_received_note(tx, object_id, actor):
            return "message deleted"  # its author deleted it (or their account)
        if row is None or row.is_local or row.author_uri != actor or row.status == "withdrawn":
            return "ignored"
        await listing_store.mark_withdrawn(tx, row.id)
        return "withdrawn"

    return effect


def lazy_preparer(module: str, name: str) -> Preparer:
    """A preparer that imports ``module`` on its first call and hands over to its ``name``
    (``sys.modules`` keeps it from then on)."""

    async def prepare(federation: Federation, act: Mapping[str, Any]) -> Effect:
        handler: Preparer = getattr(importlib.import_module(module), name)
        return await handler(federation, act)

    return prepare


# Recognised by their shape (pure functions), handled by modules imported on first use.
LAZY: tuple[tuple[Callable[[Mapping[str, Any]], object], Preparer], ...] = (
    (queue_activity_kind, lazy_preparer("meshnode.federation.queue", "prepare_queue")),
    (deal_activity_kind, lazy_preparer("meshnode.federation.deals", "prepare_deal")),
    (is_flag_activity, lazy_preparer("meshnode.federation.flags", "prepare_flag")),
    (is_direct_note, lazy_preparer("meshnode.federation.messaging", "prepare_direct_note")),
)

PREPARERS: dict[str, Preparer] = {
    "Follow": prepare_follow,
    "Accept": _answer_preparer("accept"),
    "Reject": _answer_preparer("reject"),
    "Undo": prepare_undo,
    "Create": prepare_listing,
    "Update": prepare_listing,
    "Delete": prepare_listing,
    "Announce": prepare_listing,
    **IOU_PREPARERS,
}


async def prepare(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """The effect of one activity, read in our compact names (``protocol.ldread``: proofs are
    still checked on the objects as received); failures become a 'rejected' outcome."""
    try:
        act = read_document(act).document
    except ContextError as exc:
        return outcome(f"rejected: {exc}")
    return await prepare_read(federation, act)


async def prepare_read(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """``prepare`` for an activity already read in our compact names (``read_document``)."""
    preparer = next((lazy for recognise, lazy in LAZY if recognise(act)),
                    None) or PREPARERS.get(str(act.get("type")))
    if preparer is None:
        return outcome(f"ignored: unsupported type {str(act.get('type'))[:40]}")
    try:
        return await preparer(federation, act)
    except EXPECTED as exc:
        return outcome(f"rejected: {exc}")


PRUNE_BATCH = 5000


class InboxWorker:
    """Processes stored inbox activities in order; ``step()`` handles one batch, ``prune()``
    deletes processed activities older than ``federation.inbox_retention_days``."""

    def __init__(self, federation: Federation, batch: int = INBOX_BATCH) -> None:
        self.federation = federation
        self.batch = batch

    async def _admitted(self, act: Mapping[str, Any],
                        senders: dict[str, Sender]) -> Effect | None:
        """The door's policy again, with the sender's facts as they are now (a peer may have
        been removed since): an outcome that changes nothing when it no longer admits.
        ``act`` is already read in our compact names; ``senders`` keeps each origin's facts
        for the batch (one read per origin)."""
        origin = origin_of(str(act.get("actor")))
        sender = senders.get(origin)
        if sender is None:
            sender = senders[origin] = await sender_facts(self.federation, origin)
        verdict = decide(act, here=self.federation.here, sender=sender)
        return None if verdict.admit else outcome(f"refused: {verdict.message}")

    async def _prepare_all(self, rows: Sequence[aiosqlite.Row]) -> list[Effect]:
        """Check and verify a batch, outside any transaction (proofs are CPU work; the
        event loop answers requests in between)."""
        senders: dict[str, Sender] = {}
        effects = []
        for count, row in enumerate(rows, start=1):
            # Read once: both the policy check and the preparer use this reading (the door's,
            # when it kept it: the same body, already parsed and read in our names).
            act = self.federation.writer.take_reading(row["activity_id"], row["body"])
            if act is None:
                try:
                    act = read_document(json.loads(row["body"])).document
                except ContextError as exc:
                    effects.append(outcome(f"refused: {exc}"))
                    continue
            effects.append(await self._admitted(act, senders)
                           or await prepare_read(self.federation, act))
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return effects

    async def step(self) -> int:
        """Process up to one batch; return how many activities were processed.

        Its effects and the rows' ``processed_at`` commit together: a crash mid-batch leaves
        the whole batch unprocessed, and the next start processes it once.
        """
        ctx = self.federation.ctx
        rows = await fq.unprocessed(ctx.store.reader, self.batch)
        if not rows:
            return 0
        effects = await self._prepare_all(rows)
        async with ctx.store.transaction() as tx:
            outcomes = await apply_effects(self.federation, tx, effects)
            await fq.mark_processed_many(tx, list(zip([row["seq"] for row in rows], outcomes,
                                                      strict=True)), format_utc(ctx.clock()))
        self.federation.writer.processed(len(rows))
        self.federation.wake_delivery()
        if self.federation.deals_touched:  # committed: the deal worker may pay now
            self.federation.deals_touched = False
            self.federation.deals_event.set()
        return len(rows)

    async def prune(self) -> int:
        """Delete processed activities older than the retention period; return how many."""
        ctx = self.federation.ctx
        cutoff = ctx.clock() - timedelta(days=ctx.config.inbox.retention_days)
        removed = 0
        while True:
            async with ctx.store.transaction() as tx:
                count = await fq.prune_inbox(tx, format_utc(cutoff), PRUNE_BATCH)
            removed += count
            if count < PRUNE_BATCH:
                return removed
