"""The author's node killed with SIGKILL while accepting deals, then restarted: deal states,
seat counts, deposit holds and payments agree with each other and with the booker's node.

Alpha (authors, local bookers) is a real ``meshnode run`` subprocess; beta (a remote
booker) runs in the test, as in test_crash_recovery.py.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshnode.config import Config
from meshnode.protocol.timefmt import format_utc
from meshnode.services import deals, ledger, listings, members
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests.conftest import FakeClock, make_config, ride_listing
from tests.federation.conftest import Node, bind_socket
from tests.federation.test_crash_recovery import _cli, _start, _until
from tests.nodeproc import wait_healthy

pytestmark = pytest.mark.slow
BOOKERS = 10
SEATS = 8
MAX_ACCEPTED = SEATS + 2 + 1  # loans 0 and 2 (loan 1 overlaps both), and beta's meal


def _port() -> int:
    probe = bind_socket()
    port = int(probe.getsockname()[1])
    probe.close()
    return port


async def _prepare_alpha(config: Config) -> str:
    """Members, a paid ride (8 seats, 10 requests) and a loan with a deposit; alice's token."""
    ctx = await NodeContext.open(config)
    try:
        alice = await members.add_member(ctx, username="alice", password=None, is_admin=True)
        soon = datetime.now(UTC) + timedelta(days=3)
        base = ride_listing()["details"]
        assert isinstance(base, dict)
        ride = await listings.create_listing(ctx, alice, ride_listing(details={
            **base, "seats": SEATS, "departure": format_utc(soon)}))
        lend = await listings.create_listing(ctx, alice, ride_listing(
            category="lend", title="Remorque de vélo", price={"mode": "free"},
            details={"deposit": "20.00"}))
        for n in range(BOOKERS):
            booker = await members.add_member(ctx, username=f"rider{n}", password=None)
            await deals.book(ctx, booker, ride.row.id, {"quantity": 1})
            if n < 3:
                start = soon + timedelta(days=n)
                await deals.book(ctx, booker, lend.row.id, {
                    "from": format_utc(start), "to": format_utc(start + timedelta(hours=30))})
        return (await members.create_token(ctx, "alice")).secret
    finally:
        await ctx.close()


async def _author_deals(session: aiohttp.ClientSession, url: str, token: str
                        ) -> list[dict[str, Any]]:
    async with session.get(f"{url}/api/v1/deals?role=author",
                           headers={"Authorization": f"Bearer {token}"}) as response:
        return list((await response.json())["items"])


async def _accept_all(session: aiohttp.ClientSession, url: str, token: str,
                      ids: list[str], first: asyncio.Event | None = None) -> None:
    async def one(deal_id: str) -> None:
        try:
            async with session.post(f"{url}/api/v1/deals/{deal_id}/accept",
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                await response.read()
                if first is not None and response.status == 200:
                    first.set()
        except aiohttp.ClientError:
            pass  # the node died under us
    await asyncio.gather(*(one(i) for i in ids))


async def _check_alpha(config: Config) -> dict[str, str]:
    """Every invariant on alpha's own database; returns agreement id → state."""
    ctx = await NodeContext.open(config)
    try:
        assert (await ledger.verify_journal(ctx)).ok
        rows = await q.list_for_member(ctx.store.reader, 1, "author", limit=1000)
        ride = [d for d in rows if d.category == "ride"]
        accepted = [d for d in ride if d.state == "accepted"]
        assert len(accepted) == SEATS  # every seat sold once, never more
        assert await q.taken(ctx.store.reader, ride[0].listing_id, ("accepted",)) == SEATS
        for deal in ride:
            events = await q.events(ctx.store.reader, deal.id)
            paid = [e["payments"] for e in events if e["payments"]]
            assert len(paid) == (deal.state == "accepted"), deal
            wallet = await ledger.wallet_summary(
                ctx, await members.get_member(ctx, deal.booker_uri.rsplit("/", 1)[-1]))
            loans = [d for d in rows if d.category == "lend" and d.booker_id == deal.booker_id
                     and d.state == "accepted"]
            assert wallet.position.balance == (-450 if deal.state == "accepted" else 0)
            assert wallet.position.held_debit == 2000 * len(loans)
        return {d.agreement_id: d.state for d in rows}
    finally:
        await ctx.close()


async def test_sigkill_during_acceptance__deals_seats_holds_payments_agree(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    port_b = _port()
    beta = Node(make_config(tmp_path / "beta", handle="beta",
                            public_url=f"http://127.0.0.1:{port_b}", port=port_b), clock)
    await beta.start()
    port_a = _port()
    alpha_cfg = make_config(tmp_path / "alpha", handle="alpha",
                            public_url=f"http://127.0.0.1:{port_a}", port=port_a)
    token = await _prepare_alpha(alpha_cfg)
    bob = await beta.member("bob")
    alpha = _start(alpha_cfg.data_dir)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        await wait_healthy(alpha_cfg.base_url)
        _cli("peer", "add", "--data-dir", str(alpha_cfg.data_dir), beta.url)
        async with aiohttp.ClientSession() as session:
            meal = ride_listing(category="meal", title="Gratin dauphinois",
                                price={"mode": "free"},
                                details={"portions": 4, "pickup_time": format_utc(
                                    datetime.now(UTC) + timedelta(days=2))})
            async with session.post(f"{alpha_cfg.base_url}/api/v1/listings", headers=headers,
                                    json=meal) as response:
                assert response.status == 201

            async def arrived() -> bool:
                return await beta.count("SELECT count(*) FROM listings WHERE is_local = 0"
                                        " AND category = 'meal'") == 1
            await _until(arrived, beta)
            theirs = await deals.book(beta.ctx, bob, await _remote_meal(beta), {"quantity": 2})

            async def offered() -> bool:
                return len(await _author_deals(session, alpha_cfg.base_url, token)) == \
                    BOOKERS + 4
            await _until(offered, beta)
            # When alice accepts everything at once and the node is killed meanwhile
            ids = [d["id"] for d in await _author_deals(session, alpha_cfg.base_url, token)]
            first = asyncio.Event()
            burst = asyncio.create_task(_accept_all(session, alpha_cfg.base_url, token, ids,
                                                    first))
            await asyncio.wait_for(first.wait(), 20)
            alpha.send_signal(signal.SIGKILL)
            alpha.wait(timeout=10)
            await burst
            before = await _accepted_count(alpha_cfg)
            assert 0 < before < MAX_ACCEPTED, "killed too late to prove anything"
            # Then after a restart she accepts what is left; refusals are clean 409s
            alpha = _start(alpha_cfg.data_dir)
            await wait_healthy(alpha_cfg.base_url)
            await _accept_all(session, alpha_cfg.base_url, token, ids)

            async def answered() -> bool:
                return (await deals.get_deal(beta.ctx, bob, theirs.id)).state == "accepted"
            await _until(answered, beta)
        alpha.send_signal(signal.SIGTERM)
        alpha.wait(timeout=20)
        states = await _check_alpha(alpha_cfg)
        assert states[theirs.agreement_id] == "accepted"
    finally:
        alpha.kill()
        alpha.wait(timeout=10)
        await beta.stop()


async def _accepted_count(config: Config) -> int:
    ctx = await NodeContext.open(config)
    try:
        rows = await q.list_for_member(ctx.store.reader, 1, "author", limit=1000)
        return sum(d.state == "accepted" for d in rows)
    finally:
        await ctx.close()


async def _remote_meal(beta: Node) -> str:
    async with beta.ctx.store.reader.execute(
            "SELECT id FROM listings WHERE is_local = 0 AND category = 'meal'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
