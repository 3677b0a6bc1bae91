"""Members' pages read through caches (issue 17): nothing stale, nothing of anyone else's.

Each cache entry lives while the database's ``data_version`` is unchanged, so a commit by this
node or by another process (a ``meshnode`` command beside it) shows on the very next page.
"""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from meshnode.config import Config
from meshnode.services import deals as deal_service
from meshnode.services import ledger, sessions
from meshnode.services import wallet as wallet_service
from meshnode.services.context import NodeContext
from tests import conftest as base
from tests.conftest import FakeClock
from tests.web.pages.conftest import HTML, login, make_ride

BALANCE = re.compile(r'<strong id="balance">([^<]+)</strong>')


async def _balance_shown(client: TestClient) -> str:
    response = await client.get("/wallet", headers=HTML)
    assert response.status == 200
    found = BALANCE.search(await response.text())
    assert found, "no balance on the wallet page"
    return found.group(1)


async def test_member_caches__wallet_shows_a_payment_on_the_next_page(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob's wallet seen (and kept) at 0
    await login(client, "bob")
    assert await _balance_shown(client) == "0.00\u00a0G"
    assert await _balance_shown(client) == "0.00\u00a0G"
    # When alice pays him through this node
    await ledger.pay(ctx, alice.row, payee="bob", amount="5")
    # Then his next page shows the new balance
    assert await _balance_shown(client) == "5.00\u00a0G"


async def test_member_caches__wallet_shows_a_payment_made_by_another_process(
    client: TestClient, node_config: Config, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob's wallet seen at 0
    await login(client, "bob")
    assert await _balance_shown(client) == "0.00\u00a0G"
    # When alice pays him through another connection to the database (a CLI command)
    other = await NodeContext.open(node_config)
    try:
        await ledger.pay(other, alice.row, payee="bob", amount="7")
    finally:
        await other.close()
    # Then his next page shows it, and the notification badge counts it
    assert await _balance_shown(client) == "7.00\u00a0G"
    page = await (await client.get("/", headers=HTML)).text()
    assert re.search(r'href="/notifications">Notifications <span class="badge"', page)


async def test_member_caches__one_members_wallet_is_never_anothers(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given alice paid bob, then nothing more was committed
    await ledger.pay(ctx, alice.row, payee="bob", amount="3")
    version = ctx.store.data_version()
    # When both wallets are read at that same database version
    mine = await wallet_service.wallet_view(ctx, alice.row, cursor=None)
    theirs = await wallet_service.wallet_view(ctx, bob.row, cursor=None)
    again = await wallet_service.wallet_view(ctx, alice.row, cursor=None)
    # Then each has their own balance, and alice's second read is a fresh one (the wallet
    # view is not kept: see services/wallet.wallet_view)
    assert ctx.store.data_version() == version
    assert (mine.wallet.position.balance, theirs.wallet.position.balance) == (-300, 300)
    assert again is not mine
    assert again.wallet.position.balance == -300


async def test_member_caches__session_revoked_by_another_process_is_refused(
    client: TestClient, node_config: Config, bob: base.TestMember
) -> None:
    # Given bob signed in and his wallet page served (his session kept in the cache)
    await login(client, "bob")
    assert (await client.get("/wallet", headers=HTML, allow_redirects=False)).status == 200
    # When every session of his is revoked through another connection
    other = await NodeContext.open(node_config)
    try:
        await sessions.revoke_all(other, bob.row.id)
    finally:
        await other.close()
    # Then his next page sends him to the login page
    response = await client.get("/wallet", headers=HTML, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login")


async def test_member_caches__expired_session_is_refused_without_any_commit(
    client: TestClient, clock: FakeClock, bob: base.TestMember
) -> None:
    # Given bob's session read and kept
    await login(client, "bob")
    assert (await client.get("/wallet", headers=HTML, allow_redirects=False)).status == 200
    # When its 30 days pass with nothing committed
    clock.advance(days=31)
    # Then it no longer opens a page
    response = await client.get("/wallet", headers=HTML, allow_redirects=False)
    assert response.status == 303


async def test_member_caches__a_new_booking_shows_in_my_bookings_at_once(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob's "my bookings" page seen with nothing booked
    listing_id = await make_ride(ctx, alice, title="Covoiturage pour Lyon")
    await login(client, "bob")
    first = await (await client.get("/my/deals", headers=HTML)).text()
    assert "Covoiturage pour Lyon" not in first
    # When he books alice's ride
    await deal_service.book(ctx, bob.row, listing_id, {})
    # Then the booking is on his next page
    page = await (await client.get("/my/deals", headers=HTML)).text()
    assert "Covoiturage pour Lyon" in page


async def test_member_caches__home_shows_a_new_listing_at_once(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob saw the home page
    await login(client, "bob")
    assert "Vélo cargo à prêter" not in await (await client.get("/", headers=HTML)).text()
    # When alice publishes a listing (same second on the clock)
    await make_ride(ctx, alice, title="Vélo cargo à prêter")
    # Then it is on his next home page
    assert "Vélo cargo à prêter" in await (await client.get("/", headers=HTML)).text()
