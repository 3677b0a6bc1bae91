"""Local deals: rides, meals, loans with deposits, group buys; payments and holds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.errors import ConflictError, LimitExceededError, PermissionDeniedError
from meshnode.protocol.deals import CapacityError, NotYourMoveError
from meshnode.protocol.errors import ValidationError
from meshnode.services import deals, ledger, listings
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests.conftest import FakeClock, MakeMember, TestMember, ride_listing


def meal(**details: Any) -> dict[str, Any]:
    return ride_listing(category="meal", title="Lasagnes maison", price={"mode": "free"},
                        details={"portions": 4, "pickup_time": "2026-11-28T19:00:00Z",
                                 **details})


def loan(**details: Any) -> dict[str, Any]:
    return ride_listing(category="lend", title="Perceuse à percussion",
                        price={"mode": "amount", "amount": "2.00", "period": "day"},
                        details={"deposit": "30.00", **details})


def group_buy(**details: Any) -> dict[str, Any]:
    return ride_listing(category="group-buy", title="Commande groupée de pommes",
                        price={"mode": "amount", "amount": "1.50"},
                        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                                 "deadline": "2026-11-30T18:00:00Z", **details})


async def balance(ctx: NodeContext, username: str) -> tuple[int, int]:
    wallet = await ledger.wallet_summary(ctx, await _member(ctx, username))
    return wallet.position.balance, wallet.position.held_debit


async def _member(ctx: NodeContext, username: str):  # type: ignore[no-untyped-def]
    from meshnode.services.members import get_member
    return await get_member(ctx, username)


async def test_ride__request_accept_pays_price_per_seat(
    ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing())
    deal = await deals.book(ctx, bob.row, view.row.id, {"quantity": 2, "message": "Deux"})
    assert deal.state == "requested"
    assert deal.amount == 900
    assert await balance(ctx, "bob") == (0, 0)  # nothing moves before acceptance
    accepted = await deals.act(ctx, alice.row, deal.id, "accept")
    assert accepted.state == "accepted"
    assert await balance(ctx, "bob") == (-900, 0)
    assert await balance(ctx, "alice") == (900, 0)
    done = await deals.act(ctx, bob.row, deal.id, "complete")
    assert done.state == "completed"
    assert (await ledger.verify_journal(ctx)).ok


async def test_ride__never_more_seats_than_offered(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        details={**ride_listing()["details"], "auto_accept": True}))  # type: ignore[dict-item]
    await deals.book(ctx, bob.row, view.row.id, {"quantity": 2})
    carol = await make_member("carol")
    with pytest.raises(CapacityError, match="only 1 seat"):
        await deals.book(ctx, carol.row, view.row.id, {"quantity": 2})
    assert len(await q.list_for_member(ctx.store.reader, carol.row.id, "booker")) == 0
    one = await deals.book(ctx, carol.row, view.row.id, {"quantity": 1})
    assert one.state == "accepted"


async def test_meal__free_portions_auto_accept_and_cancel_policy(
    ctx: NodeContext, alice: TestMember, bob: TestMember, clock: FakeClock
) -> None:
    view = await listings.create_listing(ctx, alice.row, meal(auto_accept=True,
                                                              cancel_notice_hours=24))
    deal = await deals.book(ctx, bob.row, view.row.id, {"quantity": 3})
    assert (deal.state, deal.amount) == ("accepted", 0)
    clock.advance(days=2, hours=8)  # 2026-11-28T18:00: one hour before pickup
    with pytest.raises(ConflictError, match="too late to cancel"):
        await deals.act(ctx, bob.row, deal.id, "cancel")
    assert (await deals.get_deal(ctx, bob.row, deal.id)).state == "accepted"


async def test_meal__cancel_in_time_frees_portions_and_refunds(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, meal(auto_accept=True) | {
        "price": {"mode": "amount", "amount": "3.00"}})
    deal = await deals.book(ctx, bob.row, view.row.id, {"quantity": 4})
    assert await balance(ctx, "bob") == (-1200, 0)
    await deals.act(ctx, bob.row, deal.id, "cancel")
    assert await balance(ctx, "bob") == (0, 0)
    carol = await make_member("carol")
    assert (await deals.book(ctx, carol.row, view.row.id, {"quantity": 4})).state == "accepted"


async def test_loan__deposit_held_then_released_on_return(
    ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, loan())
    deal = await deals.book(ctx, bob.row, view.row.id, {
        "from": "2026-11-27T09:00:00Z", "to": "2026-11-29T09:00:00Z"})
    assert (deal.amount, deal.deposit) == (400, 3000)
    await deals.act(ctx, alice.row, deal.id, "accept")
    assert await balance(ctx, "bob") == (0, 3400)  # price and deposit held, nothing paid
    await deals.act(ctx, alice.row, deal.id, "start")
    with pytest.raises(PermissionDeniedError):
        await deals.act(ctx, bob.row, deal.id, "complete")
    await deals.act(ctx, alice.row, deal.id, "complete")
    assert await balance(ctx, "bob") == (-400, 0)
    assert await balance(ctx, "alice") == (400, 0)


async def test_loan__deposit_claimed_with_reason(
    ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, loan())
    deal = await deals.book(ctx, bob.row, view.row.id, {
        "from": "2026-11-27T09:00:00Z", "to": "2026-11-27T18:00:00Z"})
    await deals.act(ctx, alice.row, deal.id, "accept")
    with pytest.raises(ValidationError):
        await deals.act(ctx, alice.row, deal.id, "dispute")
    claimed = await deals.act(ctx, alice.row, deal.id, "dispute", "jamais rendue")
    assert (claimed.state, claimed.reason) == ("disputed", "jamais rendue")
    assert await balance(ctx, "bob") == (-3200, 0)


async def test_loan__overlapping_slots_refused(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, loan(auto_accept=True))
    await deals.book(ctx, bob.row, view.row.id, {"from": "2026-11-27T09:00:00Z",
                                                 "to": "2026-11-29T09:00:00Z"})
    carol = await make_member("carol")
    with pytest.raises(CapacityError, match="already lent"):
        await deals.book(ctx, carol.row, view.row.id, {"from": "2026-11-28T09:00:00Z",
                                                       "to": "2026-11-30T09:00:00Z"})
    after = await deals.book(ctx, carol.row, view.row.id, {"from": "2026-11-29T09:00:00Z",
                                                           "to": "2026-11-30T09:00:00Z"})
    assert after.state == "accepted"  # touching slots do not overlap


@pytest.mark.parametrize(("start", "end", "field"), [
    ("2026-11-25T09:00:00Z", "2026-11-27T09:00:00Z", "from"),  # past
    ("2026-11-28T09:00:00Z", "2026-11-27T09:00:00Z", "to"),  # inverted
])
async def test_loan__past_or_inverted_slot_refused(
    ctx: NodeContext, alice: TestMember, bob: TestMember, start: str, end: str, field: str
) -> None:
    view = await listings.create_listing(ctx, alice.row, loan())
    with pytest.raises(ValidationError) as caught:
        await deals.book(ctx, bob.row, view.row.id, {"from": start, "to": end})
    assert field in caught.value.fields
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_loan__deposit_beyond_limit_refused(
    ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    await ledger.set_limits(ctx, alice.row, "bob", min_balance="-10", max_balance=None)
    view = await listings.create_listing(ctx, alice.row, loan())
    deal = await deals.book(ctx, bob.row, view.row.id, {"from": "2026-11-27T09:00:00Z",
                                                        "to": "2026-11-27T18:00:00Z"})
    with pytest.raises(LimitExceededError):
        await deals.act(ctx, alice.row, deal.id, "accept")
    assert (await deals.get_deal(ctx, bob.row, deal.id)).state == "requested"
    assert await balance(ctx, "bob") == (0, 0)


async def test_group_buy__threshold_reached_commits_every_pledge(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember,
    clock: FakeClock,
) -> None:
    view = await listings.create_listing(ctx, alice.row, group_buy())
    carol = await make_member("carol")
    one = await deals.book(ctx, bob.row, view.row.id, {"quantity": "25"})
    two = await deals.book(ctx, carol.row, view.row.id, {"quantity": "15.5"})
    assert await balance(ctx, "bob") == (0, 3750)  # held, not paid
    with pytest.raises(ConflictError):
        await deals.act(ctx, alice.row, one.id, "accept")
    progress = await deals.progress(ctx, view.row.id)
    assert (progress.pledged, progress.threshold, progress.state) == (40500, 40000, "open")
    clock.advance(days=5)
    assert await deals.run_due(ctx) == 2
    assert (await deals.get_deal(ctx, bob.row, one.id)).state == "accepted"
    assert (await deals.get_deal(ctx, carol.row, two.id)).state == "accepted"
    assert await balance(ctx, "bob") == (-3750, 0)
    assert await balance(ctx, "carol") == (-2325, 0)
    assert await balance(ctx, "alice") == (6075, 0)


async def test_group_buy__threshold_missed_releases_every_hold(
    ctx: NodeContext, alice: TestMember, bob: TestMember, clock: FakeClock
) -> None:
    view = await listings.create_listing(ctx, alice.row, group_buy())
    pledge = await deals.book(ctx, bob.row, view.row.id, {"quantity": "10"})
    assert await balance(ctx, "bob") == (0, 1500)
    clock.advance(days=5)
    await deals.run_due(ctx)
    assert (await deals.get_deal(ctx, bob.row, pledge.id)).state == "declined"
    assert await balance(ctx, "bob") == (0, 0)
    assert await balance(ctx, "alice") == (0, 0)


async def test_hostile__accepting_on_someone_elses_behalf(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing())
    deal = await deals.book(ctx, bob.row, view.row.id, {"quantity": 1})
    with pytest.raises(NotYourMoveError):
        await deals.act(ctx, bob.row, deal.id, "accept")
    mallory = await make_member("mallory")
    with pytest.raises(Exception, match="no deal"):
        await deals.act(ctx, mallory.row, deal.id, "accept")
    assert (await deals.get_deal(ctx, bob.row, deal.id)).state == "requested"
    assert await balance(ctx, "bob") == (0, 0)


async def test_hostile__paying_less_than_the_price(
    ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing())
    with pytest.raises(ValidationError, match=r"price of this booking is 9\.00"):
        await deals.book(ctx, bob.row, view.row.id, {"quantity": 2, "amount": "4.50"})
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_feedback__after_completion_only_and_once(
    ctx: NodeContext, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, meal(auto_accept=True))
    deal = await deals.book(ctx, bob.row, view.row.id, {"quantity": 1})
    with pytest.raises(ConflictError):
        await deals.leave_feedback(ctx, bob.row, deal.id, {"rating": 5})
    await deals.act(ctx, alice.row, deal.id, "complete")
    await deals.leave_feedback(ctx, bob.row, deal.id, {"rating": 5, "comment": "Délicieux"})
    with pytest.raises(ConflictError):
        await deals.leave_feedback(ctx, bob.row, deal.id, {"rating": 1})
    carol = await make_member("carol")
    with pytest.raises(Exception, match="no deal"):
        await deals.leave_feedback(ctx, carol.row, deal.id, {"rating": 1})
    received = await deals.feedback_about(ctx, "alice")
    assert [(f.rating, f.comment) for f in received] == [(5, "Délicieux")]


async def test_concurrency__fifty_requests_for_the_last_two_seats(
    client: TestClient, ctx: NodeContext, alice: TestMember, make_member: MakeMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        details={**ride_listing()["details"], "auto_accept": True}))  # type: ignore[dict-item]
    first = await make_member("first")
    await deals.book(ctx, first.row, view.row.id, {"quantity": 1})
    riders = [await make_member(f"rider{i}") for i in range(50)]
    responses = await asyncio.gather(*(
        client.post(f"/api/v1/listings/{view.row.id}/deals", json={"quantity": 1},
                    headers=rider.headers) for rider in riders))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 2
    assert statuses.count(409) == 48
    assert await q.taken(ctx.store.reader, view.row.id, ("accepted",)) == 3
    assert (await ledger.verify_journal(ctx)).ok
