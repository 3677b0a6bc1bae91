"""Benchmark deals: bookings/s on ONE listing under contention, and cross-node latency.

Usage: ``python scripts/bench_deals.py [--clients 32] [--portions 1000] [--remote 50]``

1. Contention: a node serves a paid, auto-accepted meal of ``--portions`` portions over real
   HTTP on 127.0.0.1; ``--clients`` concurrent clients book one portion each, again and again,
   until refused. Prints accepted bookings per second, refusals, and DOUBLE BOOKINGS (accepted
   portions beyond the capacity, or accepted deals without exactly one payment): must be 0.
2. Cross-node: two peered nodes with their background workers; a member of beta books a free
   auto-accepted listing of alpha through beta's API; latency = until beta's deal is accepted
   (Offer → alpha inbox → Accept → beta inbox), p50/p95 over ``--remote`` bookings.
3. Paid cross-node: the same two nodes open a trust line (1 beta = 2 alpha); a member of beta
   books a PAID auto-accepted meal of alpha; latency = until the payment is confirmed on the
   author's node (Offer → Accept → beta's deal worker pays through the line → IouPrepare →
   IouCommit → signed payment notice → alpha checks the transfer), p50/p95; then both
   ledgers are verified and the line's two views compared.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.app import create_app  # noqa: E402
from meshnode.config import Config  # noqa: E402
from meshnode.federation import peering  # noqa: E402
from meshnode.protocol.timefmt import format_utc  # noqa: E402
from meshnode.services import deals, iou, ledger, listings, members  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
from meshnode.store import deals as q  # noqa: E402
from meshnode.store import iou as iq  # noqa: E402
from meshnode.store.listings import get_listing_by_object_id  # noqa: E402
from meshnode.web.appkeys import CONTEXT  # noqa: E402

MEAL: dict[str, Any] = {
    "kind": "offer", "category": "meal", "title": "Couscous du vendredi",
    "price": {"mode": "amount", "amount": "1.00"},
    "details": {"portions": 1000, "auto_accept": True,
                "pickup_time": format_utc(datetime.now(UTC) + timedelta(days=30))},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(root: Path, handle: str) -> tuple[web.AppRunner, NodeContext]:
    port = _free_port()
    config = init_node(Config(data_dir=root / handle, name=handle, handle=handle,
                              public_url=f"http://127.0.0.1:{port}", port=port,
                              allow_private_addresses=True))
    runner = web.AppRunner(create_app(config, run_workers=True))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, runner.app[CONTEXT]


async def contention(root: Path, clients: int, portions: int) -> None:
    runner, ctx = await _serve(root, "contention")
    try:
        author = await members.add_member(ctx, username="cook", password=None)
        listing = await listings.create_listing(
            ctx, author, {**MEAL, "details": {**MEAL["details"], "portions": portions}})
        tokens = []
        for n in range(clients):
            await members.add_member(ctx, username=f"guest{n}", password=None)
            tokens.append((await members.create_token(ctx, f"guest{n}")).secret)
        url = f"{ctx.config.base_url}/api/v1/listings/{listing.row.id}/deals"
        counts = {"accepted": 0, "refused": 0, "other": 0}

        async def client(session: aiohttp.ClientSession, token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            while True:
                async with session.post(url, json={"quantity": 1}, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 201:
                        counts["accepted"] += 1
                    elif resp.status == 409:
                        counts["refused"] += 1
                        return
                    else:
                        counts["other"] += 1
                        return

        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session, t) for t in tokens))
        elapsed = time.perf_counter() - started
        taken = await q.taken(ctx.store.reader, listing.row.id, ("accepted",))
        rows = await q.list_for_listing(ctx.store.reader, listing.row.id, ("accepted",))
        unpaid_or_twice = 0
        for deal in rows:
            paid = [e for e in await q.events(ctx.store.reader, deal.id) if e["payments"]]
            unpaid_or_twice += len(paid) != 1
        double = max(0, taken - portions) + unpaid_or_twice
        verified = (await ledger.verify_journal(ctx, check_signatures=False)).ok
        print(f"contention: {clients} clients, one listing of {portions} portions")
        print(f"  accepted bookings: {counts['accepted']} in {elapsed:.2f} s"
              f" = {counts['accepted'] / elapsed:.0f} bookings/s (each paid through the ledger)")
        print(f"  refused when sold out (409): {counts['refused']}, other: {counts['other']}")
        print(f"  double bookings: {double}   ledger verifies: {verified}")
    finally:
        await runner.cleanup()


async def _wait(predicate: Any, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("condition not reached")


async def cross_node(root: Path, bookings: int) -> None:
    runner_a, alpha = await _serve(root, "alpha")
    runner_b, beta = await _serve(root, "beta")
    try:
        await peering.add_peer(alpha, beta.config.base_url)

        async def peered() -> bool:
            return len([p for p in await peering.list_peers(beta) if p.status == "peered"]) > 0
        await _wait(peered)
        cook = await members.add_member(alpha, username="cook", password=None)
        free = {**MEAL, "price": {"mode": "free"}}
        view = await listings.create_listing(alpha, cook, free)
        guest = await members.add_member(beta, username="guest", password=None)
        token = (await members.create_token(beta, "guest")).secret

        async def arrived() -> bool:
            return await get_listing_by_object_id(beta.store.reader, view.row.object_id) \
                is not None
        await _wait(arrived)
        remote = await get_listing_by_object_id(beta.store.reader, view.row.object_id)
        assert remote is not None
        url = f"{beta.config.base_url}/api/v1/listings/{remote.id}/deals"
        latencies = []
        async with aiohttp.ClientSession() as session:
            for _ in range(bookings):
                started = time.perf_counter()
                async with session.post(url, json={"quantity": 1},
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
                    deal_id = (await resp.json())["id"]

                async def accepted(deal_id: str = deal_id) -> bool:
                    return (await deals.get_deal(beta, guest, deal_id)).state == "accepted"
                await _wait(accepted)
                latencies.append(time.perf_counter() - started)
        latencies.sort()
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"cross-node booking (free, auto-accepted), {bookings} bookings one after another:")
        print(f"  latency p50 {statistics.median(latencies) * 1000:.0f} ms,"
              f" p95 {p95 * 1000:.0f} ms (Offer → author node → Accept → booker node)")
        await paid_cross_node(alpha, beta, cook, guest, token, bookings)
    finally:
        await runner_b.cleanup()
        await runner_a.cleanup()


async def paid_cross_node(alpha: NodeContext, beta: NodeContext, cook: Any, guest: Any,
                          token: str, bookings: int) -> None:
    line = await iou.propose_line(beta, None, peer=alpha.config.base_url, limit_out="1000",
                                  limit_in="1000", rate="2")

    async def offered() -> bool:
        row = await iq.get_line(alpha.store.reader, line.id)
        return row is not None and row.state == "pending"
    await _wait(offered)
    await iou.accept_line(alpha, None, line.id)

    async def active() -> bool:
        row = await iq.get_line(beta.store.reader, line.id)
        return row is not None and row.state == "active"
    await _wait(active)
    view = await listings.create_listing(alpha, cook, {**MEAL, "title": "Couscous payant"})

    async def arrived() -> bool:
        return await get_listing_by_object_id(beta.store.reader, view.row.object_id) \
            is not None
    await _wait(arrived)
    remote = await get_listing_by_object_id(beta.store.reader, view.row.object_id)
    assert remote is not None
    url = f"{beta.config.base_url}/api/v1/listings/{remote.id}/deals"
    latencies, failed = [], 0
    async with aiohttp.ClientSession() as session:
        for _ in range(bookings):
            started = time.perf_counter()
            async with session.post(url, json={"quantity": 1},
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                deal = await deals.get_deal(beta, guest, (await resp.json())["id"])

            async def confirmed(agreement: str = deal.agreement_id) -> bool:
                theirs = await q.deal_by(alpha.store.reader, "agreement_id", agreement)
                if theirs is None:
                    return False
                states = [p.state for p in await q.payments_of(alpha.store.reader, theirs.id)]
                return bool(states) and states[0] in ("paid", "failed")
            await _wait(confirmed)
            latencies.append(time.perf_counter() - started)
            theirs = await q.deal_by(alpha.store.reader, "agreement_id", deal.agreement_id)
            assert theirs is not None
            failed += (await q.payments_of(alpha.store.reader, theirs.id))[0].state != "paid"
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    checks = [(await ledger.verify_journal(ctx)).ok for ctx in (alpha, beta)]
    local_a, peer_a, _ = await iq.line_totals(alpha.store.reader, line.id)
    local_b, peer_b, _ = await iq.line_totals(beta.store.reader, line.id)
    print(f"cross-node booking (PAID through a trust line, auto-accepted), {bookings} bookings:")
    print(f"  latency p50 {statistics.median(latencies) * 1000:.0f} ms,"
          f" p95 {p95 * 1000:.0f} ms (until the author's node confirms the payment)")
    print(f"  payments failed: {failed}   ledgers verify: {all(checks)}"
          f"   line mirrors: {(local_a, peer_a) == (peer_b, local_b)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--portions", type=int, default=1000)
    parser.add_argument("--remote", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await contention(Path(tmp), args.clients, args.portions)
        await cross_node(Path(tmp), args.remote)


if __name__ == "__main__":
    asyncio.run(main())
