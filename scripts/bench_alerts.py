"""Benchmark: what matching an arriving listing against saved searches costs.

Usage: ``python scripts/bench_alerts.py [--alerts 10000] [--listings 300] [--quick]``

On a throw-away node it stores ``--listings`` listings as a neighbour's (no signing: the
cost measured is matching, not verification), then times ``services.alerts.match_arrived``
on each, in its own write transaction, as the inbox worker and the publish path call it
(timed inside the transaction; the commit's fsync is printed apart):

1. baseline: no alert saved (what every arrival pays anyway: reading the row, its wants);
2. with ``--alerts`` saved searches by 40 members (1-3 words naming things, drawn from
   2,800 made-up words; a third with a category, a fifth with a place, a fifth with a price
   limit), the notifications written included. Listings have 1-3 such words in the title
   and 15% in a 20-80 word description, the rest common words (200, Zipf-like skew);
3. the matching query alone (``store.alerts.matching``), read-only, same listings.

Prints p50/p95/max in milliseconds per listing for each, the ratio to the baseline, and
how many alerts matched per listing. Figures only (the machine may be shared): no assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.config import Config  # noqa: E402
from meshnode.protocol.alerts import parse_alert  # noqa: E402
from meshnode.protocol.timefmt import format_utc  # noqa: E402
from meshnode.services import alerts, members  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
from meshnode.store import alerts as alert_store  # noqa: E402
from meshnode.store import listings as listing_store  # noqa: E402
from meshnode.store.alerts import NewAlert  # noqa: E402
from meshnode.store.listings import ListingColumns  # noqa: E402

MEMBERS = 40  # each has fresh Ed25519 and RSA keys: the slow part of setting up
CATEGORIES = ("lend", "give", "swap", "sell", "service", "produce")
SYLLABLES = ("ba", "ché", "lo", "vé", "ri", "tu", "mon", "pé", "ra", "ce", "lle", "gui",
             "ta", "re", "jar", "din", "pou", "sse", "te", "è", "co", "ver", "ture", "ma")


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """Distinct made-up French-looking words (accents included)."""
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def filler(rng: random.Random, vocab: list[str]) -> str:
    """A common word (the 200 first, Zipf-like skew): what most of a description is made of."""
    return vocab[min(199, int(rng.paretovariate(1.2)) - 1)]


def item(rng: random.Random, vocab: list[str]) -> str:
    """A word naming a thing (the other 2,800, uniform): what alerts and titles name."""
    return vocab[rng.randrange(200, len(vocab))]


async def add_listings(ctx: NodeContext, rng: random.Random, vocab: list[str],
                       count: int) -> list[str]:
    ids = []
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        for n in range(count):
            listing_id = secrets.token_hex(8)
            title = " ".join([item(rng, vocab) for _ in range(rng.randint(1, 3))]
                             + [filler(rng, vocab) for _ in range(rng.randint(1, 3))])
            body = " ".join(item(rng, vocab) if rng.random() < 0.15 else filler(rng, vocab)
                            for _ in range(rng.randint(20, 80)))
            columns = ListingColumns(
                kind="offer", category=rng.choice(CATEGORIES), status="active", title=title,
                description=body, price_mode="amount" if n % 3 else "free",
                price_amount=f"{rng.randint(1, 40)}.00" if n % 3 else None, price_period=None,
                location_name="Quai du Canal", lat=45.76 + rng.uniform(-0.2, 0.2),
                lon=4.83 + rng.uniform(-0.2, 0.2), details="{}", expires_at=None)
            await listing_store.insert_listing(
                tx, listing_id=listing_id, object_id=f"https://voisins.example/o/{listing_id}",
                author_id=None, author_uri="https://voisins.example/users/carol",
                origin="https://voisins.example", is_local=False, columns=columns,
                published_at=now, signed_object="{}")
            ids.append(listing_id)
    return ids


async def add_alerts(ctx: NodeContext, rng: random.Random, vocab: list[str],
                     count: int) -> None:
    owners = [await members.add_member(ctx, username=f"m{n}", password=None)
              for n in range(MEMBERS)]
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        for n in range(count):
            data: dict[str, object] = {
                "q": " ".join(item(rng, vocab) for _ in range(rng.randint(1, 3)))}
            if rng.random() < 1 / 3:
                data["category"] = rng.choice(CATEGORIES)
            if rng.random() < 0.2:
                data |= {"near": f"{45.76 + rng.uniform(-0.3, 0.3):.4f},4.83",
                         "radius_km": rng.choice((2, 5, 10, 20))}
            if rng.random() < 0.2:
                data["max_price"] = str(rng.randint(0, 30))
            parsed = parse_alert(data, decimals=ctx.config.currency.decimals)
            await alert_store.insert_alert(tx, NewAlert(
                member_id=owners[n % len(owners)].id, listing_id=None, q=parsed.q,
                kind=parsed.kind, category=parsed.category, near=parsed.near,
                radius_km=parsed.radius_km, max_price=parsed.max_price, terms=parsed.terms),
                now)


async def timed_each(ids: list[str], call: Callable[[str], Awaitable[int]]
                     ) -> tuple[list[float], list[int]]:
    samples, found = [], []
    for listing_id in ids:
        started = time.perf_counter()
        found.append(await call(listing_id))
        samples.append((time.perf_counter() - started) * 1000)
    return samples, found


def line(label: str, samples: list[float], base: float | None = None) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    ratio = f", {p50 / base:.1f}x baseline p50" if base else ""
    return (f"{label}: p50 {p50:.3f} ms, p95 {p95:.3f} ms, max {ordered[-1]:.3f} ms"
            f" per listing{ratio}")


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp), name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080", discovery_policy="off"))
        ctx = await NodeContext.open(config)
        try:
            vocab = vocabulary(rng, 3000)
            ids = await add_listings(ctx, rng, vocab, args.listings * 2)
            first, second = ids[: args.listings], ids[args.listings:]

            inside: list[float] = []

            async def arrive(listing_id: str) -> int:
                # timed: the call inside the caller's transaction (what it adds to storing a
                # listing); timed_each also counts the commit (an fsync when rows were written)
                async with ctx.store.transaction() as tx:
                    started = time.perf_counter()
                    told = await alerts.match_arrived(ctx, tx, [listing_id])
                    inside.append((time.perf_counter() - started) * 1000)
                return told

            await timed_each(first, arrive)
            base = inside[:]
            inside.clear()
            base_p50 = statistics.median(base)
            print(line("match_arrived, no alert saved (baseline)", base))
            started = time.perf_counter()
            await add_alerts(ctx, rng, vocab, args.alerts)
            print(f"saved {args.alerts} alerts in {time.perf_counter() - started:.1f} s")
            with_commit, told = await timed_each(second, arrive)
            print(line(f"match_arrived, {args.alerts} alerts (notifications written)", inside,
                       base_p50))
            print(line("  the same with its transaction's commit (fsync of the new rows)",
                       with_commit))
            print(f"members told per listing: mean {statistics.mean(told):.1f},"
                  f" max {max(told)}")
            now = format_utc(ctx.clock())

            async def query_only(listing_id: str) -> int:
                row = await listing_store.get_listing(ctx.store.reader, listing_id)
                assert row is not None
                arrival = alerts.arrival_of(row, ctx.config.currency.decimals, now)
                return len(await alert_store.matching(ctx.store.reader, arrival))

            alone, hits = await timed_each(first, query_only)
            print(line(f"matching query alone, {args.alerts} alerts", alone, base_p50))
            print(f"alerts matched per listing: mean {statistics.mean(hits):.1f},"
                  f" max {max(hits)}")
        finally:
            await ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--listings", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="100 listings per phase")
    args = parser.parse_args()
    if args.quick:
        args.listings = 100
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
