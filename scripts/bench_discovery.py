"""Benchmark: how fast a group of nodes on one LAN segment find and verify each other.

Usage: ``python scripts/bench_discovery.py [--nodes 5] [--runs 3]``

Starts ``--nodes`` real nodes in one process (aiohttp apps on real 127.0.0.1 ports, each
with its own AsyncZeroconf bound to 127.0.0.1, real multicast), all at once, and prints:

* time until every node has *discovered* (resolved + recorded) every other node;
* time until every node has *verified* every other node (key fetched, challenge signed)
  and, in policy ``auto``, handed it to ``request_peering``.

NOT MEASURED YET (depends on the federation branch): the time until all are *peered*
(Follow/Accept) and until a new listing reaches every node. ``request_peering`` only
records the intent until the lead wires it to federation's peer-add.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.app import create_app  # noqa: E402
from meshnode.config import Config  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
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


async def one_run(count: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
        started = time.monotonic()
        runners = await asyncio.gather(*(_start(Path(tmp), i) for i in range(count)))
        up = time.monotonic() - started
        contexts = [runner.app[CONTEXT] for runner in runners]
        discovered = verified = None
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
        finally:
            await asyncio.gather(*(runner.cleanup() for runner in runners))
        if discovered is None or verified is None:
            raise SystemExit("nodes did not all find each other within 60 s")
        return up, discovered, verified


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [await one_run(args.nodes) for _ in range(args.runs)]
    print(f"{args.nodes} nodes on 127.0.0.1, real multicast, {args.runs} runs")
    for label, index in (("all nodes serving HTTP", 0), ("all discovered all", 1),
                         ("all verified all (+ peering requested)", 2)):
        values = [r[index] for r in results]
        print(f"  {label:42s} median {statistics.median(values):6.2f} s"
              f"  (min {min(values):.2f}, max {max(values):.2f})")
    print("  all peered (Follow/Accept)                 n/a: needs the federation branch")
    print("  new listing reaches every node             n/a: needs the federation branch")


if __name__ == "__main__":
    asyncio.run(main())
