"""Trust lines between communities: admin actions, and the peer's messages about lines
(run inside the inbox worker's transaction)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol import iou as p
from meshnode.protocol.activities import origin_of, parse_acct
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import parse_limit as parse_units
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.iou.common import line_view, node_account_name, nonce, send
from meshnode.services.ledger import currency_terms
from meshnode.services.permissions import require_admin
from meshnode.services.signing import community_actor, cosign_as_node, node_key_id
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store.iou import LineRow
from meshnode.store.members import MemberRow

ADMINS_ONLY = "only admins manage trust lines"


def _limit(ctx: NodeContext, value: object, field: str) -> int:
    units = parse_units(value if not isinstance(value, int | float) else str(value),
                        decimals=ctx.config.currency.decimals, field=field)
    if units < 0:
        raise ValidationError(Text("%(field)s must be zero or positive", field=field),
            {field: "≥ 0"})
    return units


async def propose_line(ctx: NodeContext, admin: MemberRow | None, *, peer: object,
                       limit_out: object, limit_in: object, rate: object) -> LineRow:
    """Record an intent to offer a trust line to ``peer`` (node URL or handle).

    ``limit_out``: what we may owe them; ``limit_in``: what they may owe us (our units);
    ``rate``: how many of their units one of ours is worth. The IOU worker resolves the peer,
    signs the agreement and sends the offer.
    """
    require_admin(admin, ADMINS_ONLY)
    if not isinstance(peer, str) or not 0 < len(peer) <= 300:
        raise ValidationError("peer is required", {"peer": "node URL or handle@host"})
    text = peer.strip()
    if not text.startswith(("http://", "https://")):
        parse_acct(text)
    if text.startswith(("http://", "https://")) and origin_of(text) == origin_of(
            ctx.config.base_url):
        raise ValidationError("a node cannot trust itself", {"peer": "another node"})
    out, inn = _limit(ctx, limit_out, "limit_out"), _limit(ctx, limit_in, "limit_in")
    parsed_rate = p.parse_rate(rate)
    async with ctx.store.transaction() as tx:
        line_id = await record_offer(ctx, tx, requested=text, limit_out=out, limit_in=inn,
                                     rate=parsed_rate)
        line = await iq.get_line(tx, line_id)
    assert line is not None
    return line


async def record_offer(ctx: NodeContext, tx: aiosqlite.Connection, *, requested: str,
                       limit_out: int, limit_in: int, rate: Decimal) -> str:
    """Write a line we offer (state ``proposed``, intent ``offer``: the IOU worker resolves
    the peer, signs and sends); returns its id. Admins' proposals and starter lines."""
    now = format_utc(ctx.clock())
    line_id = secrets.token_hex(12)
    await iq.insert_line(tx, id=line_id, requested=requested, is_proposer=1, state="proposed",
                         limit_out=limit_out, limit_in=limit_in, rate=str(rate),
                         intent="offer", created_at=now, updated_at=now)
    return line_id


async def get_line(ctx: NodeContext, line_id: str) -> LineRow:
    """A trust line by id (NotFoundError)."""
    line = await iq.get_line(ctx.store.reader, line_id)
    if line is None:
        raise NotFoundError(f"no trust line {line_id!r}")
    return line


async def list_lines(ctx: NodeContext) -> list[LineRow]:
    """Every trust line."""
    return await iq.list_lines(ctx.store.reader)


async def _activate(ctx: NodeContext, tx: aiosqlite.Connection, line: LineRow, *,
                    agreement: Mapping[str, Any], now: str, state: str) -> None:
    """Open the peer's ledger account and record the countersigned agreement."""
    assert line.peer_origin is not None
    account = node_account_name(line.peer_origin)
    await iq.create_node_account(tx, account, min_balance=-line.limit_in,
                                 max_balance=line.limit_out, now=now)
    await iq.update_line(tx, line.id, now, state=state, account=account,
                         agreement=json.dumps(agreement), intent=None, last_error=None)


async def _offer_to_answer(tx: aiosqlite.Connection, line_id: str, answer: str
                           ) -> tuple[LineRow, str]:
    """The peer's pending offer ``line_id`` and the state ``answer`` moves it to."""
    line = await iq.get_line(tx, line_id)
    if line is None:
        raise NotFoundError(f"no trust line {line_id!r}")
    target = p.next_line_state(line.state, answer, "admin")
    if target is None or line.is_proposer:
        message = (Text("trust line %(id)s is %(state)s, not an offer to accept",
                        id=line_id, state=line.state) if answer == "accept" else
                   Text("trust line %(id)s is %(state)s, not an offer to reject",
                        id=line_id, state=line.state))
        raise ConflictError(message)
    return line, target


async def accept_line(ctx: NodeContext, admin: MemberRow | None, line_id: str) -> LineRow:
    """Accept a pending offer: countersign the agreement, open the account, answer."""
    require_admin(admin, ADMINS_ONLY)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        line, target = await _offer_to_answer(tx, line_id, "accept")
        assert line.agreement is not None
        assert line.peer_actor is not None
        agreement = cosign_as_node(ctx, json.loads(line.agreement), now)
        await _activate(ctx, tx, line, agreement=agreement, now=format_utc(now), state=target)
        answer = p.build_line_answer("TrustLineAccept", actor=community_actor(ctx),
                                     to=line.peer_actor, line_id=line.id,
                                     when=format_utc(now), agreement=agreement)
        await send(ctx, tx, line, answer, now)
        updated = await iq.get_line(tx, line_id)
    assert updated is not None
    return updated


async def reject_line(ctx: NodeContext, admin: MemberRow | None, line_id: str) -> LineRow:
    """Refuse a pending offer."""
    require_admin(admin, ADMINS_ONLY)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        line, target = await _offer_to_answer(tx, line_id, "reject")
        await iq.update_line(tx, line.id, format_utc(now), state=target, intent=None)
        answer = p.build_line_answer("TrustLineReject", actor=community_actor(ctx),
                                     to=str(line.peer_actor), line_id=line.id,
                                     when=format_utc(now))
        await send(ctx, tx, line, answer, now)
    return await get_line(ctx, line_id)


async def change_line(ctx: NodeContext, admin: MemberRow | None, line_id: str, change: str, *,
                      limit_out: object = None, limit_in: object = None) -> LineRow:
    """Freeze, unfreeze, close (zero balance only) or lower the limits; tell the peer."""
    require_admin(admin, ADMINS_ONLY)
    if change not in p.LINE_CHANGES:
        raise ValidationError("unknown change", {"change": ", ".join(p.LINE_CHANGES)})
    now = ctx.clock()
    stamp = format_utc(now)
    decimals = ctx.config.currency.decimals
    async with ctx.store.transaction() as tx:
        line = await iq.get_line(tx, line_id)
        if line is None:
            raise NotFoundError(f"no trust line {line_id!r}")
        target = p.next_line_state(line.state, change, "admin")
        if target is None:
            raise ConflictError(Text("trust line %(id)s is %(state)s", id=line_id,
                                     state=line.state))
        extra: dict[str, str] = {}
        if change == "close":
            await _check_closable(tx, line)
        if change == "limits":
            out = line.limit_out if limit_out is None else _limit(ctx, limit_out, "limit_out")
            inn = line.limit_in if limit_in is None else _limit(ctx, limit_in, "limit_in")
            if out > line.limit_out or inn > line.limit_in:
                raise ConflictError("limits can only be lowered; propose a new line to raise"
                                    " them", {"limit_out": "≤ current", "limit_in": "≤ current"})
            await _set_limits(tx, line, out, inn, stamp)
            extra = {"limit_out": format_amount(out, decimals=decimals),
                     "limit_in": format_amount(inn, decimals=decimals)}
        else:
            await iq.update_line(tx, line.id, stamp, state=target)
        update = p.build_line_update(actor=community_actor(ctx), to=str(line.peer_actor),
                                     line_id=line.id, change=change, when=stamp,
                                     nonce=nonce(), **extra)
        await send(ctx, tx, line, update, now)
    return await get_line(ctx, line_id)


async def _check_closable(tx: aiosqlite.Connection, line: LineRow) -> None:
    account = await ledger_store.get_account(tx, line.account or "")
    if account is not None and account.balance != 0:
        raise ConflictError(Text("the line's balance is %(balance)s; closing needs zero",
                                 balance=account.balance))
    if await iq.prepared_on_line(tx, line.id):
        raise ConflictError("transfers over this line are still in progress")


async def _set_limits(tx: aiosqlite.Connection, line: LineRow, out: int, inn: int,
                      now: str) -> None:
    await iq.update_line(tx, line.id, now, limit_out=out, limit_in=inn)
    if line.account:
        await iq.set_account_limits(tx, line.account, min_balance=-inn, max_balance=out)


# --- trust lines: messages from the peer (run inside the inbox worker's transaction) ---------


def our_currency(ctx: NodeContext) -> p.Currency:
    """Our currency as a trust line names it."""
    terms = currency_terms(ctx)
    return p.Currency(uri=terms.uri, symbol=terms.symbol, decimals=terms.decimals)


def build_offer(ctx: NodeContext, line: LineRow, *, peer_actor: str,
                peer_currency: p.Currency, now: datetime) -> dict[str, Any]:
    """The signed ``TrustLineOffer`` carrying the agreement signed by us (worker calls this)."""
    me = community_actor(ctx)
    terms = p.LineTerms(
        line_id=line.id, object_id=f"{me}/iou/lines/{line.id}", proposer=me,
        acceptor=peer_actor, proposer_currency=our_currency(ctx),
        acceptor_currency=peer_currency, limit_proposer_owes=line.limit_out,
        limit_acceptor_owes=line.limit_in, rate=Decimal(line.rate), created=format_utc(now))
    agreement = cosign_as_node(ctx, p.build_agreement(terms), now)
    return p.build_line_answer("TrustLineOffer", actor=me, to=peer_actor, line_id=line.id,
                               when=format_utc(now), agreement=agreement)


async def receive_offer(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                        inbox: str, agreement: Mapping[str, Any]) -> str:
    """A peer offers a line: stored as ``pending`` for our admin (proofs already checked)."""
    terms = p.parse_agreement(agreement)
    if terms.proposer != actor or terms.acceptor != community_actor(ctx):
        return "rejected: the agreement is not between the sender and us"
    mine = our_currency(ctx)
    if terms.acceptor_currency != mine:
        return "rejected: the agreement names another currency for us"
    if await iq.get_line(tx, terms.line_id) is not None:
        return "ignored: duplicate offer"
    now = format_utc(ctx.clock())
    view = p.LineView(line_id=terms.line_id, peer=actor, rate=terms.rate, is_proposer=False,
                      local_decimals=mine.decimals,
                      peer_decimals=terms.proposer_currency.decimals)
    await iq.insert_line(
        tx, id=terms.line_id, requested=actor, peer_actor=actor, peer_origin=origin_of(actor),
        peer_inbox=inbox, is_proposer=0, state="pending",
        limit_out=view.from_peer(terms.limit_acceptor_owes),
        limit_in=view.from_peer(terms.limit_proposer_owes), rate=str(terms.rate),
        peer_decimals=terms.proposer_currency.decimals, agreement=json.dumps(agreement),
        created_at=now, updated_at=now)
    await notifications.admins(ctx, tx, "trustline_proposed", ref=terms.line_id,
                               url="/admin/trustlines", detail=actor)
    return "trust line offered"


async def receive_line_answer(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                              kind: str, line_id: str,
                              agreement: Mapping[str, Any] | None) -> str:
    """The peer accepted (countersigned agreement) or rejected our offer."""
    line = await iq.get_line(tx, line_id)
    if line is None or not line.is_proposer or line.peer_actor != actor:
        return "ignored: not our offer to this peer"
    target = p.next_line_state(line.state,
                               "rejected" if kind == "TrustLineReject" else "accepted", "peer")
    if target is None:
        return f"ignored: line already {line.state}"
    now = format_utc(ctx.clock())
    if kind == "TrustLineReject":
        await iq.update_line(tx, line.id, now, state=target)
        return "rejected by peer"
    assert agreement is not None
    assert line.agreement is not None
    ours = {k: v for k, v in json.loads(line.agreement).items() if k != "proof"}
    theirs = {k: v for k, v in agreement.items() if k != "proof"}
    if ours != theirs:
        return "rejected: the accepted agreement differs from our offer"
    methods = set(p.proof_methods(agreement))
    if node_key_id(ctx) not in methods or urls.ed25519_key_id(actor) not in methods:
        return "rejected: the agreement lacks one of the two proofs"
    await _activate(ctx, tx, line, agreement=agreement, now=now, state=target)
    return "trust line active"


async def receive_line_update(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                              act: Mapping[str, Any]) -> str:
    """The peer froze, unfroze, closed or lowered limits of a line."""
    line_id, change = act.get("line"), act.get("change")
    line = await iq.get_line(tx, str(line_id))
    if line is None or line.peer_actor != actor:
        return "ignored: no such line with this peer"
    if change not in p.LINE_CHANGES:  # never an answer's event ("accepted") from an update
        return "ignored: unknown change"
    target = p.next_line_state(line.state, str(change), "peer")
    if target is None:
        return f"ignored: line is {line.state}"
    now = format_utc(ctx.clock())
    if change == "close":
        try:
            await _check_closable(tx, line)
        except ConflictError as exc:
            await iq.update_line(tx, line.id, now, last_error=str(exc),
                                 state=p.next_line_state(line.state, "close_refused", "peer"))
            return f"frozen instead of closed: {exc}"
    if change == "limits":
        view = line_view(ctx, line)
        decimals = view.peer_decimals
        theirs_out = p.decimal_units(act.get("limitProposerOwes"), decimals, "limitProposerOwes")
        theirs_in = p.decimal_units(act.get("limitAcceptorOwes"), decimals, "limitAcceptorOwes")
        await _set_limits(tx, line, min(line.limit_out, view.from_peer(theirs_in)),
                          min(line.limit_in, view.from_peer(theirs_out)), now)
    else:
        await iq.update_line(tx, line.id, now, state=target)
    return f"line {change}"


# --- transfers: the payer's node ------------------------------------------------------------
