"""IOUs between communities: trust lines and cross-node transfers (use cases).

Every change is rows in ONE write transaction: the line or transfer state, the holds, the
journal entry and the outgoing signed activity (outbox + delivery rows). The running node's
workers send; a restart resumes from the rows (ARCHITECTURE flow 3).

Who decides: the payee's node (``final``) commits or refuses a prepared transfer and records
that decision; every other node applies the decision it receives and ignores anything that
does not fit the transition table (``protocol.iou.TRANSITIONS``).

Entry point for other features (deals): :func:`pay_remote`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiosqlite

from meshnode import urls
from meshnode.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from meshnode.protocol import iou as p
from meshnode.protocol.activities import origin_of, parse_acct
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.ledger import (
    AccountPosition,
    EntryFields,
    TransferTerms,
    build_event,
    check_transfer,
    parse_memo,
    prepare_entry,
)
from meshnode.protocol.ledger import parse_limit as parse_units
from meshnode.protocol.proofs import create_proof
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, number
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.ledger import currency_terms, effective_limits
from meshnode.services.members import member_identity
from meshnode.services.publishing import queue_activity
from meshnode.store import iou as iq
from meshnode.store import ledger as lq
from meshnode.store import members as mq
from meshnode.store.iou import LineRow, TransferRow
from meshnode.store.members import MemberRow

DEFAULT_EXPIRY = timedelta(minutes=2)
HOLD_GRACE = timedelta(days=30)
EXPIRED = "expired"
NODE_SIGNER = "node"


# --- results and collaborators --------------------------------------------------------------


@dataclass(frozen=True)
class TransferStatus:
    """What the payer (or a deal) sees of a cross-node transfer."""

    id: str
    state: str
    role: str
    payer: str
    payee: str
    amount: int
    decimals: int
    route: tuple[str, ...]
    reason: str | None
    created_at: str
    expires_at: str
    decided_at: str | None
    # Set when the payer stated the amount in the payee's currency (what the payee receives).
    payee_amount: int | None = None
    payee_decimals: int | None = None

    @property
    def final(self) -> bool:
        """True once committed, released or expired."""
        return self.state in p.FINAL_STATES

    def as_json(self) -> dict[str, Any]:
        """API representation (amount as a decimal string of the payer's currency)."""
        return {
            "id": self.id, "state": self.state, "role": self.role, "payer": self.payer,
            "payee": self.payee, "amount": format_amount(self.amount, decimals=self.decimals),
            "route": list(self.route), "reason": self.reason, "created_at": self.created_at,
            "expires_at": self.expires_at, "decided_at": self.decided_at,
            "amount_in": "payer" if self.payee_amount is None else "payee",
            "payee_amount": None if self.payee_amount is None else format_amount(
                self.payee_amount, decimals=self.payee_decimals or 0),
        }


class IouNetwork(Protocol):
    """Network work a payment needs before it is prepared (implemented by federation)."""

    async def resolve_member(self, handle: str) -> str:
        """The actor id of ``name@host[:port]`` (WebFinger)."""

    async def routing_edges(self, ctx: NodeContext, target_origin: str) -> list[p.Edge]:
        """Known usable line directions, ours and our neighbours' (for path finding)."""

    def wake(self) -> None:
        """New outgoing activities were queued."""


# --- helpers --------------------------------------------------------------------------------


def group(ctx: NodeContext) -> str:
    """Our community's Group actor."""
    return urls.community_actor(ctx.config.base_url, ctx.config.handle)


def node_key_id(ctx: NodeContext) -> str:
    """verificationMethod of the node's own Ed25519 key."""
    return urls.ed25519_key_id(group(ctx))


def sign_as_node(ctx: NodeContext, document: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """FEP-8b32 proof by the node (the Group actor's Ed25519 key)."""
    return create_proof(document, seed=ctx.identity.ed25519_seed,
                        verification_method=node_key_id(ctx), created=now)


def node_account_name(peer_origin: str) -> str:
    """Ledger account of a peer community: ``node:<host[:port]>``."""
    return "node:" + (urlsplit(peer_origin).netloc or peer_origin)


def line_view(ctx: NodeContext, line: LineRow) -> p.LineView:
    """Conversion helper for one line."""
    return p.LineView(line_id=line.id, peer=line.peer_actor or "", rate=Decimal(line.rate),
                      is_proposer=bool(line.is_proposer),
                      local_decimals=ctx.config.currency.decimals,
                      peer_decimals=line.peer_decimals if line.peer_decimals is not None
                      else ctx.config.currency.decimals)


def _nonce() -> str:
    return secrets.token_hex(8)


def _status(ctx: NodeContext, row: TransferRow) -> TransferStatus:
    return TransferStatus(
        id=row.id, state=row.state, role=row.role, payer=row.payer, payee=row.payee,
        amount=row.amount, decimals=ctx.config.currency.decimals,
        route=tuple(json.loads(row.route)), reason=row.reason, created_at=row.created_at,
        expires_at=row.expires_at, decided_at=row.decided_at, payee_amount=row.payee_amount,
        payee_decimals=row.payee_decimals)


async def _position(ctx: NodeContext, db: aiosqlite.Connection, names: tuple[str, str],
                    now: str) -> tuple[dict[str, AccountPosition], Any]:
    held, head = await lq.transfer_snapshot(db, names, now)
    positions = {}
    for name, item in held.items():
        low, high = effective_limits(ctx, item.account)
        positions[name] = AccountPosition(name=name, balance=item.account.balance,
                                          min_balance=low, max_balance=high,
                                          held_debit=item.held_debit,
                                          held_credit=item.held_credit)
    missing = set(names) - positions.keys()
    if missing:
        raise NotFoundError(f"no ledger account {sorted(missing)[0]!r}")
    return positions, head


async def _limit_problem(ctx: NodeContext, db: aiosqlite.Connection, debit: str, credit: str,
                         amount: int, now: str) -> str | None:
    positions, _ = await _position(ctx, db, (debit, credit), now)
    breach = check_transfer(positions[debit], positions[credit], amount)
    if breach is None:
        return None
    room = format_amount(breach.available, decimals=ctx.config.currency.decimals)
    if breach.side == "spend":
        return Text("limit exceeded: %(account)s can spend at most %(room)s now",
                    account=breach.account, room=number(room))
    return Text("limit exceeded: %(account)s can receive at most %(room)s now",
                account=breach.account, room=number(room))


async def _hold(tx: aiosqlite.Connection, transfer_id: str, debit: str, credit: str,
                amount: int, expires: datetime) -> None:
    until = format_utc(expires + HOLD_GRACE)
    await lq.insert_hold(tx, hold_id=_nonce(), account=debit, direction="debit", amount=amount,
                         reason=transfer_id, expires_at=until)
    await lq.insert_hold(tx, hold_id=_nonce(), account=credit, direction="credit",
                         amount=amount, reason=transfer_id, expires_at=until)


def _event_document(ctx: NodeContext, *, transfer_id: str, payer_uri: str, payee_uri: str,
                    amount: int, memo: str, now: datetime,
                    listing_uri: str | None = None) -> dict[str, Any]:
    terms = TransferTerms(object_id=urls.ledger_transaction(ctx.config.base_url, transfer_id),
                          kind="payment", payer_uri=payer_uri, payee_uri=payee_uri,
                          amount=amount, memo=memo, created=now, listing_uri=listing_uri)
    return build_event(terms, currency_terms(ctx))


async def _append(tx: aiosqlite.Connection, row: TransferRow, signer: str, now: str) -> None:
    """Append the transfer's leg on our ledger (document signed at prepare time)."""
    assert row.entry_document is not None
    assert row.debit_account
    assert row.credit_account
    fields = EntryFields(id=row.id, kind="payment", payer=row.debit_account,
                         payee=row.credit_account, amount=row.amount, memo=row.memo,
                         listing_id=row.listing_id, reverses=None, request_id=None,
                         signer=signer, created_at=now)
    await lq.append_entry(tx, prepare_entry(fields, json.loads(row.entry_document)))


async def _send(ctx: NodeContext, tx: aiosqlite.Connection, line: LineRow,
                activity: Mapping[str, Any], now: datetime) -> None:
    if not line.peer_inbox:
        raise ConflictError(Text("trust line %(id)s has no known peer inbox", id=line.id))
    signed = sign_as_node(ctx, activity, now)
    await queue_activity(tx, signed, public=False, inboxes=[line.peer_inbox],
                         now=format_utc(now))


# --- trust lines: admin actions -------------------------------------------------------------


def _admin(member: MemberRow | None) -> None:
    if member is not None and not member.is_admin:
        raise PermissionDeniedError("only admins manage trust lines")


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
    _admin(admin)
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
    now = format_utc(ctx.clock())
    line_id = secrets.token_hex(12)
    async with ctx.store.transaction() as tx:
        await iq.insert_line(tx, id=line_id, requested=text, is_proposer=1, state="proposed",
                             limit_out=out, limit_in=inn, rate=str(parsed_rate),
                             intent="offer", created_at=now, updated_at=now)
        line = await iq.get_line(tx, line_id)
    assert line is not None
    return line


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
                    agreement: Mapping[str, Any], now: str) -> None:
    assert line.peer_origin is not None
    account = node_account_name(line.peer_origin)
    await iq.create_node_account(tx, account, min_balance=-line.limit_in,
                                 max_balance=line.limit_out, now=now)
    await iq.update_line(tx, line.id, now, state="active", account=account,
                         agreement=json.dumps(agreement), intent=None, last_error=None)


async def accept_line(ctx: NodeContext, admin: MemberRow | None, line_id: str) -> LineRow:
    """Accept a pending offer: countersign the agreement, open the account, answer."""
    _admin(admin)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        line = await iq.get_line(tx, line_id)
        if line is None:
            raise NotFoundError(f"no trust line {line_id!r}")
        if line.state != "pending" or line.is_proposer:
            raise ConflictError(Text("trust line %(id)s is %(state)s, not an offer to accept",
                                     id=line_id, state=line.state))
        assert line.agreement is not None
        assert line.peer_actor is not None
        agreement = p.cosign(json.loads(line.agreement), seed=ctx.identity.ed25519_seed,
                             verification_method=node_key_id(ctx), created=now)
        await _activate(ctx, tx, line, agreement=agreement, now=format_utc(now))
        answer = {"@context": p.IOU_CONTEXT,
                  "id": f"{group(ctx)}/iou/lines/{line.id}/accept",
                  "type": "TrustLineAccept", "actor": group(ctx), "to": [line.peer_actor],
                  "line": line.id, "object": agreement, "published": format_utc(now)}
        await _send(ctx, tx, line, answer, now)
        updated = await iq.get_line(tx, line_id)
    assert updated is not None
    return updated


async def reject_line(ctx: NodeContext, admin: MemberRow | None, line_id: str) -> LineRow:
    """Refuse a pending offer."""
    _admin(admin)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        line = await iq.get_line(tx, line_id)
        if line is None:
            raise NotFoundError(f"no trust line {line_id!r}")
        if line.state != "pending" or line.is_proposer:
            raise ConflictError(Text("trust line %(id)s is %(state)s, not an offer to reject",
                                     id=line_id, state=line.state))
        await iq.update_line(tx, line.id, format_utc(now), state="rejected", intent=None)
        answer = {"@context": p.IOU_CONTEXT,
                  "id": f"{group(ctx)}/iou/lines/{line.id}/reject",
                  "type": "TrustLineReject", "actor": group(ctx), "to": [line.peer_actor],
                  "line": line.id, "published": format_utc(now)}
        await _send(ctx, tx, line, answer, now)
    return await get_line(ctx, line_id)


async def change_line(ctx: NodeContext, admin: MemberRow | None, line_id: str, change: str, *,
                      limit_out: object = None, limit_in: object = None) -> LineRow:
    """Freeze, unfreeze, close (zero balance only) or lower the limits; tell the peer."""
    _admin(admin)
    if change not in p.LINE_CHANGES:
        raise ValidationError("unknown change", {"change": ", ".join(p.LINE_CHANGES)})
    now = ctx.clock()
    stamp = format_utc(now)
    decimals = ctx.config.currency.decimals
    async with ctx.store.transaction() as tx:
        line = await iq.get_line(tx, line_id)
        if line is None:
            raise NotFoundError(f"no trust line {line_id!r}")
        if line.state not in ("active", "frozen"):
            raise ConflictError(Text("trust line %(id)s is %(state)s", id=line_id,
                                     state=line.state))
        extra: dict[str, str] = {}
        if change == "freeze":
            await iq.update_line(tx, line.id, stamp, state="frozen")
        elif change == "unfreeze":
            await iq.update_line(tx, line.id, stamp, state="active")
        elif change == "close":
            await _check_closable(tx, line)
            await iq.update_line(tx, line.id, stamp, state="closed")
        else:
            out = line.limit_out if limit_out is None else _limit(ctx, limit_out, "limit_out")
            inn = line.limit_in if limit_in is None else _limit(ctx, limit_in, "limit_in")
            if out > line.limit_out or inn > line.limit_in:
                raise ConflictError("limits can only be lowered; propose a new line to raise"
                                    " them", {"limit_out": "≤ current", "limit_in": "≤ current"})
            await _set_limits(tx, line, out, inn, stamp)
            extra = {"limit_out": format_amount(out, decimals=decimals),
                     "limit_in": format_amount(inn, decimals=decimals)}
        update = p.build_line_update(actor=group(ctx), to=str(line.peer_actor), line_id=line.id,
                                     change=change, when=stamp, nonce=_nonce(), **extra)
        await _send(ctx, tx, line, update, now)
    return await get_line(ctx, line_id)


async def _check_closable(tx: aiosqlite.Connection, line: LineRow) -> None:
    account = await lq.get_account(tx, line.account or "")
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
    terms = p.LineTerms(
        line_id=line.id, object_id=f"{group(ctx)}/iou/lines/{line.id}", proposer=group(ctx),
        acceptor=peer_actor, proposer_currency=our_currency(ctx),
        acceptor_currency=peer_currency, limit_proposer_owes=line.limit_out,
        limit_acceptor_owes=line.limit_in, rate=Decimal(line.rate), created=format_utc(now))
    agreement = p.cosign(p.build_agreement(terms), seed=ctx.identity.ed25519_seed,
                         verification_method=node_key_id(ctx), created=now)
    return {"@context": p.IOU_CONTEXT, "id": f"{group(ctx)}/iou/lines/{line.id}/offer",
            "type": "TrustLineOffer", "actor": group(ctx), "to": [peer_actor], "line": line.id,
            "object": agreement, "published": format_utc(now)}


async def receive_offer(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                        inbox: str, agreement: Mapping[str, Any]) -> str:
    """A peer offers a line: stored as ``pending`` for our admin (proofs already checked)."""
    terms = p.parse_agreement(agreement)
    if terms.proposer != actor or terms.acceptor != group(ctx):
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
    if line.state != "proposed":
        return f"ignored: line already {line.state}"
    now = format_utc(ctx.clock())
    if kind == "TrustLineReject":
        await iq.update_line(tx, line.id, now, state="rejected")
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
    await _activate(ctx, tx, line, agreement=agreement, now=now)
    return "trust line active"


async def receive_line_update(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                              act: Mapping[str, Any]) -> str:
    """The peer froze, unfroze, closed or lowered limits of a line."""
    line_id, change = act.get("line"), act.get("change")
    line = await iq.get_line(tx, str(line_id))
    if line is None or line.peer_actor != actor:
        return "ignored: no such line with this peer"
    if line.state not in ("active", "frozen"):
        return f"ignored: line is {line.state}"
    now = format_utc(ctx.clock())
    if change == "freeze":
        await iq.update_line(tx, line.id, now, state="frozen")
    elif change == "unfreeze":
        await iq.update_line(tx, line.id, now, state="active")
    elif change == "close":
        try:
            await _check_closable(tx, line)
        except ConflictError as exc:
            await iq.update_line(tx, line.id, now, state="frozen", last_error=str(exc))
            return f"frozen instead of closed: {exc}"
        await iq.update_line(tx, line.id, now, state="closed")
    elif change == "limits":
        view = line_view(ctx, line)
        decimals = view.peer_decimals
        theirs_out = p._units(act.get("limitProposerOwes"), decimals, "limitProposerOwes")
        theirs_in = p._units(act.get("limitAcceptorOwes"), decimals, "limitAcceptorOwes")
        await _set_limits(tx, line, min(line.limit_out, view.from_peer(theirs_in)),
                          min(line.limit_in, view.from_peer(theirs_out)), now)
    else:
        return "ignored: unknown change"
    return f"line {change}"


# --- transfers: the payer's node ------------------------------------------------------------


def _parse_handle(handle: object) -> tuple[str, str]:
    if not isinstance(handle, str):
        raise ValidationError("payee must be name@host", {"payee": "name@host[:port]"})
    return parse_acct(handle.strip().lstrip("@"))


async def pay_remote(ctx: NodeContext, payer: MemberRow, payee_handle: str, amount_units: int,
                     memo: str, listing: str | None = None, *, network: IouNetwork,
                     expires_in: timedelta = DEFAULT_EXPIRY,
                     transfer_id: str | None = None) -> TransferStatus:
    """Pay a member of another community; returns at once in state ``prepared``.

    Resolves the payee (WebFinger), finds a route over trust lines (most capacity, then
    fewest hops), holds the payer's amount and the first line's room, and queues the signed
    ``IouPrepare`` to the next node. Poll :func:`get_transfer` (or the API) for the outcome.
    Raises ValidationError / LimitExceededError / ConflictError when nothing can be prepared.
    ``transfer_id`` (optional, e.g. derived from a deal) makes the call idempotent: when a
    transfer with that id exists, its status is returned and nothing new is prepared.
    """
    if transfer_id is not None:
        existing = await iq.get_transfer(ctx.store.reader, transfer_id)
        if existing is not None:
            return _status(ctx, existing)
    if not isinstance(amount_units, int) or amount_units <= 0:
        raise ValidationError("amount must be positive", {"amount": "> 0"})
    note = parse_memo(memo)
    payee_actor, edges, target = await _route_edges(ctx, payee_handle, network)
    route = p.choose_route(edges, group(ctx), target, amount_units)
    if route is None:
        best = p.find_routes(edges, group(ctx), target)
        room = best[0].capacity if best else 0
        raise ConflictError(
            Text("not enough trust-line capacity to the payee's community (at most"
                 " %(room)s now)",
                 room=number(format_amount(room, decimals=ctx.config.currency.decimals))),
            {"amount": "exceeds the route's capacity"})
    return await prepare_origin(ctx, payer, payee_actor=payee_actor, route=route.nodes,
                                amount=amount_units, memo=note, listing=listing,
                                expires=ctx.clock() + expires_in, transfer_id=transfer_id)


async def _route_edges(ctx: NodeContext, payee_handle: str, network: IouNetwork
                      ) -> tuple[str, list[p.Edge], str]:
    """Resolve the payee; the known routing edges and the payee node's actor."""
    name, host = _parse_handle(payee_handle)
    if host == urlsplit(ctx.config.base_url).netloc.lower():
        raise ValidationError("this payee is a member here: pay them by username",
                              {"payee": name})
    if not await local_edges(ctx):
        await _refuse_if_frozen(ctx, None)
        raise ConflictError("no trust line leads to the payee's community: this community"
                            " has no active trust line", {"payee": "no route"})
    payee_actor = await network.resolve_member(f"{name}@{host}")
    edges = await network.routing_edges(ctx, origin_of(payee_actor))
    target = next((edge.target for edge in edges
                   if origin_of(edge.target) == origin_of(payee_actor)), None)
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


async def pay_remote_payee_amount(
    ctx: NodeContext, payer: MemberRow, payee_handle: str, amount: object, memo: str,
    listing: str | None = None, *, network: IouNetwork,
    expires_in: timedelta = DEFAULT_EXPIRY, transfer_id: str | None = None,
) -> TransferStatus:
    """Like :func:`pay_remote`, but ``amount`` is a decimal string in the PAYEE's currency.

    The payee receives exactly that amount. Going back along the route from the payee, each
    node's amount is the next node's converted back at that line's rate, rounded half-even
    to the upstream currency's decimals (:func:`protocol.iou.payee_amounts`); the payer's
    debit is the result for our currency. Every node checks its hop against the line's rate
    (rounding on either side, less than one minor unit) and forwards the fixed amounts.
    """
    if transfer_id is not None:
        existing = await iq.get_transfer(ctx.store.reader, transfer_id)
        if existing is not None:
            return _status(ctx, existing)
    if not isinstance(amount, str):
        raise ValidationError("amount must be a decimal string such as \"12.50\"",
                              {"amount": "must be a string"})
    parse_amount(amount, decimals=6)  # syntax and sign before any network work
    note = parse_memo(memo)
    payee_actor, edges, target = await _route_edges(ctx, payee_handle, network)
    last = next((edge.view for edge in edges if edge.target == target and edge.view), None)
    if last is None:
        raise ConflictError("the payee's community does not publish its currency on any"
                            " known trust line", {"amount_in": "state the amount in yours"})
    payee_decimals = last.peer_decimals
    payee_units = parse_amount(amount, decimals=payee_decimals)
    chosen = p.choose_route_for_payee(edges, group(ctx), target, payee_units)
    if chosen is None:
        raise ConflictError(Text("not enough trust-line capacity to the payee's community for"
                                 " %(amount)s of their currency", amount=number(amount)),
                            {"amount": "exceeds capacity"})
    route, amounts = chosen
    return await prepare_origin(ctx, payer, payee_actor=payee_actor, route=route.nodes,
                                amount=amounts[0], memo=note, listing=listing,
                                expires=ctx.clock() + expires_in, transfer_id=transfer_id,
                                amounts=amounts, payee_decimals=payee_decimals)


async def prepare_origin(ctx: NodeContext, payer: MemberRow, *, payee_actor: str,
                         route: Sequence[str], amount: int, memo: str, listing: str | None,
                         expires: datetime, transfer_id: str | None = None,
                         amounts: Sequence[int] = (),
                         payee_decimals: int | None = None) -> TransferStatus:
    """Prepare on our ledger and queue the offer to the route's next node (one transaction).

    ``amounts`` (payee-denominated payments): every node's amount, ``amounts[0] == amount``.
    """
    now = ctx.clock()
    stamp = format_utc(now)
    transfer_id = transfer_id or secrets.token_hex(16)
    me = group(ctx)
    line = await _active_line_to(ctx, ctx.store.reader, route[1])
    view = line_view(ctx, line)
    out_amount = view.to_peer(amount)
    if amounts:
        if len(amounts) != len(route) or amounts[0] != amount or not view.matches(
                amount, amounts[1]):
            raise ConflictError("the trust line's rate changed: try again",
                                {"amount": "rate changed"})
        out_amount = amounts[1]
    if out_amount <= 0:
        raise ValidationError("amount too small once converted", {"amount": "too small"})
    seed = member_identity(ctx, payer).ed25519_seed
    event = create_proof(
        _event_document(ctx, transfer_id=transfer_id,
                        payer_uri=urls.member_actor(ctx.config.base_url, payer.username),
                        payee_uri=route[1], amount=amount, memo=memo, now=now),
        seed=seed, verification_method=urls.ed25519_key_id(
            urls.member_actor(ctx.config.base_url, payer.username)), created=now)
    terms = p.PrepareTerms(transfer_id=transfer_id, line_id=line.id, amount=out_amount,
                           source_amount=amount, route=tuple(route),
                           payer=urls.member_actor(ctx.config.base_url, payer.username),
                           payee=payee_actor, memo=memo, expires=format_utc(expires),
                           amounts=tuple(amounts))
    prepare = p.build_prepare(terms, actor=me, to=route[1], when=stamp)
    async with ctx.store.transaction() as tx:
        existing = await iq.get_transfer(tx, transfer_id)
        if existing is not None:  # a retry with the same id: never prepare twice
            return _status(ctx, existing)
        line = await _active_line_to(ctx, tx, route[1])
        assert line.account is not None
        problem = await _limit_problem(ctx, tx, payer.username, line.account, amount, stamp)
        if problem is not None:
            raise LimitExceededError(problem, available=0, fields={"amount": problem})
        await iq.insert_transfer(
            tx, id=transfer_id, role="origin", state="prepared", out_line=line.id,
            payer=payer.username, payee=payee_actor, debit_account=payer.username,
            credit_account=line.account, amount=amount, out_amount=out_amount, memo=memo,
            listing_id=listing, route=json.dumps(list(route)),
            entry_document=json.dumps(event), expires_at=format_utc(expires),
            created_at=stamp, payee_amount=amounts[-1] if amounts else None,
            payee_decimals=payee_decimals if amounts else None)
        await _hold(tx, transfer_id, payer.username, line.account, amount, expires)
        await _send(ctx, tx, line, prepare, now)
        row = await iq.get_transfer(tx, transfer_id)
    assert row is not None
    return _status(ctx, row)


async def _active_line_to(ctx: NodeContext, db: aiosqlite.Connection, peer: str) -> LineRow:
    for line in await iq.lines_with_peer(db, peer):
        if line.state == "active":
            return line
    raise ConflictError("no active trust line with the next node", {"payee": "no route"})


async def get_transfer(ctx: NodeContext, member: MemberRow | None,
                       transfer_id: str) -> TransferStatus:
    """A cross-node transfer; members see their own payments, admins every transfer."""
    row = await iq.get_transfer(ctx.store.reader, transfer_id)
    if row is None or (member is not None and not member.is_admin and (
            row.role != "origin" or row.payer != member.username)):
        raise NotFoundError(f"no transfer {transfer_id!r}")
    return _status(ctx, row)


async def list_transfers(ctx: NodeContext, member: MemberRow) -> list[TransferStatus]:
    """The member's cross-node payments (admins: every transfer)."""
    rows = await iq.list_transfers(ctx.store.reader,
                                   payer=None if member.is_admin else member.username)
    return [_status(ctx, row) for row in rows]


# --- transfers: messages (run inside the inbox worker's transaction) -------------------------


async def _refuse(ctx: NodeContext, tx: aiosqlite.Connection, line: LineRow,
                  terms: p.PrepareTerms, role: str, reason: str) -> str:
    """Record our refusal of a prepare (so a repeat finds it) and answer upstream."""
    now = ctx.clock()
    state = EXPIRED if reason == EXPIRED else "released"
    await iq.insert_transfer(
        tx, id=terms.transfer_id, role=role, state=state, in_line=line.id, payer=terms.payer,
        payee=terms.payee, amount=0, in_amount=terms.source_amount, memo=terms.memo,
        route=json.dumps(list(terms.route)), reason=reason, expires_at=terms.expires,
        created_at=format_utc(now), decided_at=format_utc(now))
    answer = p.build_answer("IouReject", actor=group(ctx), to=str(line.peer_actor),
                            transfer_id=terms.transfer_id, line_id=line.id,
                            when=format_utc(now), reason=reason)
    await _send(ctx, tx, line, answer, now)
    return f"refused: {reason}"


async def _payee_account(ctx: NodeContext, tx: aiosqlite.Connection,
                         payee_actor: str) -> str | None:
    prefix = urls.member_actor(ctx.config.base_url, "")
    if not payee_actor.startswith(prefix):
        return None
    member = await mq.get_member_by_username(tx, payee_actor[len(prefix):])
    return member.username if member is not None and member.is_active else None


async def receive_prepare(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                          terms: p.PrepareTerms) -> str:
    """An upstream node offers a transfer: we are a hop (forward) or the payee's node (decide)."""
    in_line = await iq.get_line(tx, terms.line_id)
    me = group(ctx)
    if in_line is None or in_line.peer_actor != actor:
        return "ignored: no such line with the sender"
    if await iq.get_transfer(tx, terms.transfer_id) is not None:
        return "ignored: duplicate transfer"
    if me not in terms.route or p.previous_hop(terms.route, me) != actor:
        return "ignored: we are not the sender's next hop on this route"
    following = p.next_hop(terms.route, me)
    role = "final" if following is None else "hop"
    now = ctx.clock()
    stamp = format_utc(now)
    if p.is_expired_at(terms.expires, now):
        return await _refuse(ctx, tx, in_line, terms, role, EXPIRED)
    if in_line.state != "active":
        return await _refuse(ctx, tx, in_line, terms, role, f"trust line is {in_line.state}")
    view = line_view(ctx, in_line)
    index = terms.route.index(me)
    if not view.matches(terms.amount, terms.source_amount) or (terms.amounts and (
            terms.amounts[index] != terms.amount
            or terms.amounts[index - 1] != terms.source_amount)):
        return await _refuse(ctx, tx, in_line, terms, role,
                             "conversion does not match the agreed rate")
    assert in_line.account is not None
    if following is None:
        return await _decide(ctx, tx, in_line, terms, now)
    try:
        out_line = await _active_line_to(ctx, tx, following)
    except ConflictError:
        return await _refuse(ctx, tx, in_line, terms, role, "no active trust line to next node")
    assert out_line.account is not None
    problem = await _limit_problem(ctx, tx, in_line.account, out_line.account, terms.amount,
                                   stamp)
    if problem is not None:
        return await _refuse(ctx, tx, in_line, terms, role, problem)
    out_view = line_view(ctx, out_line)
    out_amount = out_view.to_peer(terms.amount)
    if terms.amounts:
        out_amount = terms.amounts[index + 1]
        if not out_view.matches(terms.amount, out_amount):
            return await _refuse(ctx, tx, in_line, terms, role,
                                 "the stated amounts do not match the next line's rate")
    if out_amount <= 0:
        return await _refuse(ctx, tx, in_line, terms, role, "amount too small once converted")
    event = sign_as_node(ctx, _event_document(
        ctx, transfer_id=terms.transfer_id, payer_uri=actor, payee_uri=following,
        amount=terms.amount, memo=terms.memo, now=now), now)
    await iq.insert_transfer(
        tx, id=terms.transfer_id, role="hop", state="prepared", in_line=in_line.id,
        out_line=out_line.id, payer=terms.payer, payee=terms.payee,
        debit_account=in_line.account, credit_account=out_line.account, amount=terms.amount,
        in_amount=terms.source_amount, out_amount=out_amount, memo=terms.memo,
        route=json.dumps(list(terms.route)), entry_document=json.dumps(event),
        expires_at=terms.expires, created_at=stamp)
    expires = datetime.fromisoformat(terms.expires.replace("Z", "+00:00"))
    await _hold(tx, terms.transfer_id, in_line.account, out_line.account, terms.amount, expires)
    forward = p.PrepareTerms(
        transfer_id=terms.transfer_id, line_id=out_line.id, amount=out_amount,
        source_amount=terms.amount, route=terms.route, payer=terms.payer, payee=terms.payee,
        memo=terms.memo, expires=terms.expires, amounts=terms.amounts)
    await _send(ctx, tx, out_line, p.build_prepare(forward, actor=me, to=following, when=stamp),
                now)
    return "prepared and forwarded"


async def _decide(ctx: NodeContext, tx: aiosqlite.Connection, in_line: LineRow,
                  terms: p.PrepareTerms, now: datetime) -> str:
    """The payee's node decides, once: commit (journal + answer) or refuse."""
    stamp = format_utc(now)
    payee = await _payee_account(ctx, tx, terms.payee)
    if payee is None:
        return await _refuse(ctx, tx, in_line, terms, "final", "unknown or disabled payee")
    assert in_line.account is not None
    problem = await _limit_problem(ctx, tx, in_line.account, payee, terms.amount, stamp)
    if problem is not None:
        return await _refuse(ctx, tx, in_line, terms, "final", problem)
    event = sign_as_node(ctx, _event_document(
        ctx, transfer_id=terms.transfer_id, payer_uri=str(in_line.peer_actor),
        payee_uri=terms.payee, amount=terms.amount, memo=terms.memo, now=now), now)
    await iq.insert_transfer(
        tx, id=terms.transfer_id, role="final", state="committed", in_line=in_line.id,
        payer=terms.payer, payee=payee, debit_account=in_line.account, credit_account=payee,
        amount=terms.amount, in_amount=terms.source_amount, memo=terms.memo,
        route=json.dumps(list(terms.route)), entry_document=json.dumps(event),
        expires_at=terms.expires, created_at=stamp, decided_at=stamp)
    row = await iq.get_transfer(tx, terms.transfer_id)
    assert row is not None
    await _append(tx, row, NODE_SIGNER, stamp)
    await notifications.payment_received(ctx, tx, account=payee, amount=row.amount,
                                         tx_id=row.id, memo=row.memo)
    await iq.insert_move(tx, line_id=in_line.id, transfer_id=row.id, local_delta=-row.amount,
                         peer_delta=terms.source_amount, now=stamp)
    answer = p.build_answer("IouCommit", actor=group(ctx), to=str(in_line.peer_actor),
                            transfer_id=row.id, line_id=in_line.id, when=stamp)
    await _send(ctx, tx, in_line, answer, now)
    return "committed"


async def receive_answer(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                         answer: p.Answer) -> str:
    """The downstream node committed or refused: apply it here and pass it upstream."""
    row = await iq.get_transfer(tx, answer.transfer_id)
    if row is None or row.out_line is None:
        return "ignored: unknown transfer"
    out_line = await iq.get_line(tx, row.out_line)
    if out_line is None or out_line.peer_actor != actor or out_line.id != answer.line_id:
        return "ignored: the sender is not this transfer's next node"
    if answer.kind == "IouCommit":
        event = "commit"
    else:
        event = "expire" if answer.reason == EXPIRED else "reject"
    target = p.next_state(row.state, event)
    if target is None:
        return f"ignored: transfer already {row.state}"
    now = ctx.clock()
    stamp = format_utc(now)
    if not await iq.move_transfer(tx, row.id, from_state=row.state, state=target,
                                  reason=answer.reason or None, decided_at=stamp):
        return "ignored: changed meanwhile"
    await lq.release_holds(tx, row.id)
    if target == "committed":
        await _append(tx, row, row.payer if row.role == "origin" else NODE_SIGNER, stamp)
        await iq.insert_move(tx, line_id=out_line.id, transfer_id=row.id,
                             local_delta=row.amount, peer_delta=-(row.out_amount or 0),
                             now=stamp)
        if row.in_line is not None:
            await iq.insert_move(tx, line_id=row.in_line, transfer_id=row.id,
                                 local_delta=-row.amount, peer_delta=row.in_amount or 0,
                                 now=stamp)
    if row.role == "hop" and row.in_line is not None:
        in_line = await iq.get_line(tx, row.in_line)
        assert in_line is not None
        passed = p.build_answer(answer.kind, actor=group(ctx), to=str(in_line.peer_actor),
                                transfer_id=row.id, line_id=in_line.id, when=stamp,
                                reason=answer.reason)
        await _send(ctx, tx, in_line, passed, now)
    return target


async def receive_release(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                          answer: p.Answer) -> str:
    """Upstream asks to release after expiry: only the decider answers (idempotently)."""
    line = await iq.get_line(tx, answer.line_id)
    if line is None or line.peer_actor != actor:
        return "ignored: no such line with the sender"
    row = await iq.get_transfer(tx, answer.transfer_id)
    now = ctx.clock()
    stamp = format_utc(now)
    if row is None:
        # Never saw the offer: decide "expired" now, so a late offer finds this row and stops.
        await iq.insert_transfer(
            tx, id=answer.transfer_id, role="final", state=EXPIRED, in_line=line.id,
            payer="", payee="", amount=0, memo="", route="[]", reason=EXPIRED,
            expires_at=stamp, created_at=stamp, decided_at=stamp)
        reply = p.build_answer("IouReject", actor=group(ctx), to=actor,
                               transfer_id=answer.transfer_id, line_id=line.id, when=stamp,
                               reason=EXPIRED)
        await _send(ctx, tx, line, reply, now)
        return "expired (offer never seen)"
    if row.in_line != line.id:
        return "ignored: the sender is not this transfer's upstream"
    if row.state == "prepared":
        out_line = await iq.get_line(tx, str(row.out_line))
        assert out_line is not None
        forward = p.build_answer("IouRelease", actor=group(ctx), to=str(out_line.peer_actor),
                                 transfer_id=row.id, line_id=out_line.id, when=stamp,
                                 suffix=f"-{_nonce()}")
        await _send(ctx, tx, out_line, forward, now)
        return "release forwarded"
    kind = "IouCommit" if row.state == "committed" else "IouReject"
    reply = p.build_answer(kind, actor=group(ctx), to=actor, transfer_id=row.id,
                           line_id=line.id, when=stamp, reason=row.reason or "",
                           suffix=f"-again-{_nonce()}")
    await _send(ctx, tx, line, reply, now)
    return f"decision repeated: {row.state}"


async def queue_releases(ctx: NodeContext) -> int:
    """Ask the decider about our expired, still prepared payments (the IOU worker's step)."""
    now = ctx.clock()
    stamp = format_utc(now)
    async with ctx.store.transaction() as tx:
        rows = await iq.expired_unreleased(tx, stamp)
        for row in rows:
            line = await iq.get_line(tx, str(row.out_line))
            assert line is not None
            release = p.build_answer("IouRelease", actor=group(ctx), to=str(line.peer_actor),
                                     transfer_id=row.id, line_id=line.id, when=stamp)
            await _send(ctx, tx, line, release, now)
            await iq.move_transfer(tx, row.id, from_state="prepared", release_sent=1)
    return len(rows)


# --- reconciliation -------------------------------------------------------------------------


async def our_statement(ctx: NodeContext, db: aiosqlite.Connection,
                        line: LineRow) -> p.Statement:
    """Our view of a line: our ledger account's balance (Σ our moves when there is no
    account), Σ the peer's moves, recent transfers and their moves (to explain a mismatch)."""
    local, peer, recent = await iq.line_totals(db, line.id)
    account = await lq.get_account(db, line.account) if line.account else None
    moves = await iq.line_moves(db, line.id, limit=p.MAX_STATEMENT_MOVES)
    return p.Statement(line_id=line.id, balance=local if account is None else account.balance,
                       peer_balance=peer, transfers=tuple(recent),
                       moves=tuple((row[0], int(row[1]), int(row[2])) for row in moves))


async def queue_statements(ctx: NodeContext) -> int:
    """Send a signed statement of every active or frozen line to its peer."""
    now = ctx.clock()
    count = 0
    async with ctx.store.transaction() as tx:
        for line in await iq.list_lines(tx):
            if line.state not in ("active", "frozen") or not line.peer_actor:
                continue
            statement = await our_statement(ctx, tx, line)
            document = p.build_statement(statement, actor=group(ctx), to=line.peer_actor,
                                         when=format_utc(now), nonce=_nonce())
            await _send(ctx, tx, line, document, now)
            count += 1
    return count


async def receive_statement(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                            statement: p.Statement, raw: Mapping[str, Any]) -> str:
    """Compare the peer's signed statement with our view and record the verdict."""
    line = await iq.get_line(tx, statement.line_id)
    if line is None or line.peer_actor != actor:
        return "ignored: no such line with the sender"
    ours = await our_statement(ctx, tx, line)
    verdict = p.reconcile(ours, statement, in_flight=await iq.prepared_on_line(tx, line.id))
    status, detail = verdict.status, verdict.detail
    moved, _, _ = await iq.line_totals(tx, line.id)
    if moved != ours.balance:  # our ledger no longer matches the line's own transfers
        status = "mismatch"
        detail += (f"; our ledger balance {ours.balance} differs from the sum of this line's"
                   f" transfers {moved}")
    differing = [{"transfer": t, "ours": [local, peer], "theirs": [their_local, their_peer]}
                 for t, local, peer, their_local, their_peer in verdict.differing]
    await iq.save_reconciliation(
        tx, line_id=line.id, status=status, detail=detail,
        only_ours=json.dumps(verdict.only_ours), only_theirs=json.dumps(verdict.only_theirs),
        statement=json.dumps(dict(raw)), now=format_utc(ctx.clock()),
        differing=json.dumps(differing))
    return f"reconciled: {verdict.status}"


async def line_report(ctx: NodeContext, line: LineRow) -> dict[str, Any]:
    """A line for the admin API: limits, balance, agreement, last reconciliation, moves."""
    decimals = ctx.config.currency.decimals
    account = await lq.get_account(ctx.store.reader, line.account) if line.account else None
    rec = next((row for row in await iq.reconciliations(ctx.store.reader)
                if row["line_id"] == line.id), None)
    moves = await iq.line_moves(ctx.store.reader, line.id, limit=20)
    return {
        "id": line.id, "peer": line.peer_actor or line.requested, "state": line.state,
        "role": "proposer" if line.is_proposer else "acceptor", "account": line.account,
        "limit_out": format_amount(line.limit_out, decimals=decimals),
        "limit_in": format_amount(line.limit_in, decimals=decimals), "rate": line.rate,
        "balance": format_amount(account.balance, decimals=decimals) if account else None,
        "pending_action": line.intent, "last_error": line.last_error,
        "agreement": json.loads(line.agreement) if line.agreement else None,
        "reconciliation": None if rec is None else {
            "status": rec["status"], "detail": rec["detail"],
            "only_ours": json.loads(rec["only_ours"]),
            "only_theirs": json.loads(rec["only_theirs"]),
            "differing": [_differing_json(item, decimals, line.peer_decimals)
                          for item in json.loads(rec["differing"])],
            "checked_at": rec["checked_at"]},
        "recent_transfers": [{"transfer": m[0], "local_delta": m[1], "peer_delta": m[2],
                              "at": m[3]} for m in moves],
    }


def _differing_json(item: Mapping[str, Any], decimals: int,
                    peer_decimals: int | None) -> dict[str, Any]:
    """One transfer recorded differently by the two nodes, amounts as decimal strings:
    ``here`` = our account's change (our currency), ``there`` = theirs (their currency)."""
    ours, theirs = item["ours"], item["theirs"]
    there = decimals if peer_decimals is None else peer_decimals
    return {"transfer": item["transfer"],
            "here": {"ours": format_amount(ours[0], decimals=decimals),
                     "theirs": format_amount(theirs[1], decimals=decimals)},
            "there": {"ours": format_amount(ours[1], decimals=there),
                      "theirs": format_amount(theirs[0], decimals=there)}}


async def local_edges(ctx: NodeContext) -> list[p.Edge]:
    """Our active lines as routing edges (capacity = room on the peer's account, our units)."""
    now = format_utc(ctx.clock())
    edges: list[p.Edge] = []
    for line in await iq.list_lines(ctx.store.reader):
        if line.state != "active" or not line.account or not line.peer_actor:
            continue
        held, _ = await lq.transfer_snapshot(ctx.store.reader, (line.account,), now)
        item = held.get(line.account)
        if item is None:
            continue
        room = line.limit_out - item.account.balance - item.held_credit
        view = line_view(ctx, line)
        edges.append(p.Edge(source=group(ctx), target=line.peer_actor, capacity=max(0, room),
                            ratio=view.peer_ratio(), view=view))
    return edges
