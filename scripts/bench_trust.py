#!/usr/bin/env python3
"""What names and signature verdicts add to a page of listings (issue 14).

Prints, for a page of 20 and of 100 listings, the time the API and the pages now spend
naming authors and communities (``services/names.listing_parties``) and reading the kept
signature checks (``services/trust.signature_verdicts``), and the cost of one listing page's
verdict, which verifies the stored document again (one Ed25519 check).

    PYTHONPATH=. python scripts/bench_trust.py [--listings 200] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from meshnode.config import Config, LimitsConfig
from meshnode.services import listings, members, names, trust
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.store.listings import ListingRow, SearchFilters

RIDE = {"kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
        "description": "Trois places.", "price": {"mode": "free"},
        "location": {"name": "Quai du Canal"},
        "details": {"from": "Canal", "to": "Lyon", "departure": "2027-01-05T09:00:00+01:00",
                    "seats": 3}}


async def timed(rounds: int, work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Median and p95 in milliseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080",
                                  limits=LimitsConfig(0, 0, 0)))
        ctx = await NodeContext.open(config)
        try:
            authors = [await members.add_member(ctx, username=f"m{i}", password=None,
                                                display_name=f"Membre {i}") for i in range(20)]
            for i in range(count):
                await listings.create_listing(ctx, authors[i % 20], RIDE)
            for size in (20, 100):
                page = (await listings.search_listings(ctx, SearchFilters(limit=size))).items

                async def both(rows: list[ListingRow] = page) -> None:
                    await names.listing_parties(ctx, rows)
                    await trust.signature_verdicts(ctx, rows)

                p50, p95 = await timed(rounds, both)
                print(f"page of {len(page)}: names + verdicts p50 {p50:.2f} ms, p95 {p95:.2f} ms")
            row = page[0]
            p50, p95 = await timed(rounds, lambda: trust.signature_verdict(ctx, row))
            print(f"one listing page verdict (re-verifies): p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        finally:
            await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.listings, args.rounds))
