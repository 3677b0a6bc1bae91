"""Benchmark: what the notification centre costs.

Usage: ``python scripts/bench_notifications.py [--items 100000] [--rounds 500]``

On a throw-away node it
1. writes ``--items`` notifications for one member through ``services.notifications.notify``
   (1,000 per transaction), printing items/s;
2. times what every page a member opens now does (the unread count for the navigation), and
   the first page of ``GET /api/v1/notifications`` (50 items), ``--rounds`` times each, with
   every item unread: median and p95;
3. times marking everything read, then the unread count again.
Figures only, no assertion: run it on the target machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.config import Config  # noqa: E402
from meshnode.services import members, notifications  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402


async def _timed(rounds: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def run(args: argparse.Namespace) -> None:
    """Fill, then measure."""
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp), name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080", discovery_policy="off"))
        ctx = await NodeContext.open(config)
        try:
            member = await members.add_member(ctx, username="alice", password=None)
            other = await members.add_member(ctx, username="bob", password=None)
            started = time.perf_counter()
            for batch in range(0, args.items, 1000):
                async with ctx.store.transaction() as tx:
                    for n in range(batch, min(batch + 1000, args.items)):
                        await notifications.notify(ctx, tx, member.id, "payment_received",
                                                   ref=f"t{n}", url=f"/wallet/transactions/t{n}",
                                                   detail="bench", amount=n)
            spent = time.perf_counter() - started
            print(f"notify: {args.items} items in {spent:.1f} s = {args.items / spent:,.0f}/s")
            med, p95 = await _timed(args.rounds, lambda: notifications.unread_badge(ctx, member))
            print(f"navigation badge (every page, counts to 100), {args.items} unread: median"
                  f" {med:.3f} ms, p95 {p95:.3f} ms")
            med, p95 = await _timed(args.rounds, lambda: notifications.unread_count(ctx, member))
            print(f"exact unread count (API), {args.items} unread: median {med:.3f} ms,"
                  f" p95 {p95:.3f} ms")
            med, p95 = await _timed(args.rounds, lambda: notifications.unread_count(ctx, other))
            print(f"unread count, a member with none: median {med:.3f} ms, p95 {p95:.3f} ms")
            med, p95 = await _timed(args.rounds, lambda: notifications.list_notifications(
                ctx, member, limit=50))
            print(f"first page of 50: median {med:.3f} ms, p95 {p95:.3f} ms")
            started = time.perf_counter()
            marked = await notifications.mark_read(ctx, member, None)
            took = (time.perf_counter() - started) * 1000
            print(f"mark all read: {marked} items in {took:.0f} ms")
            med, p95 = await _timed(args.rounds, lambda: notifications.unread_count(ctx, member))
            print(f"unread count after: median {med:.3f} ms, p95 {p95:.3f} ms")
        finally:
            await ctx.close()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
