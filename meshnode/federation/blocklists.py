"""Shared block lists: publish ours (signed by the node), subscribe to a peer's, review.

* ``GET /blocklist`` is our blocked origins as an ``OrderedCollection`` with the node's
  FEP-8b32 proof (eddsa-jcs-2022, the Group actor's Ed25519 key).
* An admin subscribes to the list of a peer (a node we peer with and do not block) only; the
  list is fetched from that peer's own origin (``ORIGIN/blocklist``) through the guarded
  client, and used only when its proof verifies with a key the peer's actor document lists.
* Each origin it names becomes a proposal the admin applies or ignores; with ``auto_apply``
  new proposals are applied at once. Applying is the explicit block of
  ``federation/blocking.py`` (listings hidden, deals ended, line frozen).
* Lists are refreshed by the task runner every ``REFRESH_SECONDS``; at most
  ``MAX_BLOCKLIST_ITEMS`` items, and the fetch itself is size-capped (``http.py``).
"""

from __future__ import annotations

from typing import Any

from meshnode.errors import ConflictError, NotFoundError, ServiceError
from meshnode.federation import blocking
from meshnode.federation.http import FetchError
from meshnode.federation.keycheck import verify_actor_proof
from meshnode.federation.state import Federation
from meshnode.protocol.activities import origin_of
from meshnode.protocol.blocklists import blocklist_document, parse_blocklist
from meshnode.protocol.errors import ProtocolError, ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.permissions import require_admin
from meshnode.services.signing import community_actor, sign_as_node
from meshnode.store import blocklists as q
from meshnode.store import federation as fq
from meshnode.store.blocklists import ProposalRow, SubscriptionRow
from meshnode.store.members import MemberRow

REFRESH_SECONDS = 6 * 3600.0
PATH = "/blocklist"
ADMINS = "only administrators manage block lists"
FETCH_ERRORS = (FetchError, ProtocolError, ServiceError)


async def published(ctx: NodeContext) -> dict[str, Any]:
    """Our block list, signed by the node."""
    origins = await fq.blocked_origins(ctx.store.reader)
    now = ctx.clock()
    document = blocklist_document(collection_id=ctx.config.base_url + PATH,
                                  actor=community_actor(ctx), origins=origins,
                                  updated=format_utc(now))
    return sign_as_node(ctx, document, now)


async def _peer_actor(ctx: NodeContext, origin: str) -> str:
    peer = await fq.get_peer_both_ways(ctx.store.reader, origin)
    peered = peer is not None and (peer["out_state"] == "peered"
                                   or peer["in_state"] == "accepted")
    if peer is None or not peered or peer["blocked"] or not peer["actor_id"]:
        raise ConflictError(Text("only the block list of a peer can be followed"))
    return str(peer["actor_id"])


async def fetch(federation: Federation, origin: str, actor: str) -> tuple[str, ...]:
    """The peer's list, from its own origin, proof checked with the peer actor's key."""
    ctx = federation.ctx
    url = origin + PATH
    document = await federation.client.get_json(url)
    targets = parse_blocklist(document, expected_id=url, expected_actor=actor,
                              here=origin_of(ctx.config.base_url))
    await verify_actor_proof(federation.directory, document, actor)
    return targets


async def refresh(federation: Federation, origin: str) -> list[int]:
    """Fetch one subscription's list; record new proposals (applied at once with
    ``auto_apply``); returns the new proposal ids. A failed fetch is recorded, not raised."""
    ctx = federation.ctx
    sub = next((s for s in await q.subscriptions(ctx.store.reader) if s.origin == origin),
               None)
    if sub is None:
        raise NotFoundError(Text("no such block list subscription"))
    now = format_utc(ctx.clock())
    try:
        targets = await fetch(federation, origin, sub.actor)
    except FETCH_ERRORS as exc:
        async with ctx.store.transaction() as tx:
            await q.record_fetch(tx, origin, now, error=str(exc)[:300])
        return []
    async with ctx.store.transaction() as tx:
        await q.record_fetch(tx, origin, now, items=len(targets))
        new = await q.add_proposals(tx, origin, list(targets), now)
    if sub.auto_apply:
        for proposal_id in new:
            await decide(ctx, None, proposal_id, "apply")
    return new


async def refresh_all(federation: Federation) -> int:
    """Refresh every subscription (the task runner); returns how many new proposals."""
    subs = await q.subscriptions(federation.ctx.store.reader)
    return sum([len(await refresh(federation, sub.origin)) for sub in subs])


async def subscribe(federation: Federation, admin: MemberRow, text: str, *,
                    auto_apply: object) -> list[int]:
    """Follow a peer's block list and fetch it now; returns the new proposal ids."""
    require_admin(admin, ADMINS)
    if not isinstance(auto_apply, bool):
        raise ValidationError(Text("auto_apply: true or false"),
                              {"auto_apply": Text("true or false")})
    ctx = federation.ctx
    origin = blocking.origin_from(ctx, text)
    actor = await _peer_actor(ctx, origin)
    async with ctx.store.transaction() as tx:
        await q.upsert_subscription(tx, origin=origin, actor=actor, auto_apply=auto_apply,
                                    now=format_utc(ctx.clock()))
    return await refresh(federation, origin)


async def overview(ctx: NodeContext, admin: MemberRow, *, state: str | None
                   ) -> tuple[list[SubscriptionRow], list[ProposalRow]]:
    """Subscriptions and proposals (of one ``state`` if given), for the admin."""
    require_admin(admin, ADMINS)
    reader = ctx.store.reader
    return await q.subscriptions(reader), await q.proposals(reader, state=state)


async def unsubscribe(ctx: NodeContext, admin: MemberRow, text: str) -> None:
    """Stop following a list; blocks already applied stay."""
    require_admin(admin, ADMINS)
    async with ctx.store.transaction() as tx:
        if not await q.delete_subscription(tx, blocking.origin_from(ctx, text)):
            raise NotFoundError(Text("no such block list subscription"))


async def decide(ctx: NodeContext, admin: MemberRow | None, proposal_id: int,
                 choice: str) -> ProposalRow:
    """Apply (block the origin, with the explicit block's effects) or ignore a proposal."""
    require_admin(admin, ADMINS)
    if choice not in ("apply", "ignore"):
        raise ValidationError(Text("apply or ignore"), {"decision": Text("apply or ignore")})
    proposal = await q.get_proposal(ctx.store.reader, proposal_id)
    if proposal is None:
        raise NotFoundError(Text("no such proposal"))
    if proposal.state != "proposed":
        raise ConflictError(Text("this proposal was already decided"))
    if choice == "apply" and not await fq.is_blocked(ctx.store.reader, proposal.target):
        await blocking.block_node(ctx, admin, proposal.target, confirm=True)
    async with ctx.store.transaction() as tx:
        await q.decide(tx, proposal.id, "applied" if choice == "apply" else "ignored",
                       format_utc(ctx.clock()))
    found = await q.get_proposal(ctx.store.reader, proposal.id)
    assert found is not None  # just written
    return found

