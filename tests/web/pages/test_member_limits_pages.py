"""Per-member hourly allowances through the page forms: a translated 429 page, nothing stored.

This module's node allows 2 listings, 2 messages and 2 payment requests per member per hour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from meshnode.config import Config, LimitsConfig
from meshnode.services import ledger
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_q
from meshnode.store import messages as message_q
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FR = {**HTML, "Accept-Language": "fr"}
RIDE_FORM = {
    "category": "ride", "kind": "offer", "title": "Covoiturage vers Lyon",
    "price.mode": "free", "details.from": "Canal", "details.to": "Lyon",
    "details.departure": "2026-12-05T09:00", "details.seats": "3",
}


@pytest.fixture
def node_config(tmp_path: Path) -> Config:
    limits = LimitsConfig(listings_per_hour=2, messages_per_hour=2, payment_requests_per_hour=2)
    return base.make_config(tmp_path / "node", limits=limits)


async def _post_form(client: TestClient, path: str, data: dict[str, str],
                     token_from: str) -> tuple[int, str, str | None]:
    token = await csrf_of(client, token_from)
    response = await client.post(path, data={**data, "csrf": token}, headers=FR,
                                 allow_redirects=False)
    return response.status, await response.text(), response.headers.get("Retry-After")


async def test_post_form__third_listing_in_an_hour_is_a_french_429_page_and_not_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    for _ in range(2):
        status, _, _ = await _post_form(client, "/post", RIDE_FORM, "/post?category=ride")
        assert status == 303
    status, page, retry_after = await _post_form(client, "/post", RIDE_FORM,
                                                 "/post?category=ride")
    assert status == 429
    assert retry_after == "3600"
    assert "Un peu de patience" in page
    assert "au plus 2 nouvelles annonces par heure\u202f: réessayez dans 60 min" in page
    assert await listing_q.count_listings(ctx.store.reader) == 2


async def test_interested_form__third_message_in_an_hour_is_429_and_not_delivered(
    client: TestClient, ctx: NodeContext, clock: base.FakeClock, alice: base.TestMember,
    bob: base.TestMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    path = f"/listings/{listing_id}/interested"
    for body in ("Une place ?", "Toujours libre ?"):
        status, _, _ = await _post_form(client, path, {"body": body}, f"/listings/{listing_id}")
        assert status == 303
        clock.advance(minutes=10)
    status, page, retry_after = await _post_form(client, path, {"body": "Allô ?"},
                                                 f"/listings/{listing_id}")
    assert status == 429
    assert retry_after == str(40 * 60)
    assert "au plus 2 messages par heure\u202f: réessayez dans 40 min" in page
    assert await message_q.unread_count(ctx.store.reader, alice.row.id) == 2


async def test_request_form__third_payment_request_in_an_hour_is_429_and_not_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    form = {"payer": "alice", "amount": "3", "memo": "pain", "expires_in_days": "7"}
    for _ in range(2):
        status, _, _ = await _post_form(client, "/wallet/request", form, "/wallet/request")
        assert status == 303
    status, page, retry_after = await _post_form(client, "/wallet/request", form,
                                                 "/wallet/request")
    assert status == 429
    assert retry_after == "3600"
    assert "au plus 2 demandes de paiement par heure" in page
    assert len(await ledger.list_requests(ctx, bob.row, status=None)) == 2
