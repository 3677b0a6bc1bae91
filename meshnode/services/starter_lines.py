"""Starter trust lines (issue 19): with ``[trust.starter] enabled``, offer one small line to
each neighbour community this node verified over mDNS and/or peered with.

Only an *offer* is made, through the ordinary trust-line proposal (``iou.record_offer``: the
IOU worker resolves the peer, signs the agreement and sends a ``TrustLineOffer``). The other
admin accepts or declines it from the ``trustline_proposed`` notification; nothing can move
over the line until both nodes signed the agreement. Each neighbour is offered one starter
line at most, ever: ``starter_offers`` remembers it whatever became of the offer, so a
declined offer is never repeated. A neighbour that already has a line with us (any state)
is not offered one.
"""

from __future__ import annotations

from decimal import Decimal

from meshnode.protocol import iou as p
from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import parse_limit
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.services.iou.lines import record_offer
from meshnode.store import network_map as mq

MAX_OFFERS_PER_STEP = 20  # a LAN flood of verified neighbours is offered lines gradually


async def candidates(ctx: NodeContext) -> list[str]:
    """Community actors the config says may get a starter line (deduplicated by origin)."""
    kinds = ctx.config.starter.neighbours
    reader = ctx.store.reader
    actors = [*(await mq.verified_neighbour_actors(reader) if "mdns" in kinds else []),
              *(await mq.peered_actors(reader) if "peered" in kinds else [])]
    seen: dict[str, str] = {}
    for actor in actors:
        seen.setdefault(origin_of(actor), actor)
    return [seen[origin] for origin in sorted(seen)]


def _line_origin(peer_origin: str | None, requested: str) -> str | None:
    if peer_origin:
        return peer_origin
    try:
        return origin_of(requested) if requested.startswith(("http://", "https://")) else None
    except ValidationError:
        return None


async def _excluded(ctx: NodeContext) -> set[str]:
    """Origins never to offer a starter line: offered before, with a line, blocked, us."""
    reader = ctx.store.reader
    with_lines = {_line_origin(origin, requested)
                  for origin, requested in await mq.line_peers(reader)}
    return {*await mq.starter_offered(reader), *await mq.blocked_origins(reader),
            *(origin for origin in with_lines if origin), origin_of(ctx.config.base_url)}


async def offer_due(ctx: NodeContext) -> int:
    """Offer the starter line to every eligible neighbour not yet offered one; returns how
    many offers were recorded (0 when the option is off)."""
    starter = ctx.config.starter
    if not starter.enabled:
        return 0
    excluded = await _excluded(ctx)
    due = [actor for actor in await candidates(ctx)
           if origin_of(actor) not in excluded][:MAX_OFFERS_PER_STEP]
    if not due:
        return 0
    decimals = ctx.config.currency.decimals
    limit_out = parse_limit(starter.limit_out, decimals=decimals, field="limit_out")
    limit_in = parse_limit(starter.limit_in, decimals=decimals, field="limit_in")
    rate: Decimal = p.parse_rate(starter.rate)
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        for actor in due:
            line_id = await record_offer(ctx, tx, requested=actor, limit_out=limit_out,
                                         limit_in=limit_in, rate=rate)
            await mq.record_starter_offer(tx, origin=origin_of(actor), actor=actor,
                                          line_id=line_id, now=now)
    return len(due)
