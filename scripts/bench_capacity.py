#!/usr/bin/env python3
"""What counting capacity down costs (issue 14, "Capacity that counts down everywhere").

Prints (1) the time pages and the API spend on ``services/capacity.remaining_for`` for a page
of 20 and of 100 ride listings that each have accepted bookings (one grouped query over the
deals), and (2) accepted bookings per second through the service layer on one 1000-portion
meal, where every acceptance also signs and queues the listing's ``availableQuantity``
Update in the same transaction, with the number of listing versions that leaves.

    PYTHONPATH=. python scripts/bench_capacity.py [--listings 200] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meshnode.config import Config, LimitsConfig
from meshnode.protocol.timefmt import format_utc
from meshnode.services import capacity, deals, listings, members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.store.listings import SearchFilters

DEPARTURE = format_utc(datetime.now(UTC) + timedelta(days=30))
RIDE = {"kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
        "price": {"mode": "free"},
        "details": {"from": "Canal", "to": "Lyon", "departure": DEPARTURE, "seats": 8,
                    "auto_accept": True}}
MEAL = {"kind": "offer", "category": "meal", "title": "Couscous du vendredi",
        "price": {"mode": "free"},
        "details": {"portions": 1000, "pickup_time": DEPARTURE, "auto_accept": True}}


async def page_cost(ctx: NodeContext, count: int, rounds: int) -> None:
    authors = [await members.add_member(ctx, username=f"m{i}", password=None)
               for i in range(10)]
    riders = [await members.add_member(ctx, username=f"r{i}", password=None) for i in range(3)]
    for i in range(count):
        view = await listings.create_listing(ctx, authors[i % 10], RIDE)
        for rider in riders:
            await deals.book(ctx, rider, view.row.id, {"quantity": 1})
    for size in (20, 100):
        rows = (await listings.search_listings(ctx, SearchFilters(limit=size))).items
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            found = await capacity.remaining_for(ctx, rows)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        assert all(r.left == 5 for r in found.values())
        print(f"remaining_for, page of {size}: p50 {statistics.median(samples):.2f} ms,"
              f" p95 {samples[int(len(samples) * 0.95) - 1]:.2f} ms")


async def booking_rate(ctx: NodeContext) -> None:
    cook = await members.add_member(ctx, username="cook", password=None)
    eaters = [await members.add_member(ctx, username=f"e{i}", password=None)
              for i in range(50)]
    view = await listings.create_listing(ctx, cook, MEAL)
    started = time.perf_counter()
    for i in range(1000):
        await deals.book(ctx, eaters[i % 50], view.row.id, {"quantity": 1})
    elapsed = time.perf_counter() - started
    row = (await listings.get_listing(ctx, view.row.id)).row
    left = await capacity.remaining_of(ctx, row)
    print(f"1000 accepted bookings in {elapsed:.2f} s = {1000 / elapsed:.0f}/s (service layer,"
          f" one at a time), each publishing what is left; listing now at version"
          f" {row.version}, {left.left if left else '?'} left")


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080",
                                  limits=LimitsConfig(0, 0, 0)))
        ctx = await NodeContext.open(config)
        try:
            await page_cost(ctx, count, rounds)
            await booking_rate(ctx)
        finally:
            await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.listings, args.rounds))
