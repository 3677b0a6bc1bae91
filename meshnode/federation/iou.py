"""IOUs on the wire: inbox handlers, the IOU worker, routing discovery, ``/iou/info``.

Every IOU activity is sent by a community's Group actor and carries that node's FEP-8b32
proof; the inbox has already checked the HTTP signature and that the key belongs to the
actor. Here the proof is checked against the actor's own ``assertionMethod`` keys, so a
forged acceptance is refused even if it was relayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import aiosqlite
from aiohttp import web

from meshnode.errors import CommunityUnreachableError, ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.keycheck import verify_or_refetch
from meshnode.federation.resolver import PeeringWorker
from meshnode.federation.state import FEDERATION, Federation
from meshnode.protocol import iou as p
from meshnode.protocol.activities import check_url, jrd_self_link, origin_of, parse_acct
from meshnode.protocol.errors import ProofError, ProtocolError, ValidationError
from meshnode.protocol.parsing import MAX_SQL_INT, parse_int
from meshnode.protocol.retry import backoff_seconds
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import deal_payments, starter_lines
from meshnode.services import iou as svc
from meshnode.services.context import NodeContext
from meshnode.store import iou as iq

log = logging.getLogger(__name__)
Effect = Callable[[aiosqlite.Connection], Awaitable[str]]
INFO_TTL_SECONDS = 2.0
HANDLE_TTL_SECONDS = 600.0
MAX_LINE_ATTEMPTS = 8
# Lines read from one neighbour's ``/iou/info``. A hub community can hold hundreds of lines;
# the simulator showed a cap of 50 made every line past the 50th invisible to payers, so
# their payments found no route (docs/scale.md). A line is ~250 bytes: 1,000 fit well
# within the response cap (``http.MAX_RESPONSE_BYTES``), and more are dropped.
MAX_INFO_LINES = 1000


def _outcome(text: str) -> Effect:
    async def effect(_tx: aiosqlite.Connection) -> str:
        return text
    return effect


async def verify_node_proof(federation: Federation, act: Mapping[str, Any]) -> str:
    """Check the activity's proof was made with a key of its actor (a Group); return actor."""
    actor = str(act.get("actor"))
    _, methods = await verify_or_refetch(
        await federation.directory.get_actor(actor),
        lambda: federation.directory.get_actor(actor, refresh=True),
        lambda remote: p.verify_proofs(act, remote.ed25519_keys), retry_on=ProofError)
    if len(methods) != 1:
        raise ProofError("an IOU activity carries exactly one proof, by its actor")
    return actor


# --- inbox preparers ------------------------------------------------------------------------


async def prepare_line_activity(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """TrustLineOffer / Accept / Reject / Update / LineStatement."""
    actor = await verify_node_proof(federation, act)
    ctx = federation.ctx
    kind = str(act.get("type"))
    if kind == "TrustLineOffer":
        offered = act.get("object")
        if not isinstance(offered, Mapping):
            raise ValidationError("TrustLineOffer needs the agreement")
        remote = await federation.directory.get_actor(actor)
        methods = p.verify_proofs(offered, remote.ed25519_keys)
        if not methods:
            raise ProofError("the agreement is not signed by the proposer")
        inbox = remote.inbox
        return lambda tx: svc.receive_offer(ctx, tx, actor=actor, inbox=inbox,
                                            agreement=offered)
    if kind in ("TrustLineAccept", "TrustLineReject"):
        agreement = act.get("object") if kind == "TrustLineAccept" else None
        if agreement is not None:
            if not isinstance(agreement, Mapping):
                raise ValidationError("TrustLineAccept needs the agreement")
            remote = await federation.directory.get_actor(actor)
            keys = dict(remote.ed25519_keys)
            keys[svc.node_key_id(ctx)] = ctx.identity.ed25519_public
            p.verify_proofs(agreement, keys)
        line_id = str(act.get("line"))
        return lambda tx: svc.receive_line_answer(ctx, tx, actor=actor, kind=kind,
                                                  line_id=line_id, agreement=agreement)
    if kind == "TrustLineUpdate":
        return lambda tx: svc.receive_line_update(ctx, tx, actor=actor, act=act)
    statement = p.parse_statement(act)
    return lambda tx: svc.receive_statement(ctx, tx, actor=actor, statement=statement, raw=act)


async def prepare_transfer_activity(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """IouPrepare / IouCommit / IouReject / IouRelease."""
    actor = await verify_node_proof(federation, act)
    ctx = federation.ctx
    kind = str(act.get("type"))
    if kind == "IouPrepare":
        terms = p.parse_prepare(act)
        return lambda tx: svc.receive_prepare(ctx, tx, actor=actor, terms=terms)
    answer = p.parse_answer(act)
    if kind == "IouRelease":
        return lambda tx: svc.receive_release(ctx, tx, actor=actor, answer=answer)
    return _wake_after(federation, lambda tx: svc.receive_answer(ctx, tx, actor=actor,
                                                                 answer=answer), answer)


def _wake_after(federation: Federation, effect: Effect, answer: p.Answer) -> Effect:
    async def wrapped(tx: aiosqlite.Connection) -> str:
        result = await effect(tx)
        # a transfer paying a deal was decided: the deal's payment moves in this transaction
        settled = await deal_payments.transfer_decided(federation.ctx, tx, answer.transfer_id)
        if settled is not None:
            result = f"{result}; {settled}"
        waiters = federation_waiters(federation)
        event = waiters.get(answer.transfer_id)
        if event is not None:
            # Set after commit of the batch would be exact; the waiter re-reads the row.
            asyncio.get_running_loop().call_soon(event.set)
        return result
    return wrapped


def federation_waiters(federation: Federation) -> dict[str, asyncio.Event]:
    """Events the API waits on, by transfer id (one dict per runtime)."""
    return federation.iou_waiters


IOU_PREPARERS: dict[str, Callable[[Federation, Mapping[str, Any]], Awaitable[Effect]]] = {
    **dict.fromkeys(p.LINE_TYPES, prepare_line_activity),
    **dict.fromkeys(p.TRANSFER_TYPES, prepare_transfer_activity),
}


# --- the network side of payments -----------------------------------------------------------


@dataclass
class IouNetworkImpl:
    """WebFinger resolution and route discovery over the pooled client, with a short cache."""

    federation: Federation
    _info: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    # handle → (when, actor id): a payment to a peer that is briefly offline is still
    # prepared and queued (the durable delivery retries it).
    _handles: dict[str, tuple[float, str]] = field(default_factory=dict)

    async def resolve_member(self, handle: str) -> str:
        """The actor id behind ``name@host[:port]`` (WebFinger, then the actor document)."""
        name, host = parse_acct(handle)
        loop = asyncio.get_running_loop()
        cached = self._handles.get(f"{name}@{host}")
        if cached is not None and loop.time() - cached[0] < HANDLE_TTL_SECONDS:
            return cached[1]
        actor = await self._webfinger(name, host)
        self._handles[f"{name}@{host}"] = (loop.time(), actor)
        return actor

    async def _webfinger(self, name: str, host: str) -> str:
        handle = f"{name}@{host}"
        client = self.federation.client
        resource = quote(f"acct:{name}@{host}")
        last: Exception = ValidationError(Text("cannot resolve %(handle)s", handle=handle))
        answered: Exception | None = None  # a scheme the node answered on says more
        for scheme in ("http", "https") if host.startswith("127.") else ("https", "http"):
            try:
                jrd = await client.get_json(
                    f"{scheme}://{host}/.well-known/webfinger?resource={resource}",
                    accept="application/jrd+json, application/json")
                return check_url(jrd_self_link(jrd), "actor")
            except (FetchError, ProtocolError) as exc:
                last = exc
                if not (isinstance(exc, FetchError) and is_unreachable(exc)):
                    answered = answered or exc
        if answered is None and isinstance(last, FetchError):
            raise _unreachable(host) from last
        last = answered or last
        raise ValidationError(Text("cannot resolve payee %(handle)s: %(reason)s", handle=handle,
                                   reason=str(last)),
                              {"payee": "unknown remote member"})

    async def node_info(self, origin: str, *, fresh: bool = False) -> dict[str, Any]:
        """A node's ``/iou/info`` (cached for a few seconds unless ``fresh``)."""
        loop = asyncio.get_running_loop()
        cached = self._info.get(origin)
        if not fresh and cached is not None and loop.time() - cached[0] < INFO_TTL_SECONDS:
            return cached[1]
        data = await self.federation.client.get_json(f"{origin}/iou/info",
                                                     accept="application/json")
        if not isinstance(data, dict):
            raise FetchError(f"{origin}/iou/info is not an object")
        if not fresh:
            self._info[origin] = (loop.time(), data)
        return data

    async def routing_edges(self, ctx: NodeContext, target_origin: str,
                            enough: svc.Enough | None = None) -> list[p.Edge]:
        """Our lines plus those our neighbours (and theirs, up to MAX_HOPS) report.

        Ring by ring: after asking the nodes k lines away, every route of at most k + 1
        lines is known, so when ``enough`` says a route with room exists, farther rings
        could only add longer ones and are not asked (the simulator showed a hub made every
        payment ask ~100 nodes; docs/scale.md)."""
        edges = await svc.local_edges(ctx)
        frontier = [edge.target for edge in edges]
        seen = {svc.community_actor(ctx), *frontier}
        silent: list[str] = []  # nodes on the way that did not answer
        for _ in range(p.MAX_HOPS - 1):
            if enough is not None and enough(edges):
                break
            next_frontier: list[str] = []
            for node in frontier:
                if origin_of(node) == target_origin:
                    continue
                try:
                    info = await self.node_info(origin_of(node))
                except FetchError as exc:
                    if is_unreachable(exc):
                        silent.append(origin_of(node))
                    continue
                for edge in _edges_from_info(node, info):
                    edges.append(edge)
                    if edge.target not in seen:
                        seen.add(edge.target)
                        next_frontier.append(edge.target)
            frontier = next_frontier
            if not frontier:
                break
        if silent and not any(origin_of(edge.target) == target_origin for edge in edges):
            # Not "no trust line leads there": the way may go through the silent node.
            raise _unreachable(urlsplit(silent[0]).netloc or silent[0])
        return edges

    def wake(self) -> None:
        """Have the delivery worker send what was queued."""
        self.federation.wake_delivery()


def is_unreachable(error: FetchError) -> bool:
    """The remote node did not answer (refused, timed out) or said it is down (502-504),
    as opposed to answering something wrong: worth retrying later."""
    if error.status is not None:
        return error.status in (502, 503, 504)
    return isinstance(error.__cause__, aiohttp.ClientConnectionError | TimeoutError)


def _unreachable(host: str) -> CommunityUnreachableError:
    return CommunityUnreachableError(
        Text("the community at %(host)s cannot be reached right now; nothing was paid."
             " The payment can be retried in a few minutes", host=host),
        fields={"payee": "community unreachable, retry later"})


def _remote_ratio(value: object) -> Decimal:
    """A neighbour's published ratio (``str(Decimal)``, exponent allowed), within 10^±18.

    Anything wider would overflow the route arithmetic's Decimal context later.
    """
    text = str(value)[:60]
    if not text.isascii():  # Decimal("١٢") is 12
        raise ValidationError("ratio must be ASCII", {"ratio": "a positive decimal"})
    ratio = Decimal(text)
    if not ratio.is_finite() or ratio <= 0 or abs(ratio.adjusted()) > 18:
        raise ValidationError("ratio out of range", {"ratio": "a positive decimal"})
    return ratio


def _edges_from_info(node: str, info: Mapping[str, Any]) -> list[p.Edge]:
    if info.get("actor") != node:
        return []
    lines = info.get("lines")
    currency = info.get("currency")
    decimals = currency.get("decimals") if isinstance(currency, Mapping) else None
    edges: list[p.Edge] = []
    for item in lines[:MAX_INFO_LINES] if isinstance(lines, list) else []:
        try:
            edges.append(p.Edge(source=node, target=str(item["peer"]),
                                capacity=parse_int(item["capacity"], "capacity", low=0,
                                                   high=MAX_SQL_INT),
                                ratio=_remote_ratio(item["ratio"]),
                                view=_view_from_info(node, item, decimals)))
        except (KeyError, TypeError, ValueError, ArithmeticError, ValidationError):
            continue
    return edges


def _view_from_info(node: str, item: Mapping[str, Any], decimals: object) -> p.LineView | None:
    """The exact line (rate, side, decimals) a neighbour publishes, if it does."""
    if "rate" not in item or not isinstance(decimals, int) or isinstance(decimals, bool):
        return None
    peer_decimals, proposer = item.get("decimals"), item.get("proposer")
    if not isinstance(peer_decimals, int) or not isinstance(proposer, bool) or not (
            0 <= peer_decimals <= 6 and 0 <= decimals <= 6):
        return None
    return p.LineView(line_id=str(item.get("line", "")), peer=str(item["peer"]),
                      rate=p.parse_rate(item["rate"]), is_proposer=proposer,
                      local_decimals=decimals, peer_decimals=peer_decimals)


def _exact(edge: p.Edge) -> dict[str, Any]:
    """The line's exact terms, so a payer can state an amount in the payee's currency."""
    if edge.view is None:
        return {}
    return {"line": edge.view.line_id, "rate": str(edge.view.rate),
            "proposer": edge.view.is_proposer, "decimals": edge.view.peer_decimals}


async def info_handler(request: web.Request) -> web.Response:
    """``GET /iou/info``: our currency and the room on our active lines (for routing)."""
    ctx = request.app[FEDERATION].ctx
    currency = svc.our_currency(ctx)
    edges = await svc.local_edges(ctx)
    return web.json_response({
        "actor": svc.community_actor(ctx), "currency": currency.as_json(),
        "lines": [{"peer": edge.target, "capacity": edge.capacity, "ratio": str(edge.ratio)}
                  | _exact(edge) for edge in edges],
    })


# --- the IOU worker -------------------------------------------------------------------------


class IouWorker:
    """Sends trust-line offers (resolving the peer first), releases of expired payments and,
    when asked, reconciliation statements. ``step()`` does one round."""

    def __init__(self, federation: Federation, network: IouNetworkImpl) -> None:
        self.federation = federation
        self.network = network

    async def step(self) -> int:
        """Starter lines due, offers due, then expired payments; returns the work done."""
        done = await starter_lines.offer_due(self.federation.ctx)
        done += await self._offers()
        done += await svc.queue_releases(self.federation.ctx)
        if done:
            self.federation.wake_delivery()
        return done

    async def reconcile(self) -> int:
        """Queue a signed statement for every active line (periodic)."""
        count = await svc.queue_statements(self.federation.ctx)
        self.federation.wake_delivery()
        return count

    async def _offers(self) -> int:
        ctx = self.federation.ctx
        now = ctx.clock()
        rows = [line for line in await iq.lines_with_intent(ctx.store.reader, format_utc(now))
                if line.intent == "offer"]
        for line in rows:
            try:
                actor = await PeeringWorker(self.federation).resolve(line.requested)
                info = await self.network.node_info(actor.origin, fresh=True)
                currency = p.parse_currency(info.get("currency"), "currency")
            except (FetchError, ProtocolError, ServiceError) as exc:
                attempts = line.attempts + 1
                retry = now + timedelta(seconds=backoff_seconds(attempts, 0.0))
                async with ctx.store.transaction() as tx:
                    await iq.update_line(
                        tx, line.id, format_utc(now), attempts=attempts,
                        next_attempt_at=format_utc(retry), last_error=str(exc)[:300],
                        intent="offer" if attempts < MAX_LINE_ATTEMPTS else None)
                continue
            offer = svc.build_offer(ctx, line, peer_actor=actor.id, peer_currency=currency,
                                    now=now)
            async with ctx.store.transaction() as tx:
                await iq.update_line(tx, line.id, format_utc(now), peer_actor=actor.id,
                                     peer_origin=actor.origin, peer_inbox=actor.inbox,
                                     peer_decimals=currency.decimals, intent=None,
                                     agreement=json.dumps(offer["object"]), last_error=None)
                fresh = await iq.get_line(tx, line.id)
                assert fresh is not None
                await svc.send(ctx, tx, fresh, offer, now)
        return len(rows)


def host_of(url: str) -> str:
    """``host[:port]`` of a URL."""
    return urlsplit(url).netloc


def setup_iou_federation_routes(app: web.Application) -> None:
    """Register ``GET /iou/info``."""
    app.router.add_get("/iou/info", info_handler)
