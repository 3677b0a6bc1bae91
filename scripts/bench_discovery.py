"""Benchmark: how fast a group of nodes on one LAN segment find and verify each other.

Usage: ``python scripts/bench_discovery.py [--nodes 5] [--runs 3]``

Starts ``--nodes`` real nodes in one process (aiohttp apps on real 127.0.0.1 ports, each
with its own AsyncZeroconf bound to 127.0.0.1, real multicast), all at once, and prints:

* time until every node has *discovered* (resolved + recorded) every other node;
* time until every node has *verified* every other node (key fetched, challenge signed)
  and, in policy ``auto``, handed it to ``request_peering``;
* time until every node is *peered* with every other node (federation Follow/Accept both
  ways: ``peer list`` says ``peered``). Target: < 10 s;
* then the time from creating one new listing on the first node until every other node
  has stored it. Target: < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.app import create_app  # noqa: E402
from meshnode.config import Config  # noqa: E402
from meshnode.federation import peering  # noqa: E402
from meshnode.protocol.activities import origin_of  # noqa: E402
from meshnode.services import listings, members  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
from meshnode.store import listings as listing_store  # noqa: E402
from meshnode.store import neighbours as nq  # noqa: E402
from meshnode.web.appkeys import CONTEXT  # noqa: E402

DONE_STATUSES = {"verified", "peering_requested", "peered"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(base: Path, index: int) -> web.AppRunner:
    port = _free_port()
    config = init_node(Config(
        data_dir=base / f"n{index}", name=f"Communauté {index}", handle=f"c{index}",
        public_url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port,
        discovery_policy="auto", discovery_interfaces=("127.0.0.1",),
    ))
    runner = web.AppRunner(create_app(config), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _known(ctx: NodeContext, keys: set[bytes], statuses: set[str] | None) -> bool:
    rows = await nq.list_neighbours(ctx.store.reader)
    seen = {r.public_key for r in rows if statuses is None or r.status in statuses}
    return keys <= seen


async def _peered(ctx: NodeContext, origins: set[str]) -> bool:
    peered = {p.peer for p in await peering.list_peers(ctx) if p.status == "peered"}
    return origins <= peered


async def _has_listing(ctx: NodeContext, object_id: str) -> bool:
    row = await listing_store.get_listing_by_object_id(ctx.store.reader, object_id)
    return row is not None


async def _until(check: Callable[[], Awaitable[bool]], started: float, limit: float) -> float:
    while not await check():
        if time.monotonic() - started > limit:
            raise SystemExit(f"condition not met within {limit:.0f} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def _listing(index: int) -> dict[str, object]:
    return {"kind": "offer", "category": "give", "title": f"Bench listing {index}",
            "description": "Appears on every node", "price": {"mode": "free"}}


async def one_run(count: int) -> tuple[float, float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
        started = time.monotonic()
        runners = await asyncio.gather(*(_start(Path(tmp), i) for i in range(count)))
        up = time.monotonic() - started
        contexts = [runner.app[CONTEXT] for runner in runners]
        discovered = verified = None
        origins = [origin_of(c.config.base_url) for c in contexts]
        try:
            while verified is None and time.monotonic() - started < 60:
                checks = []
                for ctx in contexts:
                    others = {c.identity.ed25519_public for c in contexts if c is not ctx}
                    checks.append((await _known(ctx, others, None),
                                   await _known(ctx, others, DONE_STATUSES)))
                now = time.monotonic() - started
                if discovered is None and all(d for d, _ in checks):
                    discovered = now
                if all(v for _, v in checks):
                    verified = now
                await asyncio.sleep(0.02)

            async def all_peered() -> bool:
                for ctx, origin in zip(contexts, origins, strict=True):
                    if not await _peered(ctx, set(origins) - {origin}):
                        return False
                return True

            peered = await _until(all_peered, started, 60)
            author = await members.add_member(contexts[0], username="bench",
                                              password="bench-pass-1")
            posted = time.monotonic()
            view = await listings.create_listing(contexts[0], author, _listing(count))
            object_id = view.row.object_id

            async def everywhere() -> bool:
                return all([await _has_listing(c, object_id) for c in contexts[1:]])

            spread = await _until(everywhere, posted, 30)
        finally:
            await asyncio.gather(*(runner.cleanup() for runner in runners))
        if discovered is None or verified is None:
            raise SystemExit("nodes did not all find each other within 60 s")
        return up, discovered, verified, peered, spread


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [await one_run(args.nodes) for _ in range(args.runs)]
    print(f"{args.nodes} nodes on 127.0.0.1, real multicast, {args.runs} runs")
    for label, index in (("all nodes serving HTTP", 0), ("all discovered all", 1),
                         ("all verified all (+ peering requested)", 2),
                         ("all peered with all (target < 10 s)", 3),
                         ("new listing on every node (after peered, < 2 s)", 4)):
        values = [r[index] for r in results]
        print(f"  {label:48s} median {statistics.median(values):6.2f} s"
              f"  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    asyncio.run(main())
