"""Finding a way to the payee's community over trust lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol import iou as p
from meshnode.protocol.activities import origin_of, parse_acct
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.iou.common import IouNetwork, line_view
from meshnode.services.signing import community_actor
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store.iou import LineRow


def _parse_handle(handle: object) -> tuple[str, str]:
    if not isinstance(handle, str):
        raise ValidationError("payee must be name@host", {"payee": "name@host[:port]"})
    return parse_acct(handle.strip().lstrip("@"))


def _target(edges: Sequence[p.Edge], payee_origin: str) -> str | None:
    """The payee community's actor, once some known line leads there."""
    return next((edge.target for edge in edges if origin_of(edge.target) == payee_origin),
                None)


async def route_edges(ctx: NodeContext, payee_handle: str, network: IouNetwork,
                      enough: Callable[[Sequence[p.Edge], str], bool] | None = None
                      ) -> tuple[str, list[p.Edge], str]:
    """Resolve the payee; the known routing edges and the payee node's actor.

    ``enough(edges, target)`` lets the search stop early once it holds (see
    ``IouNetwork.routing_edges``)."""
    name, host = _parse_handle(payee_handle)
    if host == urlsplit(ctx.config.base_url).netloc.lower():
        raise ValidationError("this payee is a member here: pay them by username",
                              {"payee": name})
    if not await local_edges(ctx):
        await _refuse_if_frozen(ctx, None)
        raise ConflictError("no trust line leads to the payee's community: this community"
                            " has no active trust line", {"payee": "no route"})
    payee_actor = await network.resolve_member(f"{name}@{host}")
    payee_origin = origin_of(payee_actor)

    def stop(edges: Sequence[p.Edge]) -> bool:
        target = _target(edges, payee_origin)
        return enough is not None and target is not None and enough(edges, target)
    edges = await network.routing_edges(ctx, payee_origin, stop if enough else None)
    target = _target(edges, payee_origin)
    if target is None:
        await _refuse_if_frozen(ctx, origin_of(payee_actor))
        raise ConflictError("no trust line leads to the payee's community",
                            {"payee": "no route"})
    return payee_actor, edges, target


async def _refuse_if_frozen(ctx: NodeContext, origin: str | None) -> None:
    """A readable refusal when the way to the payee is a frozen line (``origin``: the payee's
    node; None: any frozen line, when no line at all is active)."""
    for line in await iq.list_lines(ctx.store.reader):
        if line.state == "frozen" and (origin is None or line.peer_origin == origin):
            raise ConflictError(
                Text("the trust line with %(peer)s is frozen: no payment crosses it until an"
                     " administrator unfreezes it", peer=line.peer_origin),
                {"payee": "trust line frozen"})


async def active_line_to(ctx: NodeContext, db: aiosqlite.Connection, peer: str) -> LineRow:
    """Our active line with ``peer`` (ConflictError when there is none)."""
    for line in await iq.lines_with_peer(db, peer):
        if line.state == "active":
            return line
    raise ConflictError("no active trust line with the next node", {"payee": "no route"})


async def local_edges(ctx: NodeContext) -> list[p.Edge]:
    """Our active lines as routing edges (capacity = room on the peer's account, our units)."""
    now = format_utc(ctx.clock())
    edges: list[p.Edge] = []
    for line in await iq.list_lines(ctx.store.reader):
        if line.state != "active" or not line.account or not line.peer_actor:
            continue
        held, _ = await ledger_store.transfer_snapshot(ctx.store.reader, (line.account,), now)
        item = held.get(line.account)
        if item is None:
            continue
        room = line.limit_out - item.account.balance - item.held_credit
        view = line_view(ctx, line)
        edges.append(p.Edge(source=community_actor(ctx), target=line.peer_actor,
                            capacity=max(0, room), ratio=view.peer_ratio(), view=view))
    return edges
