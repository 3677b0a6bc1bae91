"""Federation benchmark: baseline, inbox ingest, 10-node propagation, catch-up of 10,000.

Run: ``PYTHONPATH=. python scripts/bench_federation.py [--quick]``. On 127.0.0.1. Most parts
run in one process on one core (client and servers share the event loop); (2b) measures
ingest against a separate ``meshnode run`` process (one core: one event loop), the client
sending pre-signed requests, each a Create of a distinct signed listing. Ingest is the rate
of 202 answers (authenticated, durably stored); (2c) is when the node had also processed
every one of them (proof verified, listing stored and indexed, the last one found by the
search API), next to the verify+canonicalise+commit baseline measured in the same run.

``--ingest [--listings N] [--runs R] [--quick] [--profile FILE]`` runs only (2b/2c); with
``--profile`` one more run puts the node under cProfile and prints its top costs per listing.

``--replication [--rate 300] [--seconds 60] [--quick]`` runs the replication lag curve
between two ``meshnode run`` processes instead (``bench_replication.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import pstats
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey

from meshnode.app import create_app
from meshnode.config import Config, LimitsConfig
from meshnode.federation import peering
from meshnode.federation.processing import INBOX_BATCH
from meshnode.federation.runtime import WORKERS
from meshnode.protocol.activities import listing_activity
from meshnode.protocol.proofs import create_proof, verify_proof
from meshnode.protocol.signing import signed_post_headers
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.store import federation as fq
from meshnode.store.listings import get_listing_by_object_id
from meshnode.web.appkeys import CONTEXT
from scripts import ingest_budget
from tests.nodeproc import wait_healthy

RIDE: dict[str, Any] = {
    "kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
    "description": "Trois places.", "price": {"mode": "amount", "amount": "4.50"},
    "location": {"name": "Quai du Canal", "lat": 45.764, "lon": 4.8357},
    "details": {"from": "Canal", "to": "Lyon", "seats": 3,
                "departure": (datetime.now(UTC) + timedelta(days=10)).isoformat(
                    timespec="seconds")},
}

# One member publishes thousands of listings here: no hourly allowance ([limits] = 0).
NO_LIMITS = LimitsConfig(0, 0, 0)


def baseline(seconds: float = 1.0) -> tuple[float, float, float]:
    key = SigningKey(b"\x01" * 32)
    signed = key.sign(b"x" * 64)
    verify = key.verify_key
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        verify.verify(signed)
        count += 1
    verifies = count / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)")
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?)", (str(count), "x" * 2000))
            conn.execute("COMMIT")
            count += 1
        inserts = count / (time.perf_counter() - start)
        conn.close()
    combined = 1 / (1 / verifies + 1 / inserts)
    return verifies, inserts, combined


class Node:
    def __init__(self, root: Path, handle: str, **overrides: Any) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        port = sock.getsockname()[1]
        self.config = init_node(Config(data_dir=root / handle, name=handle, handle=handle,
                                       public_url=f"http://127.0.0.1:{port}", port=port,
                                       limits=NO_LIMITS, **overrides))
        self.runner: web.AppRunner | None = None

    async def start(self, run_workers: bool) -> None:
        self.runner = web.AppRunner(create_app(self.config, run_workers=run_workers),
                                    access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    @property
    def app(self) -> web.Application:
        assert self.runner is not None
        return self.runner.app

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def settle(*nodes: Node) -> None:
    for _ in range(50):
        if not sum([await n.app[WORKERS].step_all() for n in nodes]):
            return


async def ingest(root: Path, total: int) -> float:
    alpha, beta = Node(root, "alpha"), Node(root, "beta")
    await alpha.start(False)
    await beta.start(False)
    async with beta.app[CONTEXT].store.transaction() as tx:  # beta follows alpha: a peer
        await fq.insert_peer(tx, origin=alpha.config.base_url, requested=alpha.config.base_url,
                             out_state="peered", now="2026-01-01T00:00:00Z")
    ctx = alpha.app[CONTEXT]
    alice = await members.add_member(ctx, username="alice", password=None)
    view = await listings.create_listing(ctx, alice, RIDE)
    try:
        documents = _distinct_listings(ctx, alice, view.row.signed_object, total)
        url = f"{beta.config.base_url}/inbox"
        rate, _ = await _send_creates(signed_creates(ctx, alice, documents, url), url)
        return rate
    finally:
        await alpha.stop()
        await beta.stop()


def _distinct_listings(ctx: Any, alice: Any, signed: str, total: int) -> list[dict[str, Any]]:
    """``total`` distinct listings by alice, each with its own id, title and proof."""
    template = json.loads(signed)
    method = template.pop("proof")["verificationMethod"]
    seed = members.member_identity(ctx, alice).ed25519_seed
    created = datetime.now(UTC).replace(microsecond=0)
    out = []
    for n in range(total):
        document = {**template, "id": f"{template['id']}-{n}",
                    "name": f"{template['name']} lot{n:06d}"}
        out.append(create_proof(document, seed=seed, verification_method=method,
                                created=created))
    return out


def ingest_baseline(document: dict[str, Any], public_key: bytes, seconds: float = 1.0
                    ) -> tuple[float, float, float]:
    """What one core can do per listing with no server around it: parse the listing, verify
    its eddsa-jcs-2022 proof (JCS canonicalisation, SHA-256, Ed25519) and insert it (WAL,
    synchronous=FULL). Per second: (committed by batches of ``INBOX_BATCH``, as the inbox
    worker does; each committed alone, one fsync each: the disk's figure; the batched rate
    per second of this process's CPU, which other processes on the machine do not lower)."""
    body = json.dumps(document)
    rates = []
    cpu_started = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        for batch in (INBOX_BATCH, 1):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                conn.execute("BEGIN IMMEDIATE")
                for _ in range(batch):
                    verify_proof(json.loads(body), public_key=public_key)
                    conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
                conn.execute("COMMIT")
                count += batch
            rates.append(count / (time.perf_counter() - start))
            if batch == INBOX_BATCH:
                rates.append(count / (time.process_time() - cpu_started))
        conn.close()
    return rates[0], rates[2], rates[1]


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time a process (or one of its threads) used so far (``/proc``)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_processed(database: Path, total: int, start: float) -> int:
    """Wait until ``total`` remote listings are stored; the ``seq`` of the last one."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        while True:
            row = conn.execute("SELECT count(*), max(seq) FROM listings"
                               " WHERE is_local = 0").fetchone()
            if row[0] >= total:
                return int(row[1])
            if time.perf_counter() - start > 300:
                raise RuntimeError(f"only {row[0]} of {total} processed")
            await asyncio.sleep(0.02)


async def _wait_searchable(database: Path, url: str, token: str, last_seq: int,
                           start: float) -> float:
    """Seconds from the first request until the last stored listing is found by the search
    API (``GET /api/v1/listings?q=``), i.e. stored, indexed and visible."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        title = conn.execute("SELECT title FROM listings WHERE seq = ?", (last_seq,)).fetchone()[0]
    word = title.rsplit(" ", 1)[-1]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        while True:
            async with session.get(f"{url}/api/v1/listings", params={"q": word}) as response:
                found = (await response.json())["items"]
            if any(item["title"] == title for item in found):
                return time.perf_counter() - start
            if time.perf_counter() - start > 300:
                raise RuntimeError(f"{title!r} never became searchable")
            await asyncio.sleep(0.01)


async def _beta_token(config: Config) -> str:
    """A member token on the receiving node (before it runs), for the search API."""
    ctx = await NodeContext.open(config)
    try:
        await members.add_member(ctx, username="reader", password=None)
        return (await members.create_token(ctx, "reader")).secret
    finally:
        await ctx.close()


@dataclass(frozen=True)
class IngestRun:
    """One ingest run against a fresh ``meshnode run``: rates per second."""

    baseline: float  # verify+canonicalise+commit (batched commits), one core, no server
    baseline_fsync: float  # the same, one commit (fsync) per listing
    accepted: float  # 202s at the door
    processed: float  # first request -> last listing visible in search
    cpu_per_listing: float  # seconds of the node's CPU (all threads) per listing
    loop_cpu_per_listing: float  # of which its main thread's: the event loop (door, worker)
    timeline: tuple[float, float, float]  # seconds to: last 202, last stored, found by search
    budget: ingest_budget.Budget  # the required steps on the same listings, in-process
    overhead: ingest_budget.Overhead  # named steps that are not required, in-process
    http_floor: float  # µs of CPU per request of aiohttp alone (scripts/http_floor.py)
    baseline_cpu: float  # the baseline per second of CPU (batched commits)

    @property
    def ratio(self) -> float:
        """End-to-end rate as a fraction of the baseline measured in the same run."""
        return self.processed / self.baseline


async def ingest_node_process(root: Path, total: int, profile: Path | None = None
                              ) -> IngestRun:
    """Ingest measured against a real ``meshnode run`` process (its own core, its workers
    running); the client, in this process, only sends pre-signed requests. With
    ``profile``, the node runs under cProfile and writes its statistics there on exit."""
    root.mkdir(exist_ok=True)  # noqa: ASYNC240 - once, before measuring
    alpha = Node(root, "alpha2", discovery_policy="off")  # never other nodes on this machine
    await alpha.start(False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    beta = init_node(Config(data_dir=root / "beta2", name="beta2", handle="beta2",
                            public_url=f"http://127.0.0.1:{port}", port=port,
                            discovery_policy="off"))
    token = await _beta_token(beta)
    with sqlite3.connect(beta.database_path) as conn:  # beta follows alpha: a peer
        conn.execute("INSERT INTO peers (origin, requested, out_state, created_at, updated_at)"
                     " VALUES (?, ?, 'peered', '', '')", (alpha.config.base_url,) * 2)
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        [sys.executable, *profiler, "-m", "meshnode.cli", "--log-level", "WARNING", "run",
         "--data-dir", str(beta.data_dir)])
    try:
        await wait_healthy(beta.base_url)
        ctx = alpha.app[CONTEXT]
        alice = await members.add_member(ctx, username="alice", password=None)
        view = await listings.create_listing(ctx, alice, RIDE)
        documents = _distinct_listings(ctx, alice, view.row.signed_object, total)
        public_key = members.member_identity(ctx, alice).signing_key.verify_key.encode()
        base, base_fsync, base_cpu = ingest_baseline(documents[0], bytes(public_key))
        cpu_before = cpu_seconds(process.pid)
        loop_before = cpu_seconds(process.pid, process.pid)  # the main thread: the loop
        url = f"{beta.base_url}/inbox"
        requests = signed_creates(ctx, alice, documents, url)
        rate, start = await _send_creates(requests, url)
        sent = time.perf_counter() - start
        last = await _wait_processed(beta.database_path, total, start)
        stored = time.perf_counter() - start
        seconds = await _wait_searchable(beta.database_path, beta.base_url, token, last, start)
        cpu = (cpu_seconds(process.pid) - cpu_before) / total
        loop_cpu = (cpu_seconds(process.pid, process.pid) - loop_before) / total
    finally:
        process.terminate()
        process.wait(timeout=60)
        await alpha.stop()
    # The required steps on the same listings, the node stopped (not competing for the core).
    budget = await ingest_budget.measure(requests, url, documents, bytes(public_key))
    overhead = await ingest_budget.measure_overhead(requests, url, documents)
    floor = await http_floor(requests)
    return IngestRun(base, base_fsync, rate, total / seconds, cpu, loop_cpu,
                     (sent, stored, seconds), budget, overhead, floor, base_cpu)


def signed_creates(ctx: Any, alice: Any, documents: list[dict[str, Any]], url: str
                   ) -> list[tuple[bytes, dict[str, str]]]:
    """A signed Create (body, headers) of each document, by alice, for ``url``."""
    actor = f"{ctx.config.base_url}/users/alice"
    key = members.member_identity(ctx, alice).signing_key
    now = int(time.time())
    requests = []
    for n, document in enumerate(documents):
        create = listing_activity("Create", document, actor=actor, version=1,
                                  published="2026-11-26T10:00:00Z")
        create["id"] = f"{actor}/activities/bench-p-{n}"
        body = json.dumps(create).encode()
        requests.append((body, signed_post_headers("rfc9421-ed25519", url, body, key=key,
                                                   key_id=f"{actor}#ed25519-key", now=now)))
    return requests


async def http_floor(requests: list[tuple[bytes, dict[str, str]]]) -> float:
    """µs of CPU per request of aiohttp alone (``scripts/http_floor.py``: read the body,
    answer 202) for the same requests from the same client: the HTTP part of the node's
    overhead that its own code cannot remove."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        [sys.executable, "-m", "scripts.http_floor", str(port)])
    try:
        await wait_healthy(f"http://127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}/inbox"
        cpu_before = cpu_seconds(process.pid)
        await _send_creates(requests, url)
        return (cpu_seconds(process.pid) - cpu_before) / len(requests) * 1e6
    finally:
        process.terminate()
        process.wait(timeout=60)


async def _send_creates(requests: list[tuple[bytes, dict[str, str]]], url: str
                        ) -> tuple[float, float]:
    """Send the signed requests from 32 connections; (202s per second, start time)."""
    total = len(requests)
    async with aiohttp.ClientSession() as session, session.post(
            url, data=requests[0][0], headers=requests[0][1]) as response:
        assert response.status == 202, response.status  # the node fetched alice's key
    raw = [_raw_request(url, body, headers) for body, headers in requests[1:]]
    gc.collect()
    gc.freeze()  # the load generator's own garbage collections must not pace the sends
    start = time.perf_counter()
    await asyncio.gather(*(_raw_sender(url, raw) for _ in range(32)))
    return (total - 1) / (time.perf_counter() - start), start


def _raw_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 keep-alive POST, encoded up front (a load generator as light as wrk:
    aiohttp's client cost as much CPU per request as the node's inbox)."""
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()
              if name.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _raw_sender(url: str, queue: list[bytes]) -> None:
    """Send requests from ``queue`` one after another on one connection; each must get 202."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 202:
                raise RuntimeError(f"inbox answered {status}")
    finally:
        writer.close()
        await writer.wait_closed()


async def chain(root: Path, size: int, runs: int) -> list[float]:
    nodes = [Node(root / "chain", f"n{i}", relay_hop_limit=10) for i in range(size)]
    for node in nodes:
        await node.start(False)
    for left, right in itertools.pairwise(nodes):
        await peering.add_peer(left.app[CONTEXT], right.config.base_url)
        await settle(*nodes)
    for node in nodes:
        await node.stop()
    for node in nodes:
        node.sock = socket.socket()
        node.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        node.sock.bind(("127.0.0.1", node.config.port))
        await node.start(True)
    ctx = nodes[0].app[CONTEXT]
    alice = await members.add_member(ctx, username="alice", password=None)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        view = await listings.create_listing(ctx, alice, RIDE)
        pending = list(nodes[1:])
        while pending:
            await asyncio.sleep(0.005)
            pending = [n for n in pending if await get_listing_by_object_id(
                n.app[CONTEXT].store.reader, view.row.object_id) is None]
            if time.perf_counter() - start > 30:
                raise RuntimeError(f"{len(pending)} nodes never received the listing")
        times.append(time.perf_counter() - start)
    for node in nodes:
        await node.stop()
    return times


async def catch_up(root: Path, total: int) -> float:
    alpha = Node(root / "cu", "alpha", synchronous="normal")
    beta = Node(root / "cu", "beta")
    await alpha.start(False)
    await beta.start(False)
    await peering.add_peer(beta.app[CONTEXT], alpha.config.base_url)
    await settle(alpha, beta)
    ctx = alpha.app[CONTEXT]
    alice = await members.add_member(ctx, username="alice", password=None)
    for n in range(total):
        await listings.create_listing(ctx, alice, {**RIDE, "title": f"Trajet numéro {n}"})
    beta_ctx = beta.app[CONTEXT]
    async with beta_ctx.store.transaction() as tx:
        await tx.execute("UPDATE peers SET sync_due = 1")
    start = time.perf_counter()
    await beta.app[WORKERS].sync.step()
    elapsed = time.perf_counter() - start
    async with beta_ctx.store.reader.execute(
            "SELECT count(*) FROM listings WHERE is_local = 0") as cursor:
        row = await cursor.fetchone()
    if row is None or row[0] != total:
        raise RuntimeError(f"catch-up stored {row[0] if row else 0} of {total}")
    await alpha.stop()
    await beta.stop()
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def print_profile(path: Path, listings: int, top: int = 25) -> None:
    """The node's own time per listing, most expensive functions first (cProfile)."""
    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tottime for _, _, tottime, _, _ in entries.values())
    print(f"profile of the node: {total / listings * 1e6:,.0f} µs of CPU per listing "
          "(cProfile overhead included); own time (tottime) / cumulative, µs per listing:")
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (filename, line, name), (_, calls, tottime, cumtime, _) in ranked:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        print(f"  {tottime / listings * 1e6:8.1f} {cumtime / listings * 1e6:9.1f}"
              f"  {calls / listings:7.2f} calls  {where[:90]}")


async def ingest_mode(listings_count: int, runs: int, profile: Path | None) -> None:
    """``--ingest``: end-to-end ingest only, ``runs`` fresh nodes, median printed."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = [await ingest_node_process(root / f"run{n}", listings_count)
                   for n in range(runs)]
        if profile is not None:
            await ingest_node_process(root / "profiled", listings_count, profile)
    for n, run in enumerate(results):
        print(f"  run {n + 1}: baseline {run.baseline:,.0f}/s, accepted {run.accepted:,.0f}/s,"
              f" processed {run.processed:,.0f}/s ({run.ratio:.2f} × baseline), node CPU "
              f"{run.cpu_per_listing * 1e6:,.0f} µs per listing (event loop "
              f"{run.loop_cpu_per_listing * 1e6:,.0f}, other threads "
              f"{(run.cpu_per_listing - run.loop_cpu_per_listing) * 1e6:,.0f});"
              f" load {os.getloadavg()[0]:.1f}; last 202 after "
              f"{run.timeline[0]:.2f} s, all stored {run.timeline[1]:.2f} s, found by search "
              f"{run.timeline[2]:.2f} s; required steps {run.budget.total:,.0f} µs")
    median = sorted(results, key=lambda run: run.processed)[len(results) // 2]
    print(f"(2b/2c) ingest of {listings_count:,} distinct signed Creates into a `meshnode run`"
          f" (median of {runs} fresh nodes by end-to-end rate):")
    print(f"  verify+canonicalise+commit baseline, one core: {median.baseline:,.0f}/s committed"
          f" by batches of {INBOX_BATCH} ({median.baseline_fsync:,.0f}/s with one fsync each)")
    print(f"  accepted at the door (202): {median.accepted:,.0f}/s")
    print(f"  processed end to end (first request -> last listing visible in search via the "
          f"API): {median.processed:,.0f}/s   (target ≥ 1,500/s)")
    print(f"  ratio processed / baseline: {median.ratio:.2f}   (target ≥ 0.30)")
    print(f"  the node's CPU (door and worker, all threads): "
          f"{median.cpu_per_listing * 1e6:,.0f} µs per listing, of which the event loop's "
          f"thread (door and worker) {median.loop_cpu_per_listing * 1e6:,.0f} µs, SQLite's "
          f"threads {(median.cpu_per_listing - median.loop_cpu_per_listing) * 1e6:,.0f} µs")
    node_cpu = median.cpu_per_listing * 1e6
    for line in median.budget.lines(node_cpu, median.baseline_cpu):
        print(line)
    rest = node_cpu - median.budget.total - median.overhead.total
    for line in median.overhead.lines(rest, median.http_floor):
        print(line)
    if profile is not None:
        print_profile(profile, listings_count)
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


async def main(quick: bool) -> None:
    verifies, inserts, combined = baseline()
    print(f"(1) baseline, one core: {verifies:,.0f} Ed25519 verifications/s; "
          f"{inserts:,.0f} SQLite inserts/s (one commit each, synchronous=FULL); "
          f"verify+insert {combined:,.0f}/s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rate = await ingest(root, 500 if quick else 3000)
        print(f"(2) inbox ingest of signed Create activities over HTTP: {rate:,.0f}/s "
              f"({rate / combined:.2f} × the verify+insert baseline) [client and node share "
              "one event loop]")
        total = 500 if quick else 3000
        runs = sorted([await ingest_node_process(root / f"run{n}", total) for n in range(3)],
                      key=lambda run: run.processed)
        median = runs[1]
        print(f"(2b) the same against a `meshnode run` process (its workers running), median "
              f"of 3 fresh nodes: {median.accepted:,.0f}/s accepted "
              f"({median.accepted / combined:.2f} × the verify+insert baseline)")
        print(f"(2c) ... processed end to end (proof verified, stored, indexed, found by the "
              f"search API): {median.processed:,.0f}/s, {median.ratio:.2f} × the "
              f"verify+canonicalise+commit baseline of {median.baseline:,.0f}/s "
              "(targets ≥ 1,500/s, ≥ 0.30)")
        times = await chain(root, 10, 5 if quick else 20)
        print(f"(3) 10-node chain, hop limit 10: p50 {percentile(times, 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(times, 0.95) * 1000:.0f} ms ({len(times)} listings)")
        count = 1000 if quick else 10_000
        elapsed = await catch_up(root, count)
        print(f"(4) catch-up of {count:,} listings: {elapsed:.1f} s "
              f"({count / elapsed:,.0f} listings/s)")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    if "--replication" in sys.argv:  # issue 17's lag curve between two nodes: its own file
        from scripts.bench_replication import main as replication

        replication([arg for arg in sys.argv[1:] if arg != "--replication"])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--ingest", action="store_true",
                        help="only the end-to-end ingest into a `meshnode run` (2b/2c)")
    parser.add_argument("--listings", type=int, default=None,
                        help="--ingest: distinct signed Creates per run (3,000; 500 quick)")
    parser.add_argument("--runs", type=int, default=None,
                        help="--ingest: fresh nodes, median printed (3; 1 quick)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="--ingest: one more run with the node under cProfile; stats "
                             "written to this file and the top costs printed per listing")
    args = parser.parse_args()
    if args.ingest:
        asyncio.run(ingest_mode(args.listings or (500 if args.quick else 3000),
                                args.runs or (1 if args.quick else 3), args.profile))
    else:
        asyncio.run(main(args.quick))
