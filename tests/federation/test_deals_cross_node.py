"""Cross-node deals, second part: refunds of paid deals, loan deposits held on the borrower's
node, and payments that wait for an author's node that is down. Two real nodes each."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from meshnode.errors import ConflictError
from meshnode.services import deal_payments, deals, iou, members
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store.deals import DealRow
from tests.conftest import PASSWORD, ride_listing
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants
from tests.federation.test_deal_payments import PRICE, _author_side, _inject, _setup
from tests.web.pages.conftest import CSRF_RE

SLOT = {"from": "2026-11-27T09:00:00Z", "to": "2026-11-29T09:00:00Z"}


def _loan(deposit: str = "30.00", **price: str) -> dict[str, Any]:
    return ride_listing(category="lend", title="Tronçonneuse",
                        details={"deposit": deposit, "auto_accept": True},
                        price=price or {"mode": "free"})


async def _payments(node: Node, deal: DealRow) -> dict[str, tuple[str, str | None]]:
    return {p.action: (p.state, p.transfer_id)
            for p in await q.payments_of(node.ctx.store.reader, deal.id)}


async def _holds(node: Node, reason: str) -> list[int]:
    async with node.ctx.store.reader.execute(
            "SELECT amount FROM ledger_holds WHERE reason = ?", (reason,)) as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


async def _paid_ride(make_node: NodeFactory, **details: Any
                     ) -> tuple[Node, Node, Any, Any, DealRow, DealRow]:
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    a, b, alice, bob, remote = await _setup(make_node, ride_listing(details={**base, **details}))
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 2})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    assert await balance(b, "bob") == -450
    assert await balance(a, "alice") == 2 * PRICE
    return a, b, alice, bob, deal, theirs


async def _refunded_on_both(a: Node, b: Node, bob: Any, deal: DealRow) -> None:
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    theirs = await _author_side(a, deal)
    assert (mine.state, theirs.state) == ("cancelled", "cancelled")
    assert await q.taken(a.ctx.store.reader, theirs.listing_id, ("accepted",)) == 0
    assert await q.taken(b.ctx.store.reader, mine.listing_id, ("accepted",)) == 0
    assert await balance(b, "bob") == 0
    assert await balance(a, "alice") == 0
    refund_b = (await _payments(b, mine))["refund"]
    refund_a = (await _payments(a, theirs))["refund"]
    assert refund_a == ("paid", deal_payments.transfer_id_for(a.ctx, theirs, "refund"))
    assert refund_b == refund_a  # the same transfer, confirmed by the booker's node
    await check_invariants(a, b)


async def test_refund__booker_cancels_a_paid_ride_and_the_author_node_pays_it_back(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta paid 2 seats (9.00 alpha = 4.50 beta) on alice@alpha's ride
    a, b, _alice, bob, deal, _theirs = await _paid_ride(make_node)
    # When bob cancels in time
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await settle(a, b)
    # Then alpha paid the refund back through the line; seats, ledgers and line agree
    await _refunded_on_both(a, b, bob, deal)
    # and a repeated notice or a retried refund changes nothing
    notice = json.loads(await _last_outgoing(a, "/payment/refund/paid"))
    await _inject(b, notice, "#again")
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE deal_payments SET state = 'due', transfer_id = NULL"
                         " WHERE action = 'refund'")
    await settle(a, b)
    await _refunded_on_both(a, b, bob, deal)
    assert await a.count("SELECT count(*) FROM iou_transfers") == 2


async def _last_outgoing(node: Node, needle: str) -> str:
    async with node.ctx.store.reader.execute(
            "SELECT body FROM outbox_activities WHERE activity_id LIKE ? ORDER BY rowid DESC",
            (f"%{needle}%",)) as cursor:
        row = await cursor.fetchone()
    assert row is not None, needle
    return str(row[0])


async def test_refund__author_cancels_a_paid_ride(make_node: NodeFactory) -> None:
    a, b, alice, bob, deal, theirs = await _paid_ride(make_node)
    await deals.act(a.ctx, alice, theirs.id, "cancel", "voiture en panne")
    await settle(a, b)
    await _refunded_on_both(a, b, bob, deal)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).reason == "voiture en panne"


async def test_refund__too_late_per_the_listing_policy_is_refused_and_nothing_changes(
    make_node: NodeFactory, clock: Any,
) -> None:
    a, b, alice, bob, deal, theirs = await _paid_ride(make_node, cancel_notice_hours=48)
    clock.advance(days=8)  # departure 2026-12-05T08:00Z is now less than 48 h away
    with pytest.raises(ConflictError, match="too late"):
        await deals.act(b.ctx, bob, deal.id, "cancel")
    with pytest.raises(ConflictError, match="too late"):
        await deals.act(a.ctx, alice, theirs.id, "cancel")
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    assert (await _author_side(a, deal)).state == "accepted"
    assert "refund" not in await _payments(a, theirs)
    assert "refund" not in await _payments(b, deal)
    assert await balance(a, "alice") == 2 * PRICE


async def test_refund__refused_by_a_frozen_line_is_retried_until_it_goes_through(
    make_node: NodeFactory, clock: Any,
) -> None:
    a, b, _alice, bob, deal, theirs = await _paid_ride(make_node)
    line = (await iou.list_lines(a.ctx))[0]
    await iou.change_line(a.ctx, None, line.id, "freeze")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await settle(a, b)
    # the refund could not be prepared: it stays due, with the reason, for a later attempt
    rows = {p.action: p for p in await q.payments_of(a.ctx.store.reader, theirs.id)}
    assert rows["refund"].state == "due"
    assert "refund not possible yet" in rows["refund"].reason
    assert rows["refund"].next_attempt_at is not None
    assert await balance(b, "bob") == -450
    await iou.change_line(a.ctx, None, line.id, "unfreeze")
    await settle(a, b)
    clock.advance(minutes=1)
    await settle(a, b)
    await _refunded_on_both(a, b, bob, deal)


async def test_deposit_loan__held_on_the_borrower_node_and_released_on_return(
    make_node: NodeFactory,
) -> None:
    # Given a free loan with a 30.00 alpha deposit; the line says 1 beta = 2 alpha
    a, b, alice, bob, remote = await _setup(make_node, _loan())
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    # Then bob's node holds 15.00 beta against bob's limit, from the booking on
    assert await _holds(b, f"deal:{deal.id}:deposit") == [1500]
    await settle(a, b)
    theirs = await _author_side(a, deal)
    assert (theirs.state, theirs.deposit) == ("accepted", 3000)
    assert await a.count("SELECT count(*) FROM ledger_holds") == 0  # alpha holds nothing
    assert await _holds(b, f"deal:{deal.id}:deposit") == [1500]
    # When alice marks the drill returned
    await deals.act(a.ctx, alice, theirs.id, "complete")
    await settle(a, b)
    # Then the hold is released and nothing was paid
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "completed"
    assert await _holds(b, f"deal:{deal.id}:deposit") == []
    assert await balance(b, "bob") == 0
    assert await b.count("SELECT count(*) FROM iou_transfers") == 0
    await check_invariants(a, b)


async def test_deposit_loan__claimed_is_paid_to_the_lender_with_the_reason(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, remote = await _setup(
        make_node, _loan(mode="amount", amount="2.00", period="day"))
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "dispute", "chaîne cassée")
    await settle(a, b)
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    theirs = await _author_side(a, deal)
    assert (mine.state, theirs.state) == ("disputed", "disputed")
    assert mine.reason == theirs.reason == "chaîne cassée"
    # price 4.00 + deposit 30.00 alpha = 17.00 beta, through the line
    assert await _holds(b, f"deal:{deal.id}:deposit") == []
    assert await balance(b, "bob") == -1700
    assert await balance(a, "alice") == 3400
    assert (await _payments(b, mine))["dispute"][0] == "paid"
    assert (await _payments(a, theirs))["dispute"][0] == "paid"
    await check_invariants(a, b)


async def test_deposit_loan__beyond_the_borrower_limit_or_without_a_line_is_refused(
    make_node: NodeFactory,
) -> None:
    a, b, _alice, bob, remote = await _setup(make_node, _loan(deposit="2000.00"))
    with pytest.raises(ConflictError):  # 1000.00 beta is beyond bob's limit of -300
        await deals.book(b.ctx, bob, remote.id, SLOT)
    c = await make_node("gamma")
    from tests.federation.conftest import peer
    await peer(c, a)
    carol = await c.member("carol")
    mirrored = await c.remote(remote.object_id)
    assert mirrored is not None
    with pytest.raises(ConflictError, match="trust line"):
        await deals.book(c.ctx, carol, mirrored.id, SLOT)
    await settle(a, b, c)
    for node in (a, b, c):
        assert await node.count("SELECT count(*) FROM deals") == 0
        assert await node.count("SELECT count(*) FROM ledger_holds") == 0
    assert await b.count("SELECT count(*) FROM outbox_activities WHERE type = 'Offer'") == 0


async def _accepted_then_author_down(make_node: NodeFactory
                                     ) -> tuple[Node, Node, Any, DealRow]:
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    a, b, _alice, bob, remote = await _setup(
        make_node, ride_listing(details={**base, "auto_accept": True}))
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await b.workers.delivery.step()  # the Offer reaches alpha
    await a.workers.inbox.step()  # alpha accepts it at once
    await a.workers.delivery.step()  # the Accept reaches beta
    await a.stop()  # and alpha goes down before bob's node pays
    await settle(b)
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    assert mine.state == "accepted"
    assert (await _payments(b, mine))["accept"][0] == "pending"
    return a, b, bob, mine


async def test_author_node_down__the_payment_waits_and_completes_when_it_returns(
    make_node: NodeFactory, clock: Any,
) -> None:
    a, b, bob, deal = await _accepted_then_author_down(make_node)
    clock.advance(hours=3)  # longer than an ordinary payment's 2 minutes
    await settle(b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    await a.start()
    clock.advance(hours=3)
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    theirs = await _author_side(a, deal)
    assert theirs.state == "accepted"
    assert (await _payments(b, deal))["accept"][0] == "paid"
    assert (await _payments(a, theirs))["accept"][0] == "paid"
    assert await balance(b, "bob") == -225
    assert await balance(a, "alice") == PRICE
    await check_invariants(a, b)


async def test_author_node_down__past_the_deal_expiry_the_payment_fails_and_both_cancel(
    make_node: NodeFactory, clock: Any,
) -> None:
    a, b, bob, deal = await _accepted_then_author_down(make_node)
    clock.advance(days=9)  # beyond the deal's expiry (2026-12-04T10:00Z on bob's node)
    await settle(b)
    await a.start()
    clock.advance(hours=1)
    await settle(a, b)
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    theirs = await _author_side(a, deal)
    assert (mine.state, theirs.state) == ("cancelled", "cancelled")
    assert "expired" in mine.reason
    assert "expired" in theirs.reason
    assert (await _payments(b, mine))["accept"][0] == "failed"
    assert (await _payments(a, theirs))["accept"][0] == "failed"
    assert await q.taken(a.ctx.store.reader, theirs.listing_id, ("accepted",)) == 0
    assert await balance(b, "bob") == 0
    assert await balance(a, "alice") == 0
    await check_invariants(a, b)


# --- the deal page shows where the money is (both nodes, English and French) ---------------


async def _page(node: Node, username: str, path: str, language: str = "en") -> str:
    """Sign in to a real node through its login form and fetch a page."""
    async with node.ctx.store.transaction() as tx:
        await tx.execute("UPDATE members SET password_hash = ? WHERE username = ?",
                         (members.hash_password(PASSWORD), username))
    headers = {"Accept": "text/html", "Accept-Language": language}
    async with aiohttp.ClientSession(base_url=node.url,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        form = await (await session.get("/login", headers=headers)).text()
        token = CSRF_RE.search(form)
        assert token is not None
        signed = await session.post("/login", headers=headers, allow_redirects=False, data={
            "username": username, "password": PASSWORD, "csrf": token.group(1), "next": "/"})
        assert signed.status == 303
        response = await session.get(path, headers=headers)
        assert response.status == 200
        return await response.text()


async def test_deal_page__paid_then_refunded_on_both_nodes_in_english_and_french(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, deal, theirs = await _paid_ride(make_node)
    assert "Payment made" in await _page(b, "bob", f"/deals/{deal.id}")
    assert "Paiement effectué" in await _page(a, "alice", f"/deals/{theirs.id}", "fr")
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await b.workers.deals.step()
    await b.workers.delivery.step()
    await a.workers.inbox.step()  # alpha cancelled; its refund is due, not yet paid
    assert "Refund pending" in await _page(a, "alice", f"/deals/{theirs.id}")
    assert "Remboursement en attente" in await _page(b, "bob", f"/deals/{deal.id}", "fr")
    await settle(a, b)
    assert "Refunded" in await _page(b, "bob", f"/deals/{deal.id}")
    assert "Remboursé" in await _page(a, "alice", f"/deals/{theirs.id}", "fr")
    del alice


async def test_deal_page__deposit_held_then_claimed_with_the_reason(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, remote = await _setup(make_node, _loan())
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    page = await _page(b, "bob", f"/deals/{deal.id}")
    assert "Deposit held" in page
    assert "Payment" not in page  # a free loan: nothing to pay
    await settle(a, b)
    theirs = await _author_side(a, deal)
    assert "Caution bloquée" in await _page(a, "alice", f"/deals/{theirs.id}", "fr")
    await deals.act(a.ctx, alice, theirs.id, "dispute", "chaîne cassée")
    await b.workers.delivery.step()
    await a.workers.delivery.step()
    await b.workers.inbox.step()  # bob's node knows of the claim; the payment is due
    page = await _page(b, "bob", f"/deals/{deal.id}")
    assert "Deposit claimed" in page
    assert "chaîne cassée" in page
    await settle(a, b)
    page = await _page(a, "alice", f"/deals/{theirs.id}", "fr")
    assert "Caution réclamée" in page
    assert "chaîne cassée" in page


async def test_deal_page__deposit_released_on_return(make_node: NodeFactory) -> None:
    a, b, alice, bob, remote = await _setup(make_node, _loan())
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "complete")
    await settle(a, b)
    assert "Deposit released" in await _page(b, "bob", f"/deals/{deal.id}")
    assert "Caution libérée" in await _page(a, "alice", f"/deals/{theirs.id}", "fr")


async def test_deal_page__author_node_down_shows_the_payment_pending(
    make_node: NodeFactory,
) -> None:
    _a, b, _bob, deal = await _accepted_then_author_down(make_node)
    page = await _page(b, "bob", f"/deals/{deal.id}")
    assert "Payment sent, awaiting the other community" in page
    assert "Cancelled" not in page
    page = await _page(b, "bob", f"/deals/{deal.id}", "fr")
    assert "Paiement envoyé, en attente de l’autre communauté" in page


async def test_refund__the_author_cannot_cancel_before_the_payment_arrived(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")  # alpha now waits for the payment
    with pytest.raises(ConflictError, match="in progress"):
        await deals.act(a.ctx, alice, theirs.id, "cancel")
    assert (await _author_side(a, deal)).state == "accepted"
    assert "refund" not in await _payments(a, theirs)
    await settle(a, b)
    assert (await _payments(a, theirs))["accept"][0] == "paid"
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"


async def test_refund_notice__unbacked_or_from_the_booker_is_rejected(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, deal, theirs = await _paid_ride(make_node)
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await b.workers.delivery.step()  # alpha has not heard of it yet: nothing was refunded
    now = a.clock()
    notice = deal_payments.build_notice(
        activity_id=f"{a.url}/deals/{theirs.id}/payment/refund/paid", actor=deal.author_uri,
        to=deal.booker_uri, agreement_id=deal.agreement_id, action="refund", state="paid",
        transfer_id="e" * 32, reason="", when="2026-11-26T10:00:00Z")
    unbacked = sign_as_member(a.ctx, alice, notice, now)  # alice's real key, but no such transfer
    by_booker = sign_as_member(b.ctx, bob, {**notice, "actor": deal.booker_uri,
                                     "id": f"{b.url}/x/refund"}, now)
    await _inject(b, unbacked, "#1")
    await _inject(b, by_booker, "#2")
    for _ in range(3):
        await b.workers.inbox.step()
    async with b.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities WHERE activity_id LIKE '%refund%#%'") as cur:
        outcomes = [row[0] for row in await cur.fetchall()]
    assert len(outcomes) == 2
    assert all(o.startswith("rejected") for o in outcomes), outcomes
    assert (await _payments(b, deal))["refund"][0] == "pending"
    assert await balance(b, "bob") == -450
    await settle(a, b)  # the real refund still goes through
    await _refunded_on_both(a, b, bob, deal)


async def test_refund__booker_cancels_before_alpha_heard_of_the_payment_still_refunds(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta paid, but the notice naming the transfer has not reached alpha yet
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await a.workers.delivery.step()  # Accept → beta
    await b.workers.inbox.step()  # the payment is due
    await b.workers.deals.step()  # IouPrepare queued
    await b.workers.delivery.step()
    await a.workers.inbox.step()  # alpha commits the transfer
    await a.workers.delivery.step()
    await b.workers.inbox.step()  # beta: paid; its notice is queued to alpha...
    assert (await _payments(b, deal))["accept"][0] == "paid"
    later = ("UPDATE deliveries SET next_attempt_at = ? WHERE outbox_seq IN (SELECT seq FROM"
             " outbox_activities WHERE activity_id LIKE '%/payment/accept/paid')")
    async with b.ctx.store.transaction() as tx:
        await tx.execute(later, ("2099-01-01T00:00:00Z",))  # ...and held back
    # When bob cancels and his cancel reaches alpha before the notice
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await b.workers.delivery.step()
    await a.workers.inbox.step()
    theirs = await _author_side(a, deal)
    assert theirs.state == "cancelled"
    assert (await _payments(a, theirs)).keys() == {"accept"}  # nothing known to refund yet
    assert (await _payments(a, theirs))["accept"][0] == "pending"
    # Then the late notice confirms the payment and alpha pays it back
    async with b.ctx.store.transaction() as tx:
        await tx.execute(later, ("2026-01-01T00:00:00Z",))
    await settle(a, b)
    await _refunded_on_both(a, b, bob, deal)
