"""Replication benchmark (issue 17, "Replication keeps up"): the lag curve between two nodes.

Two real ``meshnode run`` subprocesses on 127.0.0.1, peered with ``meshnode peer add``; a
load generator (this process) publishes listings through alpha's JSON API at a fixed rate
with the tokens of several members, open loop (a slow answer does not slow the schedule).
Every second it prints: listings published (201 answered), listings visible on beta (its
database, read-only), the lag (age of the oldest published listing beta does not have
yet), alpha's deliveries done, and the CPU each node used in that second. At the end: the
time from the last publish until beta has every listing, and alpha's delivery rate.

Run: ``PYTHONPATH=. python scripts/bench_federation.py --replication [--rate 300]
[--seconds 60] [--quick]`` (or this file directly). Beta's inbox quota for peers is raised
(``inbox_peer_rows_per_hour``): the default 3,600 rows an hour would answer 429 after 12 s
of this load, by design.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bench_federation import baseline  # the same baseline as its part (1)

from meshnode.config import Config, InboxLimits, LimitsConfig
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node

REPO = Path(__file__).resolve().parents[1]
MEMBERS = 8
LISTING: dict[str, Any] = {
    "kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
    "description": "Trois places.", "price": {"mode": "amount", "amount": "4.50"},
    "location": {"name": "Quai du Canal", "lat": 45.764, "lon": 4.8357},
    "details": {"from": "Canal", "to": "Lyon", "seats": 3,
                "departure": (datetime.now(UTC) + timedelta(days=10)).isoformat(
                    timespec="seconds")},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_node(root: Path, handle: str, **overrides: Any) -> Config:
    port = _free_port()
    return init_node(Config(data_dir=root / handle, name=handle, handle=handle,
                            public_url=f"http://127.0.0.1:{port}", port=port,
                            discovery_policy="off", **overrides))


async def _tokens(config: Config, count: int) -> list[str]:
    ctx = await NodeContext.open(config)
    try:
        tokens = []
        for n in range(count):
            await members.add_member(ctx, username=f"member{n}", password=None)
            tokens.append((await members.create_token(ctx, f"member{n}")).secret)
        return tokens
    finally:
        await ctx.close()


def _start(config: Config) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING", "run",
         "--data-dir", str(config.data_dir)],
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)


async def _wait_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        try:
            async with session.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def _count(database: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def _peer(alpha: Config, beta: Config) -> None:
    """alpha and beta follow each other (``meshnode peer add`` while both run)."""
    subprocess.run(  # noqa: ASYNC221 - once, before measuring
        [sys.executable, "-m", "meshnode.cli", "peer", "add", "--data-dir",
         str(alpha.data_dir), beta.base_url], env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO, check=True, capture_output=True, timeout=60)
    for _ in range(600):
        if _count(alpha.database_path,
                  "SELECT count(*) FROM followers WHERE state = 'accepted'") >= 1:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("beta never followed alpha")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    """What the load generator did: the time each publish was answered 201, in order."""

    answered: list[float] = field(default_factory=list)
    failures: int = 0
    in_flight: int = 0


async def _publish(session: aiohttp.ClientSession, url: str, token: str, n: int,
                   load: Load) -> None:
    body = {**LISTING, "title": f"Covoiturage numéro {n}"}
    load.in_flight += 1
    try:
        async with session.post(url, json=body,
                                headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            if response.status == 201:
                load.answered.append(time.perf_counter())
            else:
                load.failures += 1
    except aiohttp.ClientError:
        load.failures += 1
    finally:
        load.in_flight -= 1


async def _generate(session: aiohttp.ClientSession, alpha: Config, tokens: list[str],
                    rate: int, seconds: float, load: Load) -> None:
    """Open loop: request n is started at start + n / rate, whatever earlier answers do."""
    url = f"{alpha.base_url}/api/v1/listings"
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_publish(session, url, tokens[n % len(tokens)], n, load))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


@dataclass
class Curve:
    """The per-second samples and the figures derived from them."""

    rows: list[tuple[float, int, int, float, int, float, float]] = field(default_factory=list)
    catch_up: float = 0.0


def _lag(load: Load, visible: int, now: float) -> float:
    """Age of the oldest answered listing beta does not have (0 when it has them all)."""
    if visible >= len(load.answered):
        return 0.0
    return now - sorted(load.answered)[visible]


async def _monitor(alpha: Config, beta: Config, pids: tuple[int, int], load: Load,
                   generator: asyncio.Task[None], limit: float) -> Curve:
    """Print a row every second; return once the generator is done and beta has it all
    (checked every 0.1 s, so the catch-up time is known to 0.1 s)."""
    curve = Curve()
    start = next_row = time.perf_counter()
    cpu = [_cpu_seconds(pid) for pid in pids]
    while True:
        await asyncio.sleep(0.1)
        now = time.perf_counter()
        visible = _count(beta.database_path, "SELECT count(*) FROM listings WHERE is_local = 0")
        if generator.done() and visible >= len(load.answered):
            curve.catch_up = now - max(load.answered, default=start)
            return curve
        if generator.done() and now - max(load.answered, default=start) > limit:
            raise RuntimeError(f"beta still misses {len(load.answered) - visible} listings "
                               f"{limit:.0f} s after the last publish")
        if now < next_row + 1.0:
            continue
        next_row = now
        done = _count(alpha.database_path, "SELECT count(*) FROM deliveries WHERE state = 'done'")
        used = [_cpu_seconds(pid) for pid in pids]
        row = (now - start, len(load.answered), visible, _lag(load, visible, now), done,
               used[0] - cpu[0], used[1] - cpu[1])
        cpu = used
        curve.rows.append(row)
        print(f"{row[0]:5.0f} s  published {row[1]:6,}  on beta {row[2]:6,}  lag {row[3]:5.1f} s"
              f"  delivered {row[4]:6,}  cpu alpha {row[5]:4.0%} beta {row[6]:4.0%}", flush=True)


async def run(rate: int, seconds: float, root: Path) -> None:
    """Set up the two nodes, run the load, print the curve and the summary."""
    alpha = _make_node(root, "alpha", limits=LimitsConfig(0, 0, 0))
    beta = _make_node(root, "beta", inbox=replace(
        InboxLimits(), peer_rows_per_hour=1_000_000, peer_bytes_per_hour=4 * 1024**3))
    tokens = await _tokens(alpha, MEMBERS)
    processes = [_start(alpha), _start(beta)]
    try:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            await _wait_up(session, alpha.base_url)
            await _wait_up(session, beta.base_url)
            await _peer(alpha, beta)
            load = Load()
            print(f"publishing {rate}/s for {seconds:.0f} s through alpha's API "
                  f"({MEMBERS} members), lag curve:", flush=True)
            generator = asyncio.create_task(_generate(session, alpha, tokens, rate, seconds,
                                                      load))
            curve = await _monitor(alpha, beta, (processes[0].pid, processes[1].pid), load,
                                   generator, limit=max(120.0, seconds * 3))
            await generator
        _summary(alpha, load, curve, rate, seconds)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _summary(alpha: Config, load: Load, curve: Curve, rate: int, seconds: float) -> None:
    published = len(load.answered)
    span = max(load.answered) - min(load.answered) if published > 1 else 1.0
    done = _count(alpha.database_path, "SELECT count(*) FROM deliveries WHERE state = 'done'")
    first = curve.rows[0][0] if curve.rows else 0.0
    delivery_span = max(curve.rows[-1][0] - first + 1.0, 1.0) if curve.rows else 1.0
    peak = max((row[3] for row in curve.rows), default=0.0)
    print(f"published {published:,} listings in {span:.1f} s ({published / span:,.0f}/s "
          f"achieved of {rate}/s asked; {load.failures} failed)")
    print(f"beta had every listing {curve.catch_up:.1f} s after the last publish "
          f"(target ≤ 5 s); peak lag {peak:.1f} s")
    print(f"alpha delivered {done:,} activities at {done / delivery_span:,.0f}/s over the run "
          f"(publish rate {published / span:,.0f}/s: ratio "
          f"{done / delivery_span / max(published / span, 1e-9):.2f})")
    cpu_alpha = sum(row[5] for row in curve.rows)
    cpu_beta = sum(row[6] for row in curve.rows)
    print(f"CPU over the run: alpha {cpu_alpha:.1f} s ({cpu_alpha / max(published, 1) * 1e3:.2f}"
          f" ms per listing published and delivered), beta {cpu_beta:.1f} s "
          f"({cpu_beta / max(published, 1) * 1e3:.2f} ms per listing received)")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=300, help="listings published per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to publish")
    parser.add_argument("--quick", action="store_true", help="10 s at the rate (smoke run)")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 10.0) if args.quick else args.seconds
    verifies, inserts, combined = baseline()
    print(f"baseline, one core: {verifies:,.0f} Ed25519 verifications/s; {inserts:,.0f} SQLite"
          f" inserts/s (one commit each, synchronous=FULL); verify+insert {combined:,.0f}/s")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rate, seconds, Path(tmp)))


if __name__ == "__main__":
    main()
