"""What a catch-up sync costs a hub (issue 17: the 30-minute soak's cliff at minute 28).

A hub and ``--peers`` real ``meshnode run`` nodes on 127.0.0.1, peered both ways. Then every
node stops, the hub's members publish ``--entries`` listings (in-process, into the hub's
store: its outbox log grows by that many public activities) and the peers start again all at
once: each one's start-up catch-up walks the hub's outbox from its cursor at the same time,
as the 11 nodes of the soak do when their 30-minute sync period ends together.

- ``--scenario away`` (default): the peers were away and hold none of it (the hub's
  deliveries to them are dropped): each walks the summary pages, finds the first item it
  lacks and pulls whole pages from there to the end (the worst case for the hub).
- ``--scenario held``: the hub delivers everything first (the peers hold it all), then the
  peers restart: each walks summary pages only (what an unchanged period costs).

Prints the hub's RSS before (settled), its peak (``VmHWM`` reset before, and 20 samples a
second), after (settled, once every peer's catch-up ended and the hub's queues are empty),
the catch-up's duration, the hub's CPU seconds, and the outbox requests it served (from its
access log: summary and full pages, statuses, bytes). ``--rounds N`` restarts the peers again
with their cursor at 0 (the same hub; from round 2 they hold everything: summary pages only).

    PYTHONPATH=. python scripts/bench_catchup.py [--entries 6000] [--peers 10]
        [--scenario away|held] [--rounds 2] [--keep-log DIR]

A/B against another checkout: run this file from that checkout's directory (``cd B &&
PYTHONPATH=. B/.venv/bin/python path/to/bench_catchup.py``): the nodes run the code of the
working directory (``tests/memload.py``'s ``REPO``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from meshnode.config import DATABASE_FILE
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from meshnode.store.outbox import BODY
from tests.memload import (
    MemNode,
    api,
    listing_body,
    proc_mb,
    reset_peak,
    settled_rss,
    setup_node,
    wait_healthy,
)
from tests.nodeproc import free_port

ACCESS = re.compile(r'"GET (?P<path>\S*/outbox\S*) HTTP/[\d.]+" (?P<status>\d{3}) (?P<size>\d+|-)')
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def node_argv(node: MemNode, *, access_log: bool) -> list[str]:
    """``meshnode run`` (the hub with its access log: INFO lines of ``aiohttp.access``)."""
    level = "INFO" if access_log else "WARNING"
    extra = ["--access-log"] if access_log else []
    return [sys.executable, "-m", "meshnode.cli", "--log-level", level, "run", "--data-dir",
            str(node.config.data_dir), *extra]


def start(node: MemNode, *, access_log: bool = False) -> subprocess.Popen[bytes]:
    """Start ``node`` (its log appended next to its data directory)."""
    with node.log_path.open("ab") as log:
        return subprocess.Popen(node_argv(node, access_log=access_log), cwd=os.getcwd(),
                                env={**os.environ, "PYTHONPATH": os.getcwd()},
                                stdout=subprocess.DEVNULL, stderr=log)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait for each."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


def db(node: MemNode) -> sqlite3.Connection:
    """A connection to ``node``'s database (WAL: reads beside the running node)."""
    connection = sqlite3.connect(node.config.data_dir / DATABASE_FILE, timeout=30)
    return connection


def scalar(node: MemNode, sql: str, params: tuple[object, ...] = ()) -> int:
    """One integer from ``node``'s database."""
    with db(node) as connection:
        row = connection.execute(sql, params).fetchone()
    return int(row[0] or 0) if row else 0


async def peer_all(http: aiohttp.ClientSession, hub: MemNode, peers: list[MemNode]) -> None:
    """Peer the hub with every peer both ways (as ``bench_memory`` does)."""
    for peer in peers:
        await api(http, hub, "POST", "/api/v1/peers", {"target": peer.url})
        await api(http, peer, "POST", "/api/v1/peers", {"target": hub.url})
    wanted = {peer.url for peer in peers}
    for _ in range(240):
        listed = (await api(http, hub, "GET", "/api/v1/peers"))["peers"]
        assert isinstance(listed, list)
        done = {p["peer"] for p in listed if p["ours"] == "peered" and p["theirs"] == "accepted"}
        if wanted <= done:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("peering incomplete after 120 s")


async def publish(hub: MemNode, entries: int) -> None:
    """``entries`` listings by the hub's admin, in-process (the hub is stopped)."""
    ctx = await NodeContext.open(hub.config)
    try:
        alice = await members.get_member(ctx, "alice")
        for start_at in range(0, entries, 50):
            await asyncio.gather(*(listings.create_listing(ctx, alice, listing_body(number))
                                   for number in range(start_at, min(entries, start_at + 50))))
    finally:
        await ctx.close()


def pending(node: MemNode) -> int:
    """Deliveries still queued on ``node``."""
    return scalar(node, "SELECT count(*) FROM deliveries WHERE state = 'pending'")


def caught_up(peer: MemNode, hub: MemNode, since: str) -> bool:
    """Whether ``peer``'s pull from the hub ended (well or not) after ``since``."""
    with db(peer) as connection:
        row = connection.execute(
            "SELECT sync_due, last_sync_at, last_sync_attempt_at FROM peers WHERE origin = ?",
            (hub.url,)).fetchone()
    if row is None or row[0]:
        return False
    return max(row[1] or "", row[2] or "") >= since


@dataclass
class Sampler:
    """The hub's RSS, sampled 20 times a second while the catch-up runs."""

    pid: int
    samples: list[float] = field(default_factory=list)

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.samples.append(proc_mb(self.pid))
            await asyncio.sleep(0.05)


def served(log: Path, offset: int) -> dict[str, Counter[str]]:
    """Outbox requests in the hub's access log after ``offset``: counts and bytes."""
    counts: dict[str, Counter[str]] = {"requests": Counter(), "bytes": Counter(),
                                       "status": Counter()}
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    for match in ACCESS.finditer(text):
        kind = "summary" if "summary=1" in match["path"] else (
            "full" if "after=" in match["path"] else "collection")
        counts["requests"][kind] += 1
        counts["status"][f"{kind} {match['status']}"] += 1
        if match["size"] != "-":
            counts["bytes"][kind] += int(match["size"])
    return counts


async def one_round(hub: MemNode, hub_proc: subprocess.Popen[bytes], peers: list[MemNode],
                    number: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Start every peer at once; print what their catch-up cost the hub."""
    before = await settled_rss(hub_proc.pid, seconds=10.0)
    offset = hub.log_path.stat().st_size
    reset_peak(hub_proc.pid)
    cpu = cpu_seconds(hub_proc.pid)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    started = time.monotonic()
    procs = [start(peer) for peer in peers]
    done = asyncio.Event()
    sampler = Sampler(hub_proc.pid)
    sampling = asyncio.create_task(sampler.run(done))
    waiting = [True] * len(peers)
    while time.monotonic() - started < seconds:
        waiting = [not caught_up(peer, hub, since) for peer in peers]
        if not any(waiting):
            break
        await asyncio.sleep(0.25)
    took = time.monotonic() - started
    queue_wait = time.monotonic()
    while pending(hub) and time.monotonic() - queue_wait < 60:  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.5)
    done.set()
    await sampling
    after = await settled_rss(hub_proc.pid, seconds=10.0)
    peak = max(proc_mb(hub_proc.pid, "VmHWM"), *sampler.samples)
    counts = served(hub.log_path, offset)
    print(f"   round {number}: {took:.1f} s for {len(peers) - sum(waiting)}/{len(peers)} peers"
          f" to catch up{' (TIMED OUT)' if any(waiting) else ''}; hub RSS before"
          f" {before:.1f} MB, peak {peak:.1f} (+{peak - before:.1f}), after {after:.1f}"
          f" (+{after - before:.1f}, {after / before:.3f} x); hub CPU"
          f" {cpu_seconds(hub_proc.pid) - cpu:.1f} s; queue left {pending(hub)}")
    for kind in ("summary", "full"):
        megabytes = counts["bytes"][kind] / 2**20
        print(f"     {kind:>7} pages served: {counts['requests'][kind]:>5},"
              f" {megabytes:7.1f} MB")
    print(f"     statuses: {dict(sorted(counts['status'].items()))}")
    errors = [peer.config.handle for peer in peers if scalar(
        peer, "SELECT count(*) FROM peers WHERE origin = ? AND last_error IS NOT NULL",
        (hub.url,))]
    if errors:
        print(f"     peers whose pull ended in an error: {errors}")
    return procs


async def bench(tmp: Path, args: argparse.Namespace) -> None:
    """Build the network, publish on the hub, then ``rounds`` catch-ups of every peer."""
    hub = await setup_node(tmp / "hub", free_port(), handle="hub")
    peers = [await setup_node(tmp / f"peer{n}", free_port(), handle=f"peer{n}")
             for n in range(args.peers)]
    procs = [start(node) for node in (hub, *peers)]
    try:
        for node, proc in zip((hub, *peers), procs, strict=True):
            await wait_healthy(node.url, proc, seconds=180)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await peer_all(http, hub, peers)
        await asyncio.sleep(3)  # the peering catch-ups end
    finally:
        stop(procs)
    built = time.monotonic()
    await publish(hub, args.entries)
    outbox = scalar(hub, "SELECT count(*) FROM outbox_activities WHERE public = 1")
    size = scalar(hub, f"SELECT sum(length({BODY})) FROM outbox_activities"
                       " WHERE public = 1")  # relayed Announces: with their listing's text
    print(f"   hub outbox: {outbox} public activities, {size / 2**20:.1f} MB of JSON"
          f" ({size / max(outbox, 1):.0f} B each); published in {time.monotonic() - built:.0f} s")
    if args.scenario == "away":
        with db(hub) as connection:
            connection.execute("DELETE FROM deliveries WHERE state = 'pending'")
    hub_proc = start(hub, access_log=True)
    procs = [hub_proc]
    try:
        await wait_healthy(hub.url, hub_proc, seconds=60)
        if args.scenario == "held":
            peer_procs = [start(peer) for peer in peers]
            procs += peer_procs
            started = time.monotonic()
            while pending(hub) and time.monotonic() - started < 600:  # noqa: ASYNC110
                await asyncio.sleep(1)
            print(f"   held: the hub delivered to every peer in {time.monotonic() - started:.0f} s"
                  f" ({pending(hub)} left)")
            await asyncio.sleep(5)
            stop(peer_procs)
        for number in range(1, args.rounds + 1):
            peer_procs = await one_round(hub, hub_proc, peers, number, args.timeout)
            stop(peer_procs)
            for peer in peers:  # the next round walks the whole outbox again (held now)
                with db(peer) as connection:
                    connection.execute("UPDATE peers SET sync_cursor = 0 WHERE origin = ?",
                                       (hub.url,))
    finally:
        stop(procs)
        if args.keep_log:
            print(f"   hub log kept: {keep_log(hub, Path(args.keep_log))}")


def keep_log(node: MemNode, folder: Path) -> Path:
    """Copy ``node``'s log (its access log too) into ``folder``; the copy's path."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(node.log_path, folder / f"{node.config.handle}.log"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=6000, help="listings the hub publishes")
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--scenario", choices=("away", "held"), default="away")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a round may take")
    parser.add_argument("--keep-log", default=None, help="copy the hub's log to this directory")
    args = parser.parse_args()
    print(f"catch-up of {args.peers} peers from a hub with {args.entries} listings"
          f" ({args.scenario}), code in {os.getcwd()}; load average"
          f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="meshnode-catchup-") as tmp:
        asyncio.run(bench(Path(tmp), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
