"""The inbox door alone: CPU per signed Create from the TCP read of ``POST /inbox`` to the 202.

Run: ``PYTHONPATH=. python scripts/bench_door.py [--listings N] [--runs R] [--quick]``.

A node process serves as ``meshnode run`` does (``meshnode.serve``'s runner and connection
guard, every middleware) but with its background workers off (``run_workers=False``), so the
CPU it uses while 32 raw keep-alive connections post pre-signed Creates of distinct signed
listings is the door's alone: read, caps, JSON, policy, quota, HTTP signature and digest,
the group commit of the raw activity (SQLite's writer thread) and the 202 (issue 17: the
door's share of end-to-end ingest). The same run prints a baseline: what one core does per
request with no server (``json.loads`` of the body and one Ed25519 verification).
``--profile FILE`` runs once more under cProfile and prints the top costs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from nacl.signing import SigningKey

from meshnode.app import create_app
from meshnode.config import Config, InboxLimits, load_config
from meshnode.serve import settle_heap
from meshnode.services import listings, members
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT
from meshnode.web.connections import CONNECTIONS, start_server
from scripts.bench_federation import (
    RIDE,
    Node,
    _distinct_listings,
    _send_creates,
    cpu_seconds,
    print_profile,
    signed_creates,
)
from tests.nodeproc import wait_healthy

# The quota is checked as always; it is only large enough for any number of requests.
ROOMY_QUOTA = InboxLimits(peer_rows_per_hour=10**9, peer_bytes_per_hour=2**50)


def door_baseline(body: bytes, seconds: float = 0.5) -> float:
    """Seconds of one core per request for ``json.loads`` plus one Ed25519 verification."""
    key = SigningKey.generate()
    signed = key.sign(body[:300])
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        json.loads(body)
        key.verify_key.verify(signed)
        count += 1
    return (time.process_time() - start) / count


async def serve_without_workers(data_dir: Path) -> None:
    """The node as ``meshnode run`` serves it, its workers off (``--serve``)."""
    config = load_config(data_dir)
    app = create_app(config, run_workers=False)
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                           keepalive_timeout=config.header_timeout)
    await runner.setup()
    listener = await start_server(runner, app[CONNECTIONS], config.host, config.port)
    settle_heap()
    try:
        await asyncio.Event().wait()
    finally:
        listener.close()
        await runner.cleanup()


async def door_run(root: Path, total: int, profile: Path | None = None
                   ) -> tuple[float, float, float, float]:
    """One fresh node: (202s per second, node CPU per request, of which its main thread's,
    baseline CPU per request)."""
    root.mkdir(exist_ok=True)  # noqa: ASYNC240 - once, before measuring
    alpha = Node(root, "alpha", discovery_policy="off")
    await alpha.start(False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    beta = init_node(Config(data_dir=root / "beta", name="beta", handle="beta",
                            public_url=f"http://127.0.0.1:{port}", port=port,
                            discovery_policy="off", inbox=ROOMY_QUOTA))
    with sqlite3.connect(beta.database_path) as conn:  # beta follows alpha: a peer
        conn.execute("INSERT INTO peers (origin, requested, out_state, created_at, updated_at)"
                     " VALUES (?, ?, 'peered', '', '')", (alpha.config.base_url,) * 2)
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        [sys.executable, *profiler, __file__, "--serve", str(beta.data_dir)])
    try:
        await wait_healthy(beta.base_url)
        ctx = alpha.app[CONTEXT]
        alice = await members.add_member(ctx, username="alice", password=None)
        view = await listings.create_listing(ctx, alice, RIDE)
        documents = _distinct_listings(ctx, alice, view.row.signed_object, total + 1)
        base = door_baseline(json.dumps(documents[0]).encode())
        cpu_before = cpu_seconds(process.pid)
        loop_before = cpu_seconds(process.pid, process.pid)
        url = f"{beta.base_url}/inbox"
        rate, _ = await _send_creates(signed_creates(ctx, alice, documents, url), url)
        cpu = (cpu_seconds(process.pid) - cpu_before) / total
        loop_cpu = (cpu_seconds(process.pid, process.pid) - loop_before) / total
        return rate, cpu, loop_cpu, base
    finally:
        process.send_signal(2)
        process.wait(timeout=60)
        await alpha.stop()


async def main(total: int, runs: int, profile: Path | None) -> None:
    """Print each run and the median CPU per request."""
    results: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(runs):
            results.append(await door_run(Path(tmp) / f"run{n}", total))
            rate, cpu, loop_cpu, base = results[-1]
            print(f"  run {n + 1}: accepted {rate:,.0f}/s; door CPU {cpu * 1e6:,.0f} µs per "
                  f"request (event loop {loop_cpu * 1e6:,.0f}, SQLite's threads "
                  f"{(cpu - loop_cpu) * 1e6:,.0f}); baseline json.loads + Ed25519 verify "
                  f"{base * 1e6:,.0f} µs; load {os.getloadavg()[0]:.1f}")
        if profile is not None:
            await door_run(Path(tmp) / "profiled", total, profile)
    median = sorted(results, key=lambda r: r[1])[len(results) // 2]
    print(f"the inbox door, {total:,} signed Creates from 32 connections, median of {runs}: "
          f"{median[1] * 1e6:,.0f} µs of node CPU per request (event loop "
          f"{median[2] * 1e6:,.0f} µs), {median[1] / median[3]:.1f} × the baseline of "
          f"{median[3] * 1e6:,.0f} µs; accepted {median[0]:,.0f}/s")
    if profile is not None:
        print_profile(profile, total)
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 requests, 1 run")
    parser.add_argument("--listings", type=int, default=None, help="requests per run (3,000)")
    parser.add_argument("--runs", type=int, default=None, help="fresh nodes (3; 1 quick)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="one more run under cProfile; top costs printed per request")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_without_workers(args.serve))
    else:
        asyncio.run(main(args.listings or (1000 if args.quick else 3000),
                         args.runs or (1 if args.quick else 3), args.profile))
