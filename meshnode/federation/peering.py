"""Peering: community Group actors following each other, as a persisted state machine.

Our side of a peering (``peers.out_state``) follows the declared table
``protocol.peering.PEERING_GRAPH``::

    none ──add──▶ resolving ──(WebFinger/actor fetched, Follow queued)──▶ following
    following ──Accept──▶ peered          following ──Reject──▶ rejected
    resolving ──(too many failures)──▶ failed

Their side is a row in ``followers`` (pending until approved when the policy is
``approve``). Admin actions only write rows, so the CLI works while the node runs: the
running node's ``PeeringWorker`` does the network I/O, the delivery worker sends.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.activities import (
    RemoteActor,
    follow_activity,
    origin_of,
    parse_acct,
    parse_actor,
    response_activity,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.peering import next_peer_state
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.publishing import queue_activity
from meshnode.store import federation as fq
from meshnode.store import outbox as oq

PEER_STATES = ("pending", "peered", "blocked")
# Actors we follow back when they follow our Group (communities, not people): under
# ``auto`` at once, under ``approve`` when an admin approves.
PEER_TYPES = ("Group", "Application", "Service", "Organization")


def new_activity_id(actor: str, kind: str) -> str:
    """A fresh activity id on our origin."""
    return f"{actor}/activities/{kind}-{secrets.token_hex(8)}"


def _group(ctx: NodeContext) -> str:
    return urls.community_actor(ctx.config.base_url, ctx.config.handle)


def _now(ctx: NodeContext) -> str:
    return format_utc(ctx.clock())


async def queue_follow(ctx: NodeContext, tx: aiosqlite.Connection, actor: RemoteActor) -> None:
    """Queue our Follow of a peer's Group actor and move the peer to ``following``."""
    group = _group(ctx)
    follow = follow_activity(new_activity_id(group, "follow"), group, actor.id)
    now = _now(ctx)
    await fq.insert_peer(tx, origin=actor.origin, requested=actor.id, out_state="none", now=now)
    await queue_activity(tx, follow, public=False, inboxes=[actor.inbox], now=now)
    await fq.update_peer(tx, actor.origin, now, actor_id=actor.id, out_state="following",
                         out_follow_id=follow["id"], last_error=None)


async def accept_pending_follow(ctx: NodeContext, tx: aiosqlite.Connection,
                                remote: RemoteActor) -> bool:
    """Accept ``remote``'s Follow of our Group if it awaits approval; True if there was one.

    Called when we follow that node of our own accord (an admin's ``peer add``, a verified
    LAN neighbour): asking to peer with it answers its own request. Under ``approve`` its
    Follow, processed before we asked, stayed pending while ours was accepted: we were
    ``peered``, it stayed ``following`` for good and never got our listings."""
    group = _group(ctx)
    row = await fq.get_follower(tx, group, remote.id)
    if row is None or row["state"] != "pending":
        return False
    await _accept_follow(ctx, tx, group, remote, row["follow_id"])
    return True


async def _accept_follow(ctx: NodeContext, tx: aiosqlite.Connection, group: str,
                         remote: RemoteActor, follow_id: str) -> None:
    """Accept ``remote``'s stored Follow ``follow_id`` of our ``group``."""
    follow = {"id": follow_id, "type": "Follow", "actor": remote.id, "object": group}
    await answer_follow(ctx, tx, local_actor=group, remote=remote, follow=follow, accept=True)


async def answer_follow(
    ctx: NodeContext, tx: aiosqlite.Connection, *, local_actor: str, remote: RemoteActor,
    follow: Mapping[str, Any], accept: bool, reader: str | None = None,
) -> None:
    """Record a follower (accepted) and queue Accept, or queue Reject.

    ``reader`` is the document this follower gets (federation/readers.py); None keeps it.
    """
    kind = "Accept" if accept else "Reject"
    answer = response_activity(kind, new_activity_id(local_actor, kind.lower()), local_actor,
                               follow)
    now = _now(ctx)
    if accept:
        await fq.upsert_follower(tx, local_actor=local_actor, remote_actor=remote.id,
                                 follow_id=str(follow["id"]), state="accepted", now=now,
                                 reader=reader)
    else:
        await fq.delete_follower(tx, local_actor, remote.id)
    await queue_activity(tx, answer, public=False, inboxes=[remote.inbox], now=now)


async def _cached_actor(tx: aiosqlite.Connection, actor_id: str) -> RemoteActor:
    row = await fq.get_actor_row(tx, actor_id)
    if row is None:
        raise NotFoundError(f"actor {actor_id!r} is not known yet")
    return parse_actor(json.loads(row["document"]), fetched_from=actor_id)


# --------------------------------------------------------------------------- admin actions


def _target_origin(target: str) -> tuple[str, str]:
    """(peer key, requested) for a node URL or ``handle@host[:port]``."""
    text = target.strip()
    if text.startswith(("http://", "https://")):
        return origin_of(text), text
    name, host = parse_acct(text)
    return f"acct:{name}@{host}", f"{name}@{host}"


async def add_peer(ctx: NodeContext, target: str) -> str:
    """Ask to peer with a node (URL or handle); the peering worker resolves and follows."""
    key, requested = _target_origin(target)
    if key == origin_of(ctx.config.base_url):
        raise ValidationError("a node cannot peer with itself")
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        row = await fq.get_peer(tx, key)
        if (row is not None and row["blocked"]) or await fq.is_blocked(tx, key):
            raise ConflictError(Text("%(key)s is blocked; remove the block first (peer remove)",
                                     key=key))
        if row is None:
            await fq.insert_peer(tx, origin=key, requested=requested, out_state="resolving",
                                 now=now)
        elif (state := next_peer_state(row["out_state"], "add", "admin")) is not None:
            await fq.update_peer(tx, key, now, requested=requested, out_state=state,
                                 attempts=0, next_attempt_at=None)
    return key


async def find_peer(ctx: NodeContext, text: str) -> str:
    """The peer key matching an origin, a URL, or a handle (NotFoundError otherwise)."""
    candidates = [text.strip()]
    if text.startswith(("http://", "https://")):
        candidates.insert(0, origin_of(text))
    else:
        try:
            name, host = parse_acct(text)
            candidates += [f"acct:{name}@{host}", f"http://{host}", f"https://{host}"]
        except ValidationError:
            pass
    for candidate in candidates:
        if await fq.get_peer(ctx.store.reader, candidate) is not None:
            return candidate
    raise NotFoundError(f"no peer {text!r} (see 'meshnode peer list')")


async def approve_peer(ctx: NodeContext, text: str) -> str:
    """Accept a node's pending Follow of our community and follow it back (a community's:
    ``PEER_TYPES``)."""
    origin = await find_peer(ctx, text)
    group = _group(ctx)
    async with ctx.store.transaction() as tx:
        pending = await fq.pending_followers_from(tx, group, origin)
        peer = await fq.get_peer(tx, origin)
        if not pending and (peer is None or peer["out_state"] != "none"):
            raise ConflictError(Text("%(origin)s has no pending request", origin=origin))
        communities = 0
        for row in pending:
            remote = await _cached_actor(tx, row["remote_actor"])
            await _accept_follow(ctx, tx, group, remote, row["follow_id"])
            # A person following us (a Mastodon user) is not followed back: following it
            # would make its whole server a peer (peer quota, its listings accepted)
            if remote.type not in PEER_TYPES:
                continue
            communities += 1
            if peer is not None and next_peer_state(peer["out_state"], "follow",
                                                    "admin") is not None:
                await queue_follow(ctx, tx, remote)
        if (pending and not communities and peer is not None
                and peer["out_state"] == "none" and not peer["blocked"]):
            # Its row only held the request: as under "auto", people who follow us are
            # followers, not peers
            await fq.delete_peer(tx, origin)
    return origin


async def remove_peer(ctx: NodeContext, text: str) -> str:
    """Stop peering: Undo our Follow, Reject theirs, forget the peer (and any block)."""
    origin = await find_peer(ctx, text)
    group = _group(ctx)
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        peer = await fq.get_peer(tx, origin)
        assert peer is not None
        if peer["actor_id"] and peer["out_follow_id"] and not peer["blocked"]:
            remote = await _cached_actor(tx, peer["actor_id"])
            follow = follow_activity(peer["out_follow_id"], group, remote.id)
            undo = response_activity("Undo", new_activity_id(group, "undo"), group, follow)
            await queue_activity(tx, undo, public=False, inboxes=[remote.inbox], now=now)
            follower = await fq.get_follower(tx, group, remote.id)
            if follower is not None:
                await answer_follow(ctx, tx, local_actor=group, remote=remote, accept=False,
                                    follow={"id": follower["follow_id"], "type": "Follow",
                                            "actor": remote.id, "object": group})
        await fq.delete_followers_from(tx, origin)
        await fq.delete_peer(tx, origin)
    return origin


async def block_peer(ctx: NodeContext, text: str) -> str:
    """Defederate: refuse the node's requests, drop its followers and pending deliveries.

    Its listings stay stored: ``federation/blocking.block_node`` hides them (reversibly) and
    applies the rest of a block's effects; this is the door-and-delivery part alone."""
    try:
        origin = await find_peer(ctx, text)
    except NotFoundError:
        origin, _ = _target_origin(text)
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        await fq.insert_peer(tx, origin=origin, requested=text, out_state="none", now=now)
        await fq.update_peer(tx, origin, now, blocked=1, out_state="none", sync_due=0)
        await fq.delete_followers_from(tx, origin)
        await oq.drop_pending_for_host(tx, origin, now)
    return origin


@dataclass(frozen=True)
class PeerStatus:
    """One line of ``meshnode peer list`` / ``GET /api/v1/peers``."""

    peer: str
    actor: str | None
    status: str
    ours: str
    theirs: str | None
    last_delivery: str | None
    last_sync: str | None
    last_error: str | None
    next_attempt: str | None = None  # when the follow is tried again (while it fails)

    def as_json(self) -> dict[str, Any]:
        """API representation."""
        return dict(self.__dict__)


def _status(row: aiosqlite.Row) -> str:
    if row["blocked"]:
        return "blocked"
    if row["out_state"] == "peered" or row["in_state"] == "accepted":
        return "peered"
    return "pending"


async def list_peers(ctx: NodeContext) -> list[PeerStatus]:
    """Every peer with its state, last delivery and last sync."""
    delivered = {row["host"]: row["last_done"]
                 for row in await oq.delivery_summary(ctx.store.reader)}
    return [
        PeerStatus(peer=row["origin"], actor=row["actor_id"], status=_status(row),
                   ours=row["out_state"], theirs=row["in_state"],
                   last_delivery=delivered.get(row["origin"]) or row["last_delivery_at"],
                   last_sync=row["last_sync_at"], last_error=row["last_error"],
                   next_attempt=(row["next_attempt_at"] if row["out_state"] == "resolving"
                                 and row["last_error"] else None))
        for row in await fq.list_peers(ctx.store.reader)
    ]
