"""Cross-node transfers: the payer's node prepares; hops forward; the payee's node (``final``)
decides once and records it; every other node applies the decision it receives and ignores
anything that does not fit the transition table (``protocol.iou.TRANSFER_GRAPH``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, LimitExceededError, NotFoundError
from meshnode.protocol import iou as p
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    EntryFields,
    TransferTerms,
    build_event,
    parse_memo,
    prepare_entry,
)
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, number
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.iou.common import (
    DEFAULT_EXPIRY,
    EXPIRED,
    HOLD_GRACE,
    NODE_SIGNER,
    IouNetwork,
    TransferStatus,
    line_view,
    nonce,
    send,
    transfer_status,
)
from meshnode.services.iou.routing import active_line_to, route_edges
from meshnode.services.ledger import currency_terms, limit_breach
from meshnode.services.signing import community_actor, sign_as_member, sign_as_node
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store import members as mq
from meshnode.store.iou import LineRow, TransferRow
from meshnode.store.members import MemberRow


async def _limit_problem(ctx: NodeContext, db: aiosqlite.Connection, debit: str, credit: str,
                         amount: int, now: str) -> str | None:
    """The ledger's own limit check (holds counted), worded as a refusal reason."""
    breach = await limit_breach(ctx, db, debit, credit, amount, now)
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
    await ledger_store.insert_hold(tx, hold_id=nonce(), account=debit, direction="debit",
                                   amount=amount, reason=transfer_id, expires_at=until)
    await ledger_store.insert_hold(tx, hold_id=nonce(), account=credit, direction="credit",
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
    await ledger_store.append_entry(tx, prepare_entry(fields, json.loads(row.entry_document)))


async def pay_remote(ctx: NodeContext, payer: MemberRow, payee_handle: str, amount_units: int,
                     memo: object, listing: str | None = None, *, network: IouNetwork,
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
            return transfer_status(ctx, existing)
    if not isinstance(amount_units, int) or amount_units <= 0:
        raise ValidationError("amount must be positive", {"amount": "> 0"})
    note = parse_memo(memo)
    me = community_actor(ctx)
    payee_actor, edges, target = await route_edges(
        ctx, payee_handle, network,
        lambda known, to: p.choose_route(known, me, to, amount_units) is not None)
    route = p.choose_route(edges, me, target, amount_units)
    if route is None:
        best = p.find_routes(edges, community_actor(ctx), target)
        room = best[0].capacity if best else 0
        raise ConflictError(
            Text("not enough trust-line capacity to the payee's community (at most"
                 " %(room)s now)",
                 room=number(format_amount(room, decimals=ctx.config.currency.decimals))),
            {"amount": "exceeds the route's capacity"})
    return await prepare_origin(ctx, payer, payee_actor=payee_actor, route=route.nodes,
                                amount=amount_units, memo=note, listing=listing,
                                expires=ctx.clock() + expires_in, transfer_id=transfer_id)


async def pay_remote_payee_amount(
    ctx: NodeContext, payer: MemberRow, payee_handle: str, amount: object, memo: object,
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
            return transfer_status(ctx, existing)
    if not isinstance(amount, str):
        raise ValidationError("amount must be a decimal string such as \"12.50\"",
                              {"amount": "must be a string"})
    parse_amount(amount, decimals=6)  # syntax and sign before any network work
    note = parse_memo(memo)
    payee_actor, edges, target = await route_edges(ctx, payee_handle, network)
    last = next((edge.view for edge in edges if edge.target == target and edge.view), None)
    if last is None:
        raise ConflictError("the payee's community does not publish its currency on any"
                            " known trust line", {"amount_in": "state the amount in yours"})
    payee_decimals = last.peer_decimals
    payee_units = parse_amount(amount, decimals=payee_decimals)
    chosen = p.choose_route_for_payee(edges, community_actor(ctx), target, payee_units)
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
    me = community_actor(ctx)
    line = await active_line_to(ctx, ctx.store.reader, route[1])
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
    payer_uri = urls.member_actor(ctx.config.base_url, payer.username)
    event = sign_as_member(ctx, payer, _event_document(
        ctx, transfer_id=transfer_id, payer_uri=payer_uri, payee_uri=route[1], amount=amount,
        memo=memo, now=now), now)
    terms = p.PrepareTerms(transfer_id=transfer_id, line_id=line.id, amount=out_amount,
                           source_amount=amount, route=tuple(route),
                           payer=payer_uri,
                           payee=payee_actor, memo=memo, expires=format_utc(expires),
                           amounts=tuple(amounts))
    prepare = p.build_prepare(terms, actor=me, to=route[1], when=stamp)
    async with ctx.store.transaction() as tx:
        existing = await iq.get_transfer(tx, transfer_id)
        if existing is not None:  # a retry with the same id: never prepare twice
            return transfer_status(ctx, existing)
        line = await active_line_to(ctx, tx, route[1])
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
        await send(ctx, tx, line, prepare, now)
        row = await iq.get_transfer(tx, transfer_id)
    assert row is not None
    return transfer_status(ctx, row)


async def get_transfer(ctx: NodeContext, member: MemberRow | None,
                       transfer_id: str) -> TransferStatus:
    """A cross-node transfer; members see their own payments, admins every transfer."""
    row = await iq.get_transfer(ctx.store.reader, transfer_id)
    if row is None or (member is not None and not member.is_admin and (
            row.role != "origin" or row.payer != member.username)):
        raise NotFoundError(f"no transfer {transfer_id!r}")
    return transfer_status(ctx, row)


async def list_transfers(ctx: NodeContext, member: MemberRow) -> list[TransferStatus]:
    """The member's cross-node payments (admins: every transfer)."""
    rows = await iq.list_transfers(ctx.store.reader,
                                   payer=None if member.is_admin else member.username)
    return [transfer_status(ctx, row) for row in rows]


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
    answer = p.build_answer("IouReject", actor=community_actor(ctx), to=str(line.peer_actor),
                            transfer_id=terms.transfer_id, line_id=line.id,
                            when=format_utc(now), reason=reason)
    await send(ctx, tx, line, answer, now)
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
    me = community_actor(ctx)
    if in_line is None or in_line.peer_actor != actor:
        return "ignored: no such line with the sender"
    if await iq.get_transfer(tx, terms.transfer_id) is not None:
        return "ignored: duplicate transfer"
    if me not in terms.route or p.previous_hop(terms.route, me) != actor:
        return "ignored: we are not the sender's next hop on this route"
    following = p.next_hop(terms.route, me)
    role = "final" if following is None else "hop"
    now = ctx.clock()
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
    if following is None:
        return await _decide(ctx, tx, in_line, terms, now)
    return await _forward(ctx, tx, in_line, terms, actor=actor, following=following,
                          index=index, now=now)


async def _forward(ctx: NodeContext, tx: aiosqlite.Connection, in_line: LineRow,
                   terms: p.PrepareTerms, *, actor: str, following: str, index: int,
                   now: datetime) -> str:
    """As a hop: hold both lines' room, record the leg and pass the offer downstream."""
    role, me, stamp = "hop", community_actor(ctx), format_utc(now)
    assert in_line.account is not None
    try:
        out_line = await active_line_to(ctx, tx, following)
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
    await send(ctx, tx, out_line, p.build_prepare(forward, actor=me, to=following, when=stamp),
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
    answer = p.build_answer("IouCommit", actor=community_actor(ctx), to=str(in_line.peer_actor),
                            transfer_id=row.id, line_id=in_line.id, when=stamp)
    await send(ctx, tx, in_line, answer, now)
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
    await ledger_store.release_holds(tx, row.id)
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
        passed = p.build_answer(answer.kind, actor=community_actor(ctx), to=str(in_line.peer_actor),
                                transfer_id=row.id, line_id=in_line.id, when=stamp,
                                reason=answer.reason)
        await send(ctx, tx, in_line, passed, now)
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
        reply = p.build_answer("IouReject", actor=community_actor(ctx), to=actor,
                               transfer_id=answer.transfer_id, line_id=line.id, when=stamp,
                               reason=EXPIRED)
        await send(ctx, tx, line, reply, now)
        return "expired (offer never seen)"
    if row.in_line != line.id:
        return "ignored: the sender is not this transfer's upstream"
    if row.state == "prepared":
        out_line = await iq.get_line(tx, str(row.out_line))
        assert out_line is not None
        forward = p.build_answer("IouRelease", actor=community_actor(ctx),
                                 to=str(out_line.peer_actor), transfer_id=row.id,
                                 line_id=out_line.id, when=stamp,
                                 suffix=f"-{nonce()}")
        await send(ctx, tx, out_line, forward, now)
        return "release forwarded"
    kind = "IouCommit" if row.state == "committed" else "IouReject"
    reply = p.build_answer(kind, actor=community_actor(ctx), to=actor, transfer_id=row.id,
                           line_id=line.id, when=stamp, reason=row.reason or "",
                           suffix=f"-again-{nonce()}")
    await send(ctx, tx, line, reply, now)
    return f"decision repeated: {row.state}"


async def queue_releases(ctx: NodeContext) -> int:
    """Ask the decider about our expired, still prepared payments (the IOU worker's step)."""
    now = ctx.clock()
    stamp = format_utc(now)
    # Looked for on the reader first: the worker asks every second, and a write transaction
    # for nothing took the write lock, moved the store's commit counter (waking the idle
    # delivery scheduler to read its queue) and made objects after the idle sweep into the
    # pools a load left (issue 17: the soak's arenas). Read again inside the transaction.
    if not await iq.expired_unreleased(ctx.store.reader, stamp):
        return 0
    async with ctx.store.transaction() as tx:
        rows = await iq.expired_unreleased(tx, stamp)
        for row in rows:
            line = await iq.get_line(tx, str(row.out_line))
            assert line is not None
            release = p.build_answer("IouRelease", actor=community_actor(ctx),
                                     to=str(line.peer_actor), transfer_id=row.id,
                                     line_id=line.id, when=stamp)
            await send(ctx, tx, line, release, now)
            await iq.move_transfer(tx, row.id, from_state="prepared", release_sent=1)
    return len(rows)


# --- reconciliation -------------------------------------------------------------------------
