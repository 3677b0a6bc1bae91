"""Issue 12, "Bad input must never be a 500": each example from the issue, as a named test.

Each one answered aiohttp's plain-English 500 before ``protocol/parsing.py``. Now: a clear
4xx naming the field (JSON ``{"error","message","fields"}`` for the API, a translated page
for browsers), and nothing stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from tests.conftest import TestMember, ride_listing
from tests.web.pages.conftest import HTML, login, make_ride, post_form

HUGE_INTEGER = "1" * 4400  # CPython's int() refuses more than 4,300 digits with ValueError


async def api_error(response: Any, status: int) -> dict[str, Any]:
    """Assert the documented JSON error shape and return its body."""
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error", "message", "fields"}
    assert body["message"]
    return body


async def listings_stored(ctx: NodeContext) -> int:
    return await listing_store.count_listings(ctx.store.reader)


async def journal_size(ctx: NodeContext) -> int:
    async with ctx.store.reader.execute("SELECT COUNT(*) FROM ledger_journal") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("cursor", ["²", "١٢", "9" * 20, "1" * 4400, "-1"])
async def test_transactions__unicode_digit_or_20_digit_cursor_is_422(
    client: TestClient, alice: TestMember, cursor: str
) -> None:
    response = await client.get("/api/v1/transactions", params={"cursor": cursor},
                                headers=alice.headers)
    body = await api_error(response, 422)
    assert "cursor" in body["fields"]


@pytest.mark.parametrize("cursor", ["2026-11-26T10:00:00Z~²", "2026-11-26T10:00:00Z~" + "9" * 20,
                                    "0001-01-01T00:00:00+01:00~1", "9999-12-31T23:59:59-01:00~1"])
async def test_search__cursor_with_unicode_digit_20_digits_or_year_0001_is_422(
    client: TestClient, alice: TestMember, cursor: str
) -> None:
    response = await client.get("/api/v1/listings", params={"cursor": cursor},
                                headers=alice.headers)
    body = await api_error(response, 422)
    assert "cursor" in body["fields"]


@pytest.mark.parametrize("limit", ["²", "١٢", "9" * 20, "1e308"])
async def test_search_and_history__unicode_or_huge_limit_is_422(
    client: TestClient, alice: TestMember, limit: str
) -> None:
    for path in ("/api/v1/listings", "/api/v1/transactions"):
        response = await client.get(path, params={"limit": limit}, headers=alice.headers)
        body = await api_error(response, 422)
        assert "limit" in body["fields"]


@pytest.mark.parametrize(("name", "value"), [("radius_km", "²"), ("radius_km", "1e308"),
                                             ("near", "١٢,4"), ("near", "nan,nan")])
async def test_search__unicode_or_non_finite_coordinates_are_422(
    client: TestClient, alice: TestMember, name: str, value: str
) -> None:
    response = await client.get("/api/v1/listings", params={name: value}, headers=alice.headers)
    body = await api_error(response, 422)
    assert name in body["fields"]


@pytest.mark.parametrize("after", ["²", "9" * 20])
async def test_outbox__after_with_unicode_digit_or_20_digits_is_400(
    client: TestClient, alice: TestMember, after: str
) -> None:
    response = await client.get("/users/alice/outbox", params={"after": after})
    assert response.status == 400, await response.text()


@pytest.mark.parametrize("cursor", ["²", "9" * 20])
async def test_wallet_page__bad_cursor_is_a_translated_422_page(
    client: TestClient, alice: TestMember, cursor: str
) -> None:
    await login(client, "alice")
    response = await client.get("/wallet", params={"cursor": cursor},
                                headers={**HTML, "Accept-Language": "fr"})
    assert response.status == 422
    assert response.content_type == "text/html"
    text = await response.text()
    assert '<html lang="fr">' in text
    assert "cursor invalide" in text  # the parsing layer's message, translated


async def test_neighbour__unicode_digit_id_is_404(client: TestClient, alice: TestMember) -> None:
    for neighbour in ("²", "9" * 20):
        response = await client.post(f"/api/v1/neighbours/{neighbour}/block",
                                     headers=alice.headers)
        body = await api_error(response, 404)
        assert body["error"] == "not_found", body


async def test_create_listing__json_integer_over_4300_digits_is_400_and_stores_nothing(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    body = b'{"kind": "offer", "details": {"seats": ' + HUGE_INTEGER.encode() + b"}}"
    response = await client.post("/api/v1/listings", data=body, headers=alice.headers)
    assert (await api_error(response, 400))["error"] == "malformed_json"
    assert await listings_stored(ctx) == 0


async def test_inbox__json_integer_over_4300_digits_is_4xx_without_authentication(
    client: TestClient, ctx: NodeContext
) -> None:
    body = b'{"type": "Create", "n": ' + HUGE_INTEGER.encode() + b"}"
    for path in ("/inbox", "/users/alice/inbox", f"/groups/{ctx.config.handle}/inbox"):
        response = await client.post(path, data=body,
                                     headers={"Content-Type": "application/activity+json"})
        assert 400 <= response.status < 500, (path, response.status, await response.text())
    async with ctx.store.reader.execute("SELECT COUNT(*) FROM inbox_activities") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == 0


@pytest.mark.parametrize("departure", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                       "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
async def test_create_listing__departure_in_year_0001_or_9999_is_422(
    client: TestClient, alice: TestMember, ctx: NodeContext, departure: str
) -> None:
    listing = ride_listing()
    listing["details"] = {**listing["details"], "departure": departure}  # type: ignore[dict-item]
    response = await client.post("/api/v1/listings", json=listing, headers=alice.headers)
    body = await api_error(response, 422)
    assert "details.departure" in body["fields"]
    assert await listings_stored(ctx) == 0


@pytest.mark.parametrize("quantity", [1e308, "1e308", "10^30", 10**30, "²", "NaN", "Infinity"])
async def test_create_listing__absurd_produce_quantity_is_422(
    client: TestClient, alice: TestMember, ctx: NodeContext, quantity: object
) -> None:
    listing = ride_listing(category="produce", details={"quantity": quantity, "unit": "kg"})
    response = await client.post("/api/v1/listings", json=listing, headers=alice.headers)
    body = await api_error(response, 422)
    assert "details.quantity" in body["fields"]
    assert await listings_stored(ctx) == 0


@pytest.mark.parametrize("quantity", [1e308, "1e308", "10^30", 10**30, "²", "9" * 20])
async def test_book__absurd_quantity_is_422_and_books_nothing(
    client: TestClient, alice: TestMember, bob: TestMember, ctx: NodeContext, quantity: object
) -> None:
    listing_id = await make_ride(ctx, alice)
    response = await client.post(f"/api/v1/listings/{listing_id}/deals",
                                 json={"quantity": quantity}, headers=bob.headers)
    body = await api_error(response, 422)
    assert "quantity" in body["fields"]
    mine = await (await client.get("/api/v1/deals", headers=bob.headers)).json()
    assert mine["items"] == []


@pytest.mark.parametrize("rating", ["²", "9" * 20, 1e308])
async def test_feedback__unicode_or_huge_rating_is_422(
    client: TestClient, alice: TestMember, bob: TestMember, ctx: NodeContext, rating: object
) -> None:
    listing_id = await make_ride(ctx, alice)
    deal = await (await client.post(f"/api/v1/listings/{listing_id}/deals", json={"quantity": 1},
                                    headers=bob.headers)).json()
    for action in ("accept", "done"):
        moved = await client.post(f"/api/v1/deals/{deal['id']}/{action}", headers=alice.headers)
        assert moved.status == 200, await moved.text()
    response = await client.post(f"/api/v1/deals/{deal['id']}/feedback",
                                 json={"rating": rating}, headers=bob.headers)
    body = await api_error(response, 422)
    assert "rating" in body["fields"]
    about = await (await client.get("/api/v1/users/alice/feedback")).json()
    assert about["items"] == []


@pytest.mark.parametrize("days", [10**11, "²", -1, 0, 91])
async def test_payment_request__expires_in_days_out_of_range_is_422_and_writes_nothing(
    client: TestClient, alice: TestMember, bob: TestMember, ctx: NodeContext, days: object
) -> None:
    response = await client.post("/api/v1/payment-requests", headers=bob.headers,
                                 json={"payer": "alice", "amount": "1.00",
                                       "expires_in_days": days})
    body = await api_error(response, 422)
    assert "expires_in_days" in body["fields"]
    listed = await (await client.get("/api/v1/payment-requests", headers=bob.headers)).json()
    assert listed["items"] == []


@pytest.mark.parametrize(("path", "field"), [("title", "title"), ("details.from", "details.from")])
async def test_create_listing__lone_surrogate_is_422_on_the_field_not_401(
    client: TestClient, alice: TestMember, ctx: NodeContext, path: str, field: str
) -> None:
    listing = ride_listing()
    if path == "title":
        listing["title"] = "Vélo \ud800 à prêter"
    else:
        listing["details"] = {**listing["details"], "from": "\udfff"}  # type: ignore[dict-item]
    # json= would fail to encode; the escape "\ud800" is what a hostile client sends
    response = await client.post("/api/v1/listings", data=json.dumps(listing),
                                 headers=alice.headers)
    body = await api_error(response, 422)
    assert field in body["fields"]
    assert "WWW-Authenticate" not in response.headers
    assert await listings_stored(ctx) == 0


@pytest.mark.parametrize(("field", "value"), [
    ("details.seats", "²"), ("details.seats", "9" * 20),
    ("details.departure", "0001-01-01T00:00"), ("details.departure", "9999-12-31T23:59"),
    ("location.lat", "1e308"), ("expires_at", "0001-01-01"),
])
async def test_post_page__form_numbers_and_dates_are_a_translated_422(
    client: TestClient, alice: TestMember, ctx: NodeContext, field: str, value: str
) -> None:
    await login(client, "alice")
    form = {"category": "ride", "kind": "offer", "title": "Covoiturage vers Lyon",
            "price.mode": "free", "details.from": "Canal", "details.to": "Lyon",
            "details.departure": "2026-12-05T09:00", "details.seats": "3", field: value}
    response: Any = await post_form(client, "/post", form, token_from="/post")
    assert response.status == 422, await response.text()
    assert response.content_type == "text/html"
    assert await listings_stored(ctx) == 0


@pytest.mark.parametrize(("path", "field"), [("/admin/invitations", "days"),
                                             ("/admin/settings", "invite_days"),
                                             ("/wallet/request", "expires_in_days")])
async def test_admin_and_wallet_forms__unicode_digit_is_a_422_page(
    client: TestClient, alice: TestMember, bob: TestMember, ctx: NodeContext, path: str,
    field: str,
) -> None:
    await login(client, "alice")
    form = {field: "²", "payer": "bob", "amount": "1.00", "about": "", "note": ""}
    response: Any = await post_form(client, path, form, token_from=path)
    assert response.status == 422, await response.text()
    assert response.content_type == "text/html"
    assert await journal_size(ctx) == 0
