"""Benchmark the network map pages (issue 19): ``/network`` rendered with many communities.

Usage: ``PYTHONPATH=. python scripts/bench_network_map.py [--peers 150] [--heard 400]
[--listings 20000] [--requests 200] [--quick]``

Seeds a fresh node in a temporary directory (peers, one trust line per peer with moves in the
last 30 days, remote listings spread over the peers and the heard-of origins, written with
plain SQL for speed), serves it on 127.0.0.1 with the anonymous page cache off, and requests
``/network`` one at a time (the public map is rebuilt at most once a minute, so this is the
page's rendering). It also times building the map itself (``services.network_map``, what
``/admin/network`` does on every visit). The baseline, measured in the same run, is the home
page ``/`` (the newest listings, also rendered every time). Prints p50/p99 and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services import network_map as nm
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT

NOW = "2026-11-26T10:00:00Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(ctx: NodeContext, *, peers: int, heard: int, listings: int) -> None:
    origins = [f"http://10.0.{i // 250}.{i % 250 + 1}:8080" for i in range(peers + heard)]
    async with ctx.store.transaction() as tx:
        await tx.executemany(
            "INSERT INTO peers (origin, requested, actor_id, out_state, created_at, updated_at)"
            " VALUES (?, ?, ?, 'peered', ?, ?)",
            [(o, o, f"{o}/groups/c{i}", NOW, NOW) for i, o in enumerate(origins[:peers])])
        await tx.executemany(
            "INSERT INTO ledger_accounts (name, kind, min_balance, max_balance, created_at)"
            " VALUES (?, 'system', -5000, 5000, ?)",
            [(f"node:{o[7:]}", NOW) for o in origins[:peers]])
        await tx.executemany(
            "INSERT INTO iou_lines (id, requested, peer_actor, peer_origin, account,"
            " is_proposer, state, limit_out, limit_in, rate, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, 'active', 5000, 5000, '1', ?, ?)",
            [(f"line{i}", o, f"{o}/groups/c{i}", o, f"node:{o[7:]}", NOW, NOW)
             for i, o in enumerate(origins[:peers])])
        await tx.executemany(
            "INSERT INTO iou_line_moves (line_id, transfer_id, local_delta, peer_delta,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            [(f"line{i % peers}", f"t{i}", 100, -100, NOW) for i in range(peers * 20)])
        await tx.executemany(
            "INSERT INTO listings (id, object_id, author_uri, origin, is_local, kind, category,"
            " status, title, description, price_mode, published_at, updated_at,"
            " signed_object) VALUES (?, ?, ?, ?, 0, 'offer', 'give', 'active', 'Vélo',"
            " 'Un vélo', 'free', ?, ?, '{}')",
            [(f"l{i}", f"{origins[i % len(origins)]}/listings/{i}",
              f"{origins[i % len(origins)]}/users/u", origins[i % len(origins)], NOW, NOW)
             for i in range(listings)])


async def _times(session: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    found = []
    for _ in range(count):
        start = time.perf_counter()
        async with session.get(url, headers={"Accept": "text/html"}) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        found.append((time.perf_counter() - start) * 1000)
    return found


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    """Seed, serve, measure, print."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Bench", handle="bench",
                                  public_url=f"http://127.0.0.1:{port}", port=port,
                                  discovery_policy="off"))
        config = replace(config, page_cache_seconds=0.0)
        runner = web.AppRunner(create_app(config, run_workers=False))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await _seed(runner.app[CONTEXT], peers=args.peers, heard=args.heard,
                        listings=args.listings)
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{port}"
                await _times(session, f"{base}/network", 3)  # warm up
                login = await _times(session, f"{base}/", args.requests)
                network = await _times(session, f"{base}/network", args.requests)
            build = []
            for _ in range(max(args.requests // 10, 5)):
                start = time.perf_counter()
                await nm.network_map(runner.app[CONTEXT], public=False)
                build.append((time.perf_counter() - start) * 1000)
        finally:
            await runner.cleanup()
    print(f"communities: {args.peers} peers + {args.heard} heard of (drawn: 200 at most),"
          f" {args.listings} remote listings, {args.requests} sequential requests")
    for name, values in (("/ (home, baseline)", login), ("/network", network),
                         ("map built (admin)", build)):
        print(f"{name:20} p50 {_p(values, 50):7.1f} ms   p99 {_p(values, 99):7.1f} ms"
              f"   ratio p50 {_p(values, 50) / _p(login, 50):5.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=150)
    parser.add_argument("--heard", type=int, default=400)
    parser.add_argument("--listings", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    options = parser.parse_args()
    if options.quick:
        options.peers, options.heard, options.listings, options.requests = 30, 60, 2000, 30
    asyncio.run(main(options))
