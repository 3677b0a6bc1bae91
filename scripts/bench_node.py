#!/usr/bin/env python3
"""Benchmark a real ``meshnode run`` process: publishing, search at scale, memory.

Prints: listings created and signed per second through the JSON API; FTS search latency
p50/p95 over HTTP with N listings (default 100,000); idle RSS and RSS after the benchmark.
Targets (2-core machine): search p95 < 50 ms at 100k listings; idle RSS < 50 MB (issue 17;
scripts/bench_memory.py breaks it down).

    python scripts/bench_node.py [--listings 100000] [--api-listings 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from meshnode import urls
from meshnode.config import Config, LimitsConfig
from meshnode.protocol.listings import CurrencyRef, build_proposal, parse_listing_input
from meshnode.protocol.proofs import create_proof
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.services.listings import _columns
from meshnode.services.node import init_node

WORDS = [
    "vélo", "perceuse", "lasagnes", "pommes", "covoiturage", "canapé", "tondeuse", "couture",
    "confiture", "bicycle", "drill", "ladder", "soup", "jardin", "échelle", "livres", "cours",
    "guitare", "tarte", "légumes", "poussette", "tente", "raquette", "ordinateur",
    "réparation", "plomberie",
]
CATEGORY_DETAILS = {
    "give": {}, "swap": {"wanted": "livres"}, "sell": {"quantity": 1},
    "service": {"skill": "couture"}, "lend": {},
    "produce": {"quantity": "2", "unit": "kg"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def start_node(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING", "run",
         "--data-dir", str(data_dir), "--port", str(port)],
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("node did not start")


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


async def make_member(config: Config) -> str:
    ctx = await NodeContext.open(config)
    try:
        await members.add_member(ctx, username="alice", password="benchmark password")
        return (await members.create_token(ctx, "alice")).secret
    finally:
        await ctx.close()


def random_listing(rng: random.Random, now: datetime) -> dict[str, object]:
    category = rng.choice(list(CATEGORY_DETAILS))
    words = rng.sample(WORDS, 3)
    return {
        "kind": rng.choice(("offer", "offer", "request")),
        "category": category,
        "title": f"{words[0].capitalize()} {words[1]} {secrets.token_hex(2)}",
        "description": f"Bonjour, {' '.join(rng.sample(WORDS, 8))}. Contact via le site.",
        "price": rng.choice(({"mode": "free"}, {"mode": "amount", "amount": "5"})),
        "location": {"name": "Lyon", "lat": 45.76 + rng.uniform(-0.3, 0.3),
                     "lon": 4.83 + rng.uniform(-0.3, 0.3)},
        "details": CATEGORY_DETAILS[category],
        "expires_at": (now + timedelta(days=300)).isoformat(),
    }


async def bench_api_create(url: str, token: str, count: int, concurrency: int) -> float:
    rng = random.Random(1)
    now = datetime.now(UTC)
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for _ in range(count):
        queue.put_nowait(random_listing(rng, now))

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(f"{url}/api/v1/listings", json=body, headers=headers) as resp:
                if resp.status != 201:
                    raise SystemExit(f"create failed: {resp.status} {await resp.text()}")

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


def seed_listings(config: Config, count: int) -> float:
    """Insert ``count`` properly signed listings straight into the database (node stopped)."""
    started = time.perf_counter()
    ctx_config = config
    identity_seed = asyncio.run(_alice_seed(ctx_config))
    rng = random.Random(2)
    now = datetime.now(UTC).replace(microsecond=0)
    currency = CurrencyRef(urls.currency_uri(config.base_url), "G", 2)
    actor = urls.member_actor(config.base_url, "alice")
    conn = sqlite3.connect(config.database_path)
    member_id = conn.execute("SELECT id FROM members WHERE username='alice'").fetchone()[0]
    batch: list[tuple[object, ...]] = []
    for number in range(count):
        published = now - timedelta(seconds=count - number)
        draft = parse_listing_input(random_listing(rng, now), now=published, decimals=2)
        listing_id = secrets.token_hex(8)
        object_id = urls.listing_object(config.base_url, listing_id)
        doc = build_proposal(draft, object_id=object_id, actor_id=actor, published=published,
                             updated=None, currency=currency)
        signed = json.dumps(create_proof(doc, seed=identity_seed,
                                         verification_method=urls.ed25519_key_id(actor),
                                         created=published), separators=(",", ":"))
        c = _columns(draft, 2)
        stamp = published.strftime("%Y-%m-%dT%H:%M:%SZ")
        batch.append((listing_id, object_id, member_id, actor, config.base_url, 1, c.kind,
                      c.category, c.status, c.title, c.description, c.price_mode,
                      c.price_amount, c.price_period, c.location_name, c.lat, c.lon, c.details,
                      c.expires_at, stamp, stamp, signed))
        if len(batch) == 5000 or number == count - 1:
            conn.executemany(
                "INSERT INTO listings (id, object_id, author_id, author_uri, origin, is_local,"
                " kind, category, status, title, description, price_mode, price_amount,"
                " price_period, location_name, lat, lon, details, expires_at, published_at,"
                " updated_at, version, signed_object)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?)", batch)
            conn.commit()
            batch.clear()
    conn.execute("PRAGMA optimize")
    conn.close()
    return time.perf_counter() - started


async def _alice_seed(config: Config) -> bytes:
    ctx = await NodeContext.open(config)
    try:
        alice = await members.get_member(ctx, "alice")
        return members.member_identity(ctx, alice).ed25519_seed
    finally:
        await ctx.close()


QUERIES = {
    "q=velo": {"q": "velo"},
    "q=rare": {"q": "plomberie guitare"},
    "category": {"category": "produce"},
    "near 5km": {"near": "45.76,4.83", "radius_km": "5"},
    "q+near+kind": {"q": "pommes", "near": "45.7,4.8", "radius_km": "10", "kind": "request"},
    "price=free": {"price": "free", "limit": "50"},
}


async def bench_search(url: str, token: str, rounds: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {name: [] for name in QUERIES}
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            for name, params in QUERIES.items():
                started = time.perf_counter()
                async with session.get(f"{url}/api/v1/listings", params=params,
                                       headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"search failed: {resp.status}")
                timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--api-listings", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        # alice publishes --api-listings through the API: no hourly allowance ([limits] = 0)
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Bench", handle="bench",
                                  public_url=f"http://127.0.0.1:{port}", port=port,
                                  limits=LimitsConfig(0, 0, 0)))
        token = asyncio.run(make_member(config))
        proc = start_node(config.data_dir, port)
        time.sleep(1.0)
        idle = rss_mb(proc.pid)
        url = f"http://127.0.0.1:{port}"
        rate = asyncio.run(bench_api_create(url, token, args.api_listings, args.concurrency))
        stop_node(proc)
        seeded = seed_listings(replace(config), args.listings)
        proc = start_node(config.data_dir, port)
        timings = asyncio.run(bench_search(url, token, args.rounds))
        after = rss_mb(proc.pid)
        stop_node(proc)
    every = [value for values in timings.values() for value in values]
    print(f"listings created+signed via API : {rate:8.0f} /s "
          f"({args.api_listings} listings, {args.concurrency} clients)")
    print(f"seeded {args.listings} signed listings in {seeded:.1f} s (direct, node stopped)")
    print(f"search over {args.listings + args.api_listings} listings, {len(every)} queries:")
    for name, values in timings.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"  {name:<14} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    print(f"  {'ALL':<14} p50 {percentile(every, 50):6.1f} ms   p95 {percentile(every, 95):6.1f} ms"
          f"   (target p95 < 50 ms)   mean {statistics.fmean(every):.1f} ms")
    print(f"idle RSS of meshnode run        : {idle:6.1f} MB (target < 50 MB;"
          " scripts/bench_memory.py breaks it down)")
    print(f"RSS after the benchmark         : {after:6.1f} MB")


if __name__ == "__main__":
    main()
