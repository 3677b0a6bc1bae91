"""The notification centre through the JSON API: each event tells the right member, on the
event's own transaction; hostile or wrong input is refused with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import deals, listings, notifications
from meshnode.services.context import NodeContext
from tests.conftest import FakeClock, MakeMember, TestMember, ride_listing
from tests.services.test_deals import group_buy


async def _items(client: TestClient, who: TestMember, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/v1/notifications{query}", headers=who.headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _count(ctx: NodeContext) -> int:
    async with ctx.store.reader.execute("SELECT count(*) FROM notifications") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _ride(ctx: NodeContext, author: TestMember) -> str:
    view = await listings.create_listing(ctx, author.row, ride_listing())
    return view.row.id


async def test_notifications__booking_request_tells_the_author_and_acceptance_the_booker(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given alice's ride
    listing_id = await _ride(ctx, alice)
    # When bob books a seat
    booked = await client.post(f"/api/v1/listings/{listing_id}/deals",
                               json={"quantity": 1, "amount": "4.50"}, headers=bob.headers)
    deal = await booked.json()
    # Then alice has one unread booking_requested pointing at the deal, bob nothing
    mine = await _items(client, alice)
    assert mine["unread"] == 1
    item = mine["items"][0]
    assert (item["type"], item["ref"], item["read"]) == ("booking_requested", deal["id"], False)
    assert item["url"].endswith(f"/deals/{deal['id']}")
    assert "Covoiturage" in item["detail"]
    assert (await _items(client, bob))["items"] == []
    # When alice accepts: bob is told, and alice is told the payment arrived
    await client.post(f"/api/v1/deals/{deal['id']}/accept", headers=alice.headers)
    assert [i["type"] for i in (await _items(client, bob))["items"]] == ["booking_accepted"]
    assert [i["type"] for i in (await _items(client, alice))["items"]] == [
        "payment_received", "booking_requested"]


async def test_notifications__cancel_tells_the_other_party_and_decline_the_booker(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    listing_id = await _ride(ctx, alice)
    one = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    two = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await deals.act(ctx, bob.row, one.id, "cancel")
    await deals.act(ctx, alice.row, two.id, "decline", "complet")
    assert [i["type"] for i in (await _items(client, alice))["items"]] == [
        "booking_cancelled", "booking_requested", "booking_requested"]
    declined = (await _items(client, bob))["items"]
    assert [i["type"] for i in declined] == ["booking_declined"]
    assert "complet" in declined[0]["detail"]


async def test_notifications__payment_and_bill_to_approve_reach_the_right_member(
    client: TestClient, alice: TestMember, bob: TestMember,
) -> None:
    paid = await client.post("/api/v1/transfers", headers=alice.headers,
                             json={"payee": "bob", "amount": "3.25", "memo": "confiture"})
    assert paid.status == 201
    billed = await client.post("/api/v1/payment-requests", headers=bob.headers,
                               json={"payer": "alice", "amount": "2", "memo": "pain"})
    assert billed.status == 201
    received = (await _items(client, bob))["items"]
    assert [(i["type"], i["amount"], i["detail"]) for i in received] == [
        ("payment_received", "3.25", "confiture")]
    asked = (await _items(client, alice))["items"]
    assert [(i["type"], i["ref"]) for i in asked] == [
        ("payment_request", (await billed.json())["id"])]


async def test_notifications__refused_payment_leaves_no_item(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given alice's lower limit of -300, When she tries to pay 500, Then 4xx and no item
    refused = await client.post("/api/v1/transfers", headers=alice.headers,
                                json={"payee": "bob", "amount": "500"})
    assert refused.status in (409, 422)
    assert await _count(ctx) == 0


async def test_notifications__message_tells_the_recipient(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    from meshnode.services import messages
    listing_id = await _ride(ctx, alice)
    await messages.send_message(ctx, bob.row, listing_id=listing_id,
                                recipient_username="alice", body="Une place samedi ?")
    item = (await _items(client, alice))["items"][0]
    assert item["type"] == "message"
    assert item["url"].endswith(f"/messages/{listing_id}/bob")
    assert item["detail"].endswith("Une place samedi ?")


async def test_notifications__group_buy_pledge_then_goal_reached_at_the_deadline(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember, clock: FakeClock,
) -> None:
    view = await listings.create_listing(ctx, alice.row, group_buy())
    await deals.book(ctx, bob.row, view.row.id, {"quantity": "45"})
    clock.advance(days=5)
    await deals.run_due(ctx)
    assert [i["type"] for i in (await _items(client, bob))["items"]] == ["group_buy_reached"]
    assert [i["type"] for i in (await _items(client, alice))["items"]] == [
        "group_buy_reached", "payment_received", "pledge"]


async def test_notifications__group_buy_missing_its_goal_tells_each_pledger_and_author_once(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember, clock: FakeClock,
    make_member: MakeMember,
) -> None:
    view = await listings.create_listing(ctx, alice.row, group_buy())
    carol = await make_member("carol")
    await deals.book(ctx, bob.row, view.row.id, {"quantity": "10"})
    await deals.book(ctx, carol.row, view.row.id, {"quantity": "5"})
    clock.advance(days=5)
    await deals.run_due(ctx)
    assert [i["type"] for i in (await _items(client, bob))["items"]] == ["group_buy_failed"]
    assert [i["type"] for i in (await _items(client, carol))["items"]] == ["group_buy_failed"]
    author = (await _items(client, alice))["items"]
    assert [i["type"] for i in author] == ["group_buy_failed", "pledge", "pledge"]
    assert author[0]["url"].endswith(f"/listings/{view.row.id}")


async def test_notifications__report_and_expiring_listing(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember, clock: FakeClock,
) -> None:
    from meshnode.services import moderation
    view = await listings.create_listing(  # alice is the admin
        ctx, bob.row, ride_listing(expires_at="2026-12-01T10:00:00Z"))
    listing_id = view.row.id
    await moderation.report_listing(ctx, bob.row, listing_id, "arnaque évidente")
    assert [i["type"] for i in (await _items(client, alice))["items"]] == ["report_received"]
    assert (await _items(client, bob))["items"] == []
    # the ride expires on 1 December; three days before nothing, one day before bob is warned
    clock.advance(days=2)
    assert await notifications.warn_expiring(ctx) == 0
    clock.advance(days=2)
    assert await notifications.warn_expiring(ctx) == 1
    assert await notifications.warn_expiring(ctx) == 0
    assert [i["type"] for i in (await _items(client, bob))["items"]] == ["listing_expiring"]


async def test_notifications__mark_read_some_then_all_and_never_another_members(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    listing_id = await _ride(ctx, alice)
    for _ in range(3):
        await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    ids = [i["id"] for i in (await _items(client, alice))["items"]]
    # bob cannot mark alice's items read
    stolen = await client.post("/api/v1/notifications/read", json={"ids": ids},
                               headers=bob.headers)
    assert (await stolen.json())["marked"] == 0
    assert (await _items(client, alice))["unread"] == 3
    one = await client.post("/api/v1/notifications/read", json={"ids": ids[:1]},
                            headers=alice.headers)
    assert (await one.json()) == {"marked": 1, "unread": 2}
    unread = await _items(client, alice, "?unread=1")
    assert [i["id"] for i in unread["items"]] == ids[1:]
    everything = await client.post("/api/v1/notifications/read", headers=alice.headers)
    assert (await everything.json()) == {"marked": 2, "unread": 0}


async def test_notifications__paging_with_before_and_limit(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    listing_id = await _ride(ctx, alice)
    for _ in range(3):
        await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    first = await _items(client, alice, "?limit=2")
    assert len(first["items"]) == 2
    rest = await _items(client, alice, f"?limit=2&before={first['next']}")
    assert len(rest["items"]) == 1
    assert rest["next"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"ids": "all"}, "ids"),
    ({"ids": [1, "2"]}, "ids"),
    ({"ids": [True]}, "ids"),
    ({"ids": [-1]}, "ids"),
    ({"ids": list(range(1, 502))}, "ids"),
    ({"everything": True}, "everything"),
    ([1, 2], ""),
])
async def test_notifications__bad_mark_read_body_is_422_and_nothing_is_marked(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    body: object, field: str,
) -> None:
    listing_id = await _ride(ctx, alice)
    await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    response = await client.post("/api/v1/notifications/read", json=body, headers=alice.headers)
    assert response.status == 422
    error = await response.json()
    assert set(error) == {"error", "message", "fields"}
    assert field in error["fields"]
    assert (await _items(client, alice))["unread"] == 1


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=x", "?before=-3",
                                   "?before=1e9", "?unread=maybe", "?limit=²"])
async def test_notifications__bad_query_is_422(
    client: TestClient, alice: TestMember, query: str,
) -> None:
    response = await client.get(f"/api/v1/notifications{query}", headers=alice.headers)
    assert response.status == 422
    assert set(await response.json()) == {"error", "message", "fields"}


async def test_notifications__anonymous_is_401(client: TestClient) -> None:
    assert (await client.get("/api/v1/notifications")).status == 401
    assert (await client.post("/api/v1/notifications/read")).status == 401


async def test_preferences__a_muted_type_is_not_recorded_and_others_still_are(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    wanted = [t for t in notifications.TYPES if t != "booking_requested"]
    saved = await client.put("/api/v1/notifications/preferences", json={"types": wanted},
                             headers=alice.headers)
    assert saved.status == 200
    assert "booking_requested" not in (await saved.json())["types"]
    listing_id = await _ride(ctx, alice)
    await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    assert (await _items(client, alice))["items"] == []
    await client.post("/api/v1/transfers", headers=bob.headers,
                      json={"payee": "alice", "amount": "1"})
    assert [i["type"] for i in (await _items(client, alice))["items"]] == ["payment_received"]
    shown = await client.get("/api/v1/notifications/preferences", headers=alice.headers)
    assert sorted((await shown.json())["types"]) == sorted(wanted)


@pytest.mark.parametrize("body", [{"types": ["booking_requested", "rm -rf"]},
                                  {"types": "message"}, {"types": [1]}, {"kinds": []}])
async def test_preferences__unknown_types_are_422_and_nothing_changes(
    client: TestClient, alice: TestMember, body: object,
) -> None:
    response = await client.put("/api/v1/notifications/preferences", json=body,
                                headers=alice.headers)
    assert response.status == 422
    shown = await client.get("/api/v1/notifications/preferences", headers=alice.headers)
    assert sorted((await shown.json())["types"]) == sorted(notifications.TYPES)


async def test_wallet__each_hold_is_listed_with_its_deal_or_bill_and_expiry(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    # Given a pledge of bob on alice's group buy and a bill bob sent carol
    view = await listings.create_listing(ctx, alice.row, group_buy())
    pledge = await deals.book(ctx, bob.row, view.row.id, {"quantity": "10"})
    await make_member("carol")
    billed = await client.post("/api/v1/payment-requests", headers=bob.headers,
                               json={"payer": "carol", "amount": "7", "memo": "soupe"})
    bill = await billed.json()
    # When bob reads his wallet
    wallet = await (await client.get("/api/v1/wallet", headers=bob.headers)).json()
    # Then each hold says what it is for, and they add up to the held totals
    holds = sorted(wallet["holds"], key=lambda h: h["kind"])
    assert holds == [
        {"kind": "deal", "direction": "debit", "amount": "15.00",
         "until": pledge.expires_at, "label": "Commande groupée de pommes",
         "deal": pledge.id, "request": None, "transfer": None},
        {"kind": "request", "direction": "credit", "amount": "7.00",
         "until": bill["expires_at"], "label": "soupe",
         "deal": None, "request": bill["id"], "transfer": None},
    ]
    assert (wallet["held"]["debit"], wallet["held"]["credit"]) == ("15.00", "7.00")
