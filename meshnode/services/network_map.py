"""What this node knows of the network, for the map pages (issue 19 "A picture of the
network"): the communities (this one, its peers, and those it has only heard of through
them: who they follow, whose listings they relayed), who peers with whom, its relation
with each (peering, trust line with limits and balance, the volume of the last 30 days,
failing deliveries).

Everything comes from this node's own tables; nothing is fetched to draw the map, so the
public page never makes the node knock on other hosts. Peers' ``following`` collections are
read by the catch-up worker (``federation/sync.py``) and kept in ``peer_links``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from meshnode.protocol.names import Party
from meshnode.protocol.timefmt import format_utc
from meshnode.services import names, publishing
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq
from meshnode.store import iou as iq
from meshnode.store import network_map as mq
from meshnode.store.iou import LineRow

MAX_DRAWN = 200  # communities drawn; the others are counted ("and N more")
VOLUME_DAYS = 30
HEARD_SCAN = 1000  # remote listing origins read at most
LIVE_LINES = ("proposed", "pending", "active", "frozen")


@dataclass(frozen=True)
class Community:
    """One community on the map: ``kind`` is ``self``, ``peer`` or ``heard`` (known only
    through peers: one of them follows it, or relayed its listings)."""

    origin: str
    party: Party
    kind: str
    listings: int = 0


@dataclass(frozen=True)
class Link:
    """This node's relation with one other community.

    ``relation``: ``peered``, ``requested`` (our follow not answered yet), ``failed``,
    ``blocked`` or ``heard``. Amounts in our currency's minor units; ``balance`` is what the
    other community owes us (negative: what we owe them). ``failing``: deliveries to it that
    fail (retrying or given up), since ``failing_since``.
    """

    origin: str
    relation: str
    line_state: str | None = None
    limit_out: int | None = None
    limit_in: int | None = None
    balance: int | None = None
    volume: int = 0
    transfers: int = 0
    failing: int = 0
    failing_since: str | None = None
    starter: bool = False


@dataclass(frozen=True)
class NetworkMap:
    """The communities drawn (ours first), each one's link with us, and how many more
    communities are known than drawn."""

    me: Community
    others: tuple[Community, ...]
    links: dict[str, Link]
    more: int
    # (peer, community it follows) pairs among the communities drawn: who peers with whom
    remote_links: tuple[tuple[str, str], ...] = ()


def _relation(peer: Any) -> str:
    if peer["blocked"]:
        return "blocked"
    return {"peered": "peered", "failed": "failed", "rejected": "failed"}.get(
        peer["out_state"], "requested")


def _best_line(lines: list[LineRow]) -> LineRow:
    """The line that matters on the map (``lines`` oldest first, not empty): the newest
    live one, else the newest."""
    live = [line for line in lines if line.state in LIVE_LINES]
    return (live or lines)[-1]


async def _line_links(ctx: NodeContext) -> dict[str, Link]:
    """Per peer origin: the trust line's part of the link."""
    reader = ctx.store.reader
    since = format_utc(ctx.clock() - timedelta(days=VOLUME_DAYS))
    balances, volumes = await mq.line_balances(reader), await mq.line_volumes(reader, since)
    starters = await mq.starter_line_ids(reader)
    by_origin: dict[str, list[LineRow]] = {}
    for line in await iq.list_lines(reader):
        if line.peer_origin:
            by_origin.setdefault(line.peer_origin, []).append(line)
    found = {}
    for origin, lines in by_origin.items():
        line = _best_line(lines)
        volume = [volumes.get(each.id, (0, 0)) for each in lines]
        found[origin] = Link(
            origin=origin, relation="heard", line_state=line.state, limit_out=line.limit_out,
            limit_in=line.limit_in, balance=-balances[line.id] if line.id in balances else None,
            volume=sum(v for v, _ in volume), transfers=sum(n for _, n in volume),
            starter=line.id in starters)
    return found


def _failures(summary: list[dict[str, Any]]) -> dict[str, tuple[int, str | None]]:
    """Failing deliveries by delivery host (a peer's origin)."""
    return {row["host"]: (int(row["failing"] or 0), row["failing_since"])
            for row in summary if row["failing"]}


async def _links(ctx: NodeContext) -> tuple[dict[str, Link], dict[str, int]]:
    reader = ctx.store.reader
    links = await _line_links(ctx)
    failures = _failures(await publishing.delivery_summary(ctx))
    for peer in await fq.list_peers(reader):
        origin = peer["origin"]
        failing, since = failures.get(origin) or failures.get(urlsplit(origin).netloc,
                                                              (0, None))
        if peer["last_error"] and peer["out_state"] != "peered":
            failing, since = max(failing, 1), since or peer["updated_at"]
        links[origin] = replace(links.get(origin) or Link(origin=origin, relation="peered"),
                                relation=_relation(peer), failing=failing,
                                failing_since=since)
    heard = dict(await mq.heard_origins(reader, HEARD_SCAN))
    for origin in heard:
        links.setdefault(origin, Link(origin=origin, relation="heard"))
    return links, heard


async def _peers_peers(ctx: NodeContext, links: dict[str, Link]) -> list[tuple[str, str]]:
    """Who our peers follow; communities known only this way join ``links`` as heard of."""
    pairs = await mq.peer_links(ctx.store.reader)
    for _, target in pairs:
        links.setdefault(target, Link(origin=target, relation="heard"))
    return pairs


async def network_map(ctx: NodeContext, *, public: bool) -> NetworkMap:
    """The map of what this node knows. ``public``: without blocked communities, and without
    limits and balances unless ``[map] public_balances``."""
    links, heard = await _links(ctx)
    pairs = await _peers_peers(ctx, links)
    if public:
        links = {origin: _public(ctx, link) for origin, link in links.items()
                 if link.relation != "blocked"}
    parties = await names.communities_by_origin(ctx, links)
    ours = names.our_community(ctx)
    me = Community(origin=urlsplit(ctx.config.base_url)._replace(path="").geturl(),
                   party=ours, kind="self")
    others = sorted(
        (Community(origin=origin, party=parties[origin],
                   kind="heard" if link.relation == "heard" else "peer",
                   listings=heard.get(origin, 0))
         for origin, link in links.items() if origin != me.origin),
        key=lambda c: (c.kind != "peer", c.party.name.casefold(), c.origin))
    drawn = tuple(others[:MAX_DRAWN - 1])
    keys = {c.origin for c in drawn}
    return NetworkMap(me=me, others=drawn, links={c.origin: links[c.origin] for c in drawn},
                      more=len(others) - len(drawn),
                      remote_links=tuple((a, b) for a, b in pairs if a in keys and b in keys))


def _public(ctx: NodeContext, link: Link) -> Link:
    if ctx.config.map.public_balances:
        return link
    return replace(link, limit_out=None, limit_in=None, balance=None)


MAX_PEER_LINKS = 500  # actors read from one peer's following collection


async def record_peer_links(ctx: NodeContext, source: str, followed: list[object]) -> int:
    """Keep which communities the peer at origin ``source`` follows (its ``following``
    collection's items, untrusted): origins of well-formed http(s) URLs, at most
    ``MAX_PEER_LINKS``, neither the peer itself nor us. Returns how many were kept."""
    ours = urlsplit(ctx.config.base_url)
    targets = set()
    for item in followed[:MAX_PEER_LINKS]:
        if not isinstance(item, str) or len(item) > 2048:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in (source, f"{ours.scheme}://{ours.netloc}"):
            targets.add(origin)
    async with ctx.store.transaction() as tx:
        await mq.replace_peer_links(tx, source, sorted(targets), format_utc(ctx.clock()))
    return len(targets)
