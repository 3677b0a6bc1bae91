#!/usr/bin/env python3
"""What a member's data export (RGPD, ``services/member_export.py``) costs in memory and time.

Builds a node in a temporary directory with one member holding ``--listings`` listings (10,000
by default, each edited once: two signed versions) and a baseline member with 10 listings,
then exports each into a temporary file as ``GET /api/v1/me/export`` does. Prints, in the
same run, for the baseline and the big member: rows, archive size, seconds, and the peak of
Python allocations during the export (tracemalloc), with the ratio big / baseline. A bounded
export keeps that ratio near 1 whatever the member's history.

    PYTHONPATH=. python scripts/bench_export.py [--quick] [--listings 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
from pathlib import Path

from meshnode.config import Config, LimitsConfig
from meshnode.services import listings, member_export, members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.store.members import MemberRow


def _ride(index: int) -> dict[str, object]:
    return {"kind": "offer", "category": "ride", "title": f"Covoiturage numéro {index}",
            "description": "Trois places, **vélo** pliant accepté. " * 8,
            "price": {"mode": "amount", "amount": "4.50"},
            "location": {"name": "Quai du Canal", "lat": 45.764, "lon": 4.8357},
            "details": {"from": "Canal", "to": "Lyon", "departure": "2027-06-05T09:00:00+01:00",
                        "seats": 3}}


async def _member_with(ctx: NodeContext, username: str, count: int) -> MemberRow:
    member = await members.add_member(ctx, username=username, password=None)
    for index in range(count):
        view = await listings.create_listing(ctx, member, _ride(index))
        await listings.update_listing(ctx, member, view.row.id, {"title": f"Trajet {index}"})
    return member


async def _export(ctx: NodeContext, member: MemberRow, folder: Path) -> tuple[int, float, int]:
    """Archive bytes, seconds, peak traced bytes of one export into a file."""
    with tempfile.TemporaryFile(dir=folder) as out:
        tracemalloc.start()
        started = time.perf_counter()
        await member_export.export_member(ctx, member, out)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return out.tell(), seconds, peak


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = init_node(Config(data_dir=Path(folder) / "node", name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080", discovery_policy="off",
                                  limits=LimitsConfig(listings_per_hour=0)))
        ctx = await NodeContext.open(config)
        try:
            started = time.perf_counter()
            small = await _member_with(ctx, "baseline", 10)
            big = await _member_with(ctx, "busy", count)
            print(f"set-up: {count + 10} listings, 2 versions each, "
                  f"{time.perf_counter() - started:.1f} s")
            rows = {}
            for label, member, listed in (("baseline", small, 10), ("big", big, count)):
                size, seconds, peak = await _export(ctx, member, Path(folder))
                rows[label] = peak
                print(f"{label:9s} {listed:>7,} listings  archive {size / 1e6:8.2f} MB  "
                      f"{seconds:7.2f} s  peak Python allocations {peak / 1e6:6.2f} MB")
            print(f"peak ratio big / baseline: {rows['big'] / rows['baseline']:.2f}x "
                  f"for {count / 10:,.0f}x the listings")
        finally:
            await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="500 listings")
    args = parser.parse_args()
    asyncio.run(main(500 if args.quick else args.listings))
