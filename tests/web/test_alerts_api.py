"""Saved searches over the JSON API on one real node: create, list, delete, every bad input
refused with its field (nothing stored), matches as ``match`` notifications carrying the
listing, at most once per (alert, listing), accent-insensitive, and swaps both ways."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.federation.mail import MailWorker
from meshnode.services import listings
from meshnode.services.context import NodeContext
from tests.conftest import TestMember
from tests.web import test_email as mail
from tests.web.test_email import Inbox, _body, _verified

# The e-mail tests' fixtures (a node with [email] and a real SMTP server on 127.0.0.1).
mail_client, mail_ctx, make_mail_member = mail.mail_client, mail.mail_ctx, mail.make_mail_member
people, smtp, smtp_port, worker = mail.people, mail.smtp, mail.smtp_port, mail.worker

LADDER = {"kind": "offer", "category": "lend", "title": "Échelle alu 3 m",
          "description": "Prête le week-end.", "price": {"mode": "free"},
          "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357}, "details": {}}


async def _alerts(client: TestClient, member: TestMember) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/alerts", headers=member.headers)
    assert response.status == 200
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def _matches(client: TestClient, member: TestMember) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/notifications", headers=member.headers)
    return [i for i in (await response.json())["items"] if i["type"] == "match"]


async def _count(ctx: NodeContext, table: str) -> int:
    async with ctx.store.reader.execute(f"SELECT count(*) FROM {table}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_alerts_api__create_list_delete_and_another_members_alert_is_404(
    client: TestClient, alice: TestMember, bob: TestMember,
) -> None:
    # When bob saves a search
    response = await client.post("/api/v1/alerts", headers=bob.headers, json={
        "q": "échelle", "kind": "offer", "category": "lend", "near": "45.76,4.83",
        "radius_km": 5, "max_price": "10.00"})
    # Then it comes back as created, and is listed for him only
    assert response.status == 201
    alert = await response.json()
    assert {k: alert[k] for k in ("q", "kind", "category", "near", "radius_km", "max_price")} == {
        "q": "échelle", "kind": "offer", "category": "lend", "near": "45.76000,4.83000",
        "radius_km": 5.0, "max_price": "10.00"}
    assert [a["id"] for a in await _alerts(client, bob)] == [alert["id"]]
    assert await _alerts(client, alice) == []
    # alice cannot delete it (404, not 403: she does not learn it exists)
    stolen = await client.delete(f"/api/v1/alerts/{alert['id']}", headers=alice.headers)
    assert stolen.status == 404
    assert len(await _alerts(client, bob)) == 1
    gone = await client.delete(f"/api/v1/alerts/{alert['id']}", headers=bob.headers)
    assert gone.status == 204
    assert await _alerts(client, bob) == []


@pytest.mark.parametrize(("body", "field"), [
    ({"q": "vélo", "kind": "gift"}, "kind"),
    ({"q": "vélo", "radius_km": 201, "near": "45.76,4.83"}, "radius_km"),
    ({"q": "vélo", "radius_km": -1, "near": "45.76,4.83"}, "radius_km"),
    ({"q": "vélo", "radius_km": "loin", "near": "45.76,4.83"}, "radius_km"),
    ({"q": "vélo", "max_price": "-5"}, "max_price"),
    ({"q": "vélo", "max_price": "99999999999"}, "max_price"),
    ({"q": "vélo", "max_price": "1.234"}, "max_price"),
    ({"q": "x" * 201}, "q"),
    ({"q": 12}, "q"),
    ({"q": "vélo", "near": "là-bas"}, "near"),
    ({"q": "vélo", "near": "95,4.83"}, "near"),
    ({"q": "vélo", "colour": "red"}, "colour"),
    ({"q": ""}, "q"),
])
async def test_alerts_api__bad_field_is_refused_with_its_name_and_nothing_is_stored(
    client: TestClient, ctx: NodeContext, bob: TestMember, body: dict[str, Any], field: str,
) -> None:
    response = await client.post("/api/v1/alerts", headers=bob.headers, json=body)
    assert 400 <= response.status < 500
    error = await response.json()
    assert field in error["fields"], error
    assert await _count(ctx, "alerts") == 0
    assert await _count(ctx, "alert_terms") == 0


async def test_alerts_api__unknown_category_is_refused(
    client: TestClient, ctx: NodeContext, bob: TestMember,
) -> None:
    response = await client.post("/api/v1/alerts", headers=bob.headers,
                                 json={"q": "vélo", "category": "weapons"})
    assert response.status == 422
    assert "category" in (await response.json())["fields"]
    assert await _count(ctx, "alerts") == 0


async def test_alerts_api__the_fifty_first_alert_is_refused(
    client: TestClient, ctx: NodeContext, bob: TestMember,
) -> None:
    for i in range(50):
        ok = await client.post("/api/v1/alerts", headers=bob.headers, json={"q": f"objet{i}"})
        assert ok.status == 201
    refused = await client.post("/api/v1/alerts", headers=bob.headers, json={"q": "encore"})
    assert refused.status == 422
    assert "alerts" in (await refused.json())["fields"]
    assert await _count(ctx, "alerts") == 50


async def test_alerts_api__a_matching_offer_notifies_once_with_the_listing_accents_ignored(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given bob saved "ECHELLE" without accent, free things only
    saved = await client.post("/api/v1/alerts", headers=bob.headers,
                              json={"q": "ECHELLE", "max_price": "0"})
    assert saved.status == 201
    # When alice lends an "Échelle", then edits it
    view = await listings.create_listing(ctx, alice.row, LADDER)
    await listings.update_listing(ctx, alice.row, view.row.id, {"title": "Échelle alu 3,5 m"})
    # Then bob has exactly one match, with the listing; alice (the author) none
    matches = await _matches(client, bob)
    assert len(matches) == 1
    assert matches[0]["listing"] == {
        "id": view.row.id, "title": "Échelle alu 3,5 m", "url": view.row.object_id,
        "origin": ctx.config.base_url, "kind": "offer", "category": "lend"}
    assert matches[0]["url"].endswith(f"/listings/{view.row.id}")
    assert await _matches(client, alice) == []


async def test_alerts_api__price_place_and_category_filters_hold(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    for body in ({"q": "échelle", "category": "give"},
                 {"q": "échelle", "near": "48.85,2.35", "radius_km": 20},
                 {"q": "échelle", "kind": "request"}):
        assert (await client.post("/api/v1/alerts", headers=bob.headers, json=body)).status \
            == 201
    await listings.create_listing(ctx, alice.row, {**LADDER, "price": {
        "mode": "amount", "amount": "5.00", "period": "day"}})
    cheap = await client.post("/api/v1/alerts", headers=bob.headers,
                              json={"q": "échelle", "max_price": "4.99"})
    assert cheap.status == 201
    await listings.create_listing(ctx, alice.row, {**LADDER, "title": "Grande échelle",
                                  "price": {"mode": "amount", "amount": "5.00"}})
    assert await _matches(client, bob) == []


async def test_alerts_api__a_request_is_told_of_offers_and_the_offer_sees_it_as_a_match(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given bob asks "Cherche une échelle"
    wanted = await listings.create_listing(ctx, bob.row, {
        **LADDER, "kind": "request", "title": "Cherche une échelle", "description": ""})
    # When alice lends a ladder
    offer = await listings.create_listing(ctx, alice.row, LADDER)
    # Then bob is told, and alice sees bob's request among her offer's matches
    assert [m["listing"]["id"] for m in await _matches(client, bob)] == [offer.row.id]
    response = await client.get(f"/api/v1/listings/{offer.row.id}/matches",
                                headers=alice.headers)
    assert response.status == 200
    assert [i["id"] for i in (await response.json())["items"]] == [wanted.row.id]
    back = await client.get(f"/api/v1/listings/{wanted.row.id}/matches", headers=bob.headers)
    assert [i["id"] for i in (await back.json())["items"]] == [offer.row.id]


async def test_alerts_api__swaps_match_both_ways(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given alice swaps her drill against a bike
    drill = await listings.create_listing(ctx, alice.row, {
        **LADDER, "category": "swap", "title": "Perceuse Bosch", "price": {"mode": "swap"},
        "details": {"wanted": "un vélo"}})
    # When bob offers a bike in swap against a drill
    bike = await listings.create_listing(ctx, bob.row, {
        **LADDER, "category": "swap", "title": "Vélo de ville", "price": {"mode": "swap"},
        "details": {"wanted": "perceuse ou scie"}})
    # Then alice hears of bob's bike (her wanted against his offer) and bob of alice's
    # drill (his wanted against her offer), once each
    assert [m["listing"]["id"] for m in await _matches(client, alice)] == [bike.row.id]
    assert [m["listing"]["id"] for m in await _matches(client, bob)] == [drill.row.id]


async def test_alerts_api__a_match_is_mailed_when_the_member_chose_e_mail(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    # Given bob verified his address and saved "échelle"; alice verified none
    alice, bob = people
    await _verified(mail_client, worker, smtp, bob, "bob@canal.example")
    saved = await mail_client.post("/api/v1/alerts", headers=bob.headers,
                                   json={"q": "échelle"})
    assert saved.status == 201
    before = len(smtp.messages)
    # When alice lends a ladder and the mail worker runs
    view = await listings.create_listing(mail_ctx, alice.row, LADDER)
    await worker.step()
    # Then bob gets one mail about it, linking to the listing
    assert len(smtp.messages) == before + 1
    mail = smtp.messages[-1]
    assert mail["To"] == "bob@canal.example"
    assert f"/listings/{view.row.id}" in _body(mail)
    assert "Échelle alu 3 m" in _body(mail)


async def test_alerts_api__only_the_author_renews_and_a_renewal_is_a_new_signed_version(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    view = await listings.create_listing(ctx, alice.row, LADDER)
    # bob cannot renew alice's listing: 403, nothing changed
    refused = await client.post(f"/api/v1/listings/{view.row.id}/renew", headers=bob.headers)
    assert refused.status == 403
    assert (await listings.get_listing(ctx, view.row.id)).row.version == 1
    # alice can: a new version whose signed endTime is 60 days from now
    renewed = await client.post(f"/api/v1/listings/{view.row.id}/renew",
                                headers=alice.headers)
    assert renewed.status == 200
    body = await renewed.json()
    assert body["version"] == 2
    assert body["expires_at"] == body["signed_object"]["endTime"] == "2027-01-25T10:00:00Z"
    # a withdrawn listing cannot come back this way
    await listings.withdraw_listing(ctx, alice.row, view.row.id)
    gone = await client.post(f"/api/v1/listings/{view.row.id}/renew", headers=alice.headers)
    assert gone.status == 409
