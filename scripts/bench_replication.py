"""Replication benchmark (issue 17, "Replication keeps up"): the lag curve between two nodes.

Two real ``meshnode run`` subprocesses on 127.0.0.1, peered with ``meshnode peer add``; a
load generator (this process) publishes listings through alpha's JSON API at a fixed rate
with the tokens of several members, open loop (a slow answer does not slow the schedule).
Every second it prints: listings published (201 answered), alpha's deliveries done, the
Creates beta's inbox stored (delivered) and the listings visible on beta (processed: proof
verified, stored, indexed), both read from beta's database read-only, each with its lag
(age of the oldest published listing beta does not have yet), and the CPU each node used
in that second. At the end: the time from the last publish until beta's inbox had every
listing and until beta showed every listing, and alpha's delivery rate.

Run: ``PYTHONPATH=. python scripts/bench_federation.py --replication [--rate 300]
[--seconds 60] [--quick]`` (or this file directly). Beta's inbox quota for peers is raised
(``inbox_peer_rows_per_hour``): the default 3,600 rows an hour would answer 429 after 12 s
of this load, by design.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
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

from meshnode.config import Config, InboxLimits, LimitsConfig
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from scripts.bench_federation import baseline  # the same baseline as its part (1)
from tests.nodeproc import wait_healthy

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


def _start(config: Config, profile: Path | None = None) -> subprocess.Popen[bytes]:
    profiler = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
    return subprocess.Popen(
        [sys.executable, *profiler, "-m", "meshnode.cli", "--log-level", "WARNING", "run",
         "--data-dir", str(config.data_dir)],
        env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)


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


@dataclass(frozen=True)
class Sample:
    """One row of the curve: seconds since the load started, counts, lags and CPU."""

    at: float
    published: int
    in_inbox: int  # Creates beta's inbox stored (delivered, answered 202)
    visible: int  # listings beta processed (proof verified, stored, indexed)
    inbox_lag: float
    lag: float
    delivered: int  # alpha's delivery rows done
    cpu_alpha: float
    cpu_beta: float


@dataclass
class Curve:
    """The per-second samples and when, after the last publish, beta had everything."""

    rows: list[Sample] = field(default_factory=list)
    in_inbox_after: float | None = None
    visible_after: float = 0.0
    start: float = 0.0
    cpu: tuple[float, float] = (0.0, 0.0)  # CPU seconds of alpha and beta, load start to end


def _lag(answered: list[float], have: int, now: float) -> float:
    """Age of the oldest answered listing beta does not have (0 when it has them all)."""
    return 0.0 if have >= len(answered) else now - answered[have]


def _counts(alpha: Config, beta: Config) -> tuple[int, int, int]:
    """Beta's stored Creates, beta's remote listings, alpha's deliveries done."""
    return (_count(beta.database_path,
                   "SELECT count(*) FROM inbox_activities WHERE type = 'Create'"),
            _count(beta.database_path, "SELECT count(*) FROM listings WHERE is_local = 0"),
            _count(alpha.database_path, "SELECT count(*) FROM deliveries WHERE state = 'done'"))


async def _monitor(alpha: Config, beta: Config, pids: tuple[int, int], load: Load,
                   generator: asyncio.Task[None], limit: float) -> Curve:
    """Print a row every second; return once the generator is done and beta has it all
    (checked every 0.1 s, so the catch-up times are known to 0.1 s)."""
    curve = Curve(start=time.perf_counter())
    next_row = curve.start
    cpu = first_cpu = [_cpu_seconds(pid) for pid in pids]
    while True:
        await asyncio.sleep(0.1)
        now = time.perf_counter()
        in_inbox, visible, done = _counts(alpha, beta)
        if generator.done():
            since_last = now - max(load.answered, default=curve.start)
            if in_inbox >= len(load.answered) and curve.in_inbox_after is None:
                curve.in_inbox_after = since_last
            if visible >= len(load.answered):
                curve.visible_after = since_last
                curve.cpu = (_cpu_seconds(pids[0]) - first_cpu[0],
                             _cpu_seconds(pids[1]) - first_cpu[1])
                return curve
            if since_last > limit:
                raise RuntimeError(f"beta still misses {len(load.answered) - visible} "
                                   f"listings {limit:.0f} s after the last publish")
        if now < next_row + 1.0:
            continue
        next_row = now
        used = [_cpu_seconds(pid) for pid in pids]
        answered = sorted(load.answered)
        row = Sample(now - curve.start, len(answered), in_inbox, visible,
                     _lag(answered, in_inbox, now), _lag(answered, visible, now), done,
                     used[0] - cpu[0], used[1] - cpu[1])
        cpu = used
        curve.rows.append(row)
        print(f"{row.at:4.0f} s  published {row.published:6,}  delivered {row.delivered:6,}"
              f"  in beta's inbox {row.in_inbox:6,} (lag {row.inbox_lag:4.1f} s)  visible on "
              f"beta {row.visible:6,} (lag {row.lag:4.1f} s)  cpu alpha {row.cpu_alpha:4.0%}"
              f" beta {row.cpu_beta:4.0%}", flush=True)


async def publish_only(root: Path, rate: int, seconds: float) -> float:
    """The same-run baseline: a node without followers takes the same load; prints its
    achieved rate and returns its CPU milliseconds per listing (no delivery at all)."""
    solo = _make_node(root, "solo", limits=LimitsConfig(0, 0, 0))
    tokens = await _tokens(solo, MEMBERS)
    process = _start(solo)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            await wait_healthy(solo.base_url, tries=400)
            load = Load()
            cpu, own = _cpu_seconds(process.pid), time.process_time()
            start = time.perf_counter()
            await _generate(session, solo, tokens, rate, seconds, load)
            elapsed = time.perf_counter() - start
            used = _cpu_seconds(process.pid) - cpu
            generator = time.process_time() - own
    finally:
        process.terminate()
        process.wait(timeout=30)
    published = max(len(load.answered), 1)
    print(f"baseline, the same run: a node without followers published {published:,} "
          f"listings in {elapsed:.1f} s ({published / elapsed:,.0f}/s of {rate}/s asked), "
          f"{used / published * 1e3:.2f} ms CPU per listing; the load generator (this "
          f"process, aiohttp client) {generator / published * 1e3:.2f} ms CPU per request",
          flush=True)
    return used / published * 1e3


async def run(rate: int, seconds: float, root: Path, profile: Path | None = None) -> None:
    """Set up the two nodes, run the load, print the curve and the summary."""
    solo_ms = await publish_only(root, rate, min(seconds, 10.0))
    alpha = _make_node(root, "alpha", limits=LimitsConfig(0, 0, 0))
    beta = _make_node(root, "beta", inbox=replace(
        InboxLimits(), peer_rows_per_hour=1_000_000, peer_bytes_per_hour=4 * 1024**3))
    tokens = await _tokens(alpha, MEMBERS)
    processes = [_start(alpha, profile), _start(beta)]
    try:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_healthy(alpha.base_url, tries=400)
            await wait_healthy(beta.base_url, tries=400)
            await _peer(alpha, beta)
            load = Load()
            print(f"publishing {rate}/s for {seconds:.0f} s through alpha's API "
                  f"({MEMBERS} members), lag curve:", flush=True)
            generator = asyncio.create_task(_generate(session, alpha, tokens, rate, seconds,
                                                      load))
            curve = await _monitor(alpha, beta, (processes[0].pid, processes[1].pid), load,
                                   generator, limit=max(120.0, seconds * 3))
            await generator
        _summary(alpha, load, curve, rate, solo_ms)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _summary(alpha: Config, load: Load, curve: Curve, rate: int, solo_ms: float) -> None:
    published = len(load.answered)
    first, last = min(load.answered, default=0.0), max(load.answered, default=1.0)
    span = max(last - first, 1e-9)
    done = _count(alpha.database_path, "SELECT count(*) FROM deliveries WHERE state = 'done'")
    in_inbox_after = curve.in_inbox_after if curve.in_inbox_after is not None \
        else curve.visible_after
    delivering = last + in_inbox_after - first
    steps = [b.delivered - a.delivered for a, b in zip(curve.rows, curve.rows[1:], strict=False)]
    print(f"published {published:,} listings in {span:.1f} s ({published / span:,.0f}/s "
          f"achieved of {rate}/s asked; {load.failures} failed)")
    print(f"beta's inbox had every listing {in_inbox_after:.1f} s after the last publish "
          f"(delivery); beta showed every listing {curve.visible_after:.1f} s after it "
          f"(target ≤ 5 s); peak lag {max((r.lag for r in curve.rows), default=0.0):.1f} s "
          f"visible, {max((r.inbox_lag for r in curve.rows), default=0.0):.1f} s delivered")
    print(f"alpha delivered {done:,} activities at {done / delivering:,.0f}/s (first publish to "
          f"last delivery; publish rate {published / span:,.0f}/s, ratio "
          f"{done / delivering / (published / span):.2f}); best second {max(steps, default=0):,}")
    cpu_alpha, cpu_beta = curve.cpu
    per_listing = cpu_alpha / max(published, 1) * 1e3
    print(f"CPU over the run: alpha {cpu_alpha:.1f} s ({per_listing:.2f} ms per listing "
          f"published and delivered; publishing alone: {solo_ms:.2f} ms, so delivering "
          f"costs {per_listing - solo_ms:.2f} ms per activity), beta {cpu_beta:.1f} s "
          f"({cpu_beta / max(published, 1) * 1e3:.2f} ms per listing received and processed)")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=300, help="listings published per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to publish")
    parser.add_argument("--quick", action="store_true", help="10 s at the rate (smoke run)")
    parser.add_argument("--profile-sender", type=Path, metavar="FILE",
                        help="run alpha under cProfile, write its stats to FILE and print"
                             " the top functions by own time")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 10.0) if args.quick else args.seconds
    verifies, inserts, combined = baseline()
    print(f"baseline, one core: {verifies:,.0f} Ed25519 verifications/s; {inserts:,.0f} SQLite"
          f" inserts/s (one commit each, synchronous=FULL); verify+insert {combined:,.0f}/s")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rate, seconds, Path(tmp), args.profile_sender))
    if args.profile_sender is not None:
        stats = pstats.Stats(str(args.profile_sender))
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
