"""Simulate a network of meshnode communities with the real code (issue 20).

    python scripts/simulate.py --nodes 30 --topology city --days 1 [--loss 0.01]
        [--partition] [--seed 1] [--listings-per-day 1] [--svg docs/scale] --json

N real nodes (``scripts/sim_network.py``) peer along a seeded topology
(``scripts/sim_topology.py``), members publish, edit and withdraw listings at seeded times,
and the run prints one JSON document: messages per listing version against the edges within
the hop radius, reach time (p50/p95/max), partition heal time and catch-up bytes, and the
simulator's own cost. See docs/scale.md for figures and what they showed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meshnode.federation import peering
from meshnode.federation.sync import SYNC_INTERVAL
from meshnode.services import listings, members
from meshnode.store.federation import request_sync_all
from meshnode.store.listings import ListingRow, get_listing_by_object_id
from meshnode.store.members import MemberRow
from scripts import sim_bookings as bk
from scripts import sim_payments as pay
from scripts import sim_topology as topo
from scripts.sim_network import Latency, SimClock, SimNet, SimNode, shuffled, start_node
from scripts.sim_scheduler import Scheduler
from scripts.sim_setup import fast_setup

DAY = 86400.0


@dataclass
class Published:
    """One listing the workload published: where, when, and how many versions."""

    node: int
    object_id: str
    listing_id: str
    at: float
    versions: int = 1
    withdrawn: bool = False


@dataclass
class Run:
    """A simulation in progress."""

    args: argparse.Namespace
    graph: topo.Graph
    nodes: list[SimNode]
    sched: Scheduler
    authors: list[MemberRow] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    heal_at: float | None = None
    unconverged: list[dict[str, Any]] = field(default_factory=list)
    back_at: float | None = None


def draft(rng: random.Random, now: Any, n: int) -> dict[str, object]:
    """A valid ride offer departing three days after ``now``."""
    departure = (now + timedelta(days=3)).isoformat()
    return {"kind": "offer", "category": "ride", "title": f"Covoiturage numéro {n}",
            "description": "Trois places, vélo pliant accepté.",
            "price": {"mode": "amount", "amount": f"{rng.randint(1, 9)}.50"},
            "location": {"name": "Quai du Canal", "lat": 45.76, "lon": 4.83},
            "details": {"from": "Canal", "to": "Lyon", "departure": departure, "seats": 3}}


async def build(args: argparse.Namespace, root: Path) -> Run:
    """Start the nodes, peer them along the topology, create one author per node."""
    rng = random.Random(args.seed)
    graph = topo.build(args.topology, args.nodes, rng)
    clock = SimClock()
    latency = Latency(args.latency_ms_median, args.latency_ms_p95, seed=args.seed)
    net = SimNet(clock, loss=0.0, seed=args.seed, latency=latency)  # set-up without loss
    run = Run(args, graph, [], Scheduler(clock, net, [], housekeeping=args.housekeeping))
    fast = fast_setup(root, args.nodes, Path(args.key_cache) if args.key_cache else None,
                      sqlite_threads=args.sqlite_threads)
    with fast if args.fast_setup else contextlib.nullcontext():
        for i in range(args.nodes):
            run.nodes.append(await start_node(i, root, clock, net))
        for node in run.nodes:
            run.authors.append(await members.add_member(node.ctx, username="membre",
                                                        password=None))
    run.sched.nodes = run.nodes
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a < b:
                await peering.add_peer(run.nodes[a].ctx, run.nodes[b].url)
    await run.sched.settle()
    net.loss = args.loss
    return run


def schedule_workload(run: Run, start: float, end: float) -> None:
    """Listings per node per day, a third edited, a fifth withdrawn, at seeded times."""
    rng = random.Random(run.args.seed + 1)
    count = int(run.args.listings_per_day * len(run.nodes) * (end - start) / DAY)
    for n in range(count):
        index = rng.randrange(len(run.nodes))
        at = start + rng.random() * (end - start)
        edit = rng.random() < 1 / 3
        withdraw = rng.random() < 1 / 5
        run.sched.at(at, _publish(run, index, n, rng.random(), edit, withdraw), index)


def _publish(run: Run, index: int, n: int, salt: float, edit: bool, withdraw: bool) -> Any:
    async def action() -> None:
        node, author = run.nodes[index], run.authors[index]
        if index in run.sched.net.offline:
            return
        view = await listings.create_listing(
            node.ctx, author, draft(random.Random(salt), node.ctx.clock(), n))
        entry = Published(index, view.row.object_id, view.row.id, run.sched.clock.seconds())
        run.published.append(entry)
        node.fed.wake_delivery()
        if edit:
            run.sched.at(entry.at + 3600, _edit(run, entry), index)
        if withdraw:
            run.sched.at(entry.at + 6 * 3600, _withdraw(run, entry), index)
    return action


def _edit(run: Run, entry: Published) -> Any:
    async def action() -> None:
        if entry.node in run.sched.net.offline or entry.withdrawn:
            return
        await listings.update_listing(run.nodes[entry.node].ctx, run.authors[entry.node],
                                      entry.listing_id, {"title": "Trajet modifié"})
        entry.versions += 1
    return action


def _withdraw(run: Run, entry: Published) -> Any:
    async def action() -> None:
        if entry.node in run.sched.net.offline:
            return
        await listings.withdraw_listing(run.nodes[entry.node].ctx, run.authors[entry.node],
                                        entry.listing_id)
        entry.versions += 1
        entry.withdrawn = True
    return action


def schedule_partition(run: Run, start: float, hours: float) -> None:
    """Cut a third of the network off from the rest for ``hours``."""
    third = set(shuffled(list(range(len(run.nodes))), run.args.seed + 2)[: len(run.nodes) // 3])
    net = run.sched.net

    async def cut() -> None:
        net.cut = net.cut_was = third

    async def heal() -> None:
        net.cut = None
        run.heal_at = run.sched.clock.seconds()
    run.sched.at(start, cut)
    run.sched.at(start + hours * 3600, heal)


def schedule_offline(run: Run, start: float, days: float) -> int:
    """Take one node offline for ``days``; returns its index."""
    index = shuffled(list(range(len(run.nodes))), run.args.seed + 3)[0]
    net = run.sched.net

    async def leave() -> None:
        net.offline.add(index)

    async def back() -> None:
        net.offline.discard(index)
        net.watched, net.watched_bytes = index, 0
        run.back_at = run.sched.clock.seconds()
        async with run.nodes[index].ctx.store.transaction() as tx:
            await request_sync_all(tx)  # what a restart does (federation.runtime)
        run.sched.wake(index)
    run.sched.at(start, leave)
    run.sched.at(start + days * DAY, back)
    return index


def offline_figures(run: Run) -> dict[str, Any]:
    """Catch-up time and bytes of the node that came back (versions made before it did)."""
    net, traffic = run.sched.net, run.sched.net.traffic
    if run.back_at is None or net.watched is None:
        return {}
    late = [t - run.back_at for (oid, stamp, node), t in traffic.version_arrival.items()
            if node == net.watched and t >= run.back_at
            and traffic.version_seen[(oid, stamp)] < run.back_at]
    return {"offline_days": run.args.offline_days,
            "offline_catchup_seconds": round(max(late), 1) if late else 0.0,
            "offline_catchup_versions": len(late),
            "offline_catchup_bytes": net.watched_bytes}


def same_version(row: ListingRow | None, want: ListingRow | None) -> bool:
    """Whether a node holds the author's last version (versions are counted per node, so
    compare the version's time; a withdrawal is final whichever edits it skipped)."""
    if row is None or want is None:
        return False
    if want.status == "withdrawn":
        return row.status == "withdrawn"
    return (row.updated_at, row.status) == (want.updated_at, want.status)


async def converged(run: Run) -> tuple[int, int]:
    """(pairs checked, pairs where a node in the radius lacks the author's last version)."""
    limit = run.nodes[0].config.relay_hop_limit
    checked = missing = 0
    author_rows = {}
    for entry in run.published:
        author_rows[entry.object_id] = await get_listing_by_object_id(
            run.nodes[entry.node].ctx.store.reader, entry.object_id)
    for entry in run.published:
        want = author_rows[entry.object_id]
        for other in topo.within(run.graph, entry.node, limit + 1):
            if other == entry.node or topo.within(run.graph, entry.node, limit).get(other) is None:
                continue
            row = await get_listing_by_object_id(run.nodes[other].ctx.store.reader,
                                                 entry.object_id)
            checked += 1
            if not same_version(row, want):
                missing += 1
                run.unconverged.append({
                    "author": entry.node, "node": other, "published_at": entry.at,
                    "want": None if want is None else [want.updated_at, want.status],
                    "have": None if row is None else [row.updated_at, row.status]})
    return checked, missing


def measure(run: Run) -> dict[str, Any]:
    """Per-listing figures from the traffic counters and the topology."""
    limit = run.nodes[0].config.relay_hop_limit
    traffic = run.sched.net.traffic
    reach: list[float] = []
    ratios: list[float] = []
    points: list[tuple[int, float]] = []
    edges_within: list[int] = []
    nodes_within: list[int] = []
    heal: list[float] = []
    for entry in run.published:
        ball = topo.within(run.graph, entry.node, limit)
        edges = topo.edges_among(run.graph, set(ball))
        edges_within.append(edges)
        nodes_within.append(len(ball) - 1)
        per_version = traffic.per_listing.get(entry.object_id, 0) / entry.versions
        points.append((edges, per_version))
        ratios.append(per_version / max(edges, 1))
        times = [traffic.arrival.get((entry.object_id, other)) for other in ball
                 if other != entry.node]
        if times and all(t is not None for t in times):
            reach.append(max(t for t in times if t is not None) - entry.at)
    if run.heal_at is not None:  # versions made before the heal, arriving after it
        heal = [t - run.heal_at for (oid, stamp, _), t in traffic.version_arrival.items()
                if t >= run.heal_at and traffic.version_seen[(oid, stamp)] < run.heal_at]
    versions = sum(e.versions for e in run.published)
    return {
        "listings": len(run.published),
        "listing_versions": versions,
        "messages_per_listing": round(sum(traffic.per_listing.values()) / max(versions, 1), 2),
        "edges_within_hop_radius_mean": round(statistics.fmean(edges_within), 2)
        if edges_within else None,
        "nodes_within_hop_radius_mean": round(statistics.fmean(nodes_within), 2)
        if nodes_within else None,
        "messages_over_edges_max": round(max(ratios), 3) if ratios else None,
        "reach_seconds": pay.percentiles(reach),
        "reached_all_in_radius": len(reach),
        "partition_heal_seconds": round(max(heal), 1) if heal else
        (0.0 if run.heal_at is not None else None),
        "_points": points, "_reach": reach,
    }


async def open_payments(run: Run) -> pay.PaymentRun:
    """Open the trust lines through the real proposal and acceptance (set-up)."""
    rng = random.Random(run.args.seed + 4)
    pairs = pay.trust_pairs(run.graph, run.args.trust_lines, rng, hub=run.args.trust_hub)
    return await pay.open_lines(run.nodes, run.sched, pairs, limit=run.args.line_limit)


def schedule_payments(run: Run, payments: pay.PaymentRun, start: float, end: float
                      ) -> bk.BookingRun:
    """Payments and bookings per node per day across nodes, at seeded times."""
    args = run.args
    count = round(args.payments_per_day * len(run.nodes) * (end - start) / DAY)
    pay.schedule_payments(payments, random.Random(args.seed + 5), count, start, end,
                          max_units=args.max_payment)
    bookings = bk.BookingRun(run.nodes, run.sched, run.graph, payments.payers, run.authors,
                             run.published)
    count = round(args.bookings_per_day * len(run.nodes) * (end - start) / DAY)
    bk.schedule_bookings(bookings, random.Random(args.seed + 6), count,
                         start + (end - start) / 4, end)  # once some listings have spread
    return bookings


async def simulate(args: argparse.Namespace) -> dict[str, Any]:
    """Run one simulation and return its JSON document."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        run = await build(args, Path(tmp))
        payments = await open_payments(run) if args.trust_lines else None
        setup_seconds = time.perf_counter() - started
        setup_cpu = time.process_time() - cpu_started
        base = run.sched.clock.seconds()
        end = base + args.days * DAY
        if args.partition:
            schedule_partition(run, base + 3600, args.partition_hours)
            end = max(end, base + 3600 + args.partition_hours * 3600 + 3 * 3600)
        if args.offline_days:
            schedule_offline(run, base + 3600, args.offline_days)
            end = max(end, base + 3600 + args.offline_days * DAY + 3 * 3600)
        schedule_workload(run, base, end)  # over the whole scenario
        bookings = schedule_payments(run, payments, base, end) if payments else None
        run.sched.net.traffic.catchup_bytes = 0
        await run.sched.run_until(end + 2 * SYNC_INTERVAL.total_seconds())
        stepping = time.perf_counter() - started - setup_seconds
        stepping_cpu = time.process_time() - cpu_started - setup_cpu
        checked, missing = await converged(run)
        figures = measure(run) | offline_figures(run)
        if payments is not None:
            figures["payments"] = await pay.payment_figures(payments)
            figures["invariants"] = await pay.check_invariants(payments)
        if bookings is not None:
            figures["bookings"] = await bk.booking_figures(bookings)
        traffic = run.sched.net.traffic
        for node in run.nodes:
            await node.runner.cleanup()
    wall = time.perf_counter() - started
    simulated_hours = max(run.sched.clock.seconds() - base, 1.0) / 3600
    return {
        "nodes": args.nodes, "topology": args.topology, "seed": args.seed,
        "days": args.days, "loss": args.loss, "partition": args.partition,
        "edges": topo.edge_count(run.graph),
        **figures,
        "converged_pairs": checked, "unconverged_pairs": missing,
        "_unconverged": run.unconverged[:20], "_cut": sorted(run.sched.net.cut_was),
        "posts": traffic.posts, "gets": traffic.gets, "lost": traffic.lost,
        "lost_in_flight": traffic.lost_in_flight, "rejected": traffic.rejected,
        "refused": traffic.refused, "not_modified": traffic.not_modified,
        "post_bytes": traffic.post_bytes,
        "catchup_bytes": traffic.catchup_bytes,
        "catchup_period_seconds": SYNC_INTERVAL.total_seconds(),
        "latency_ms": {"median": args.latency_ms_median, "p95": args.latency_ms_p95},
        "rounds": run.sched.rounds, "node_steps": sum(run.sched.steps.values()),
        "messages_delivered": run.sched.delivered,
        "setup_seconds": round(setup_seconds, 1),
        "setup_ms_per_node": round(1000 * setup_seconds / args.nodes, 1),
        "setup_cpu_seconds": round(setup_cpu, 1),  # this process only (not the key maker)
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "run_seconds": round(wall - setup_seconds, 1),
        "ms_per_node_per_simulated_hour": round(
            1000 * stepping / args.nodes / simulated_hours, 2),
        # what a quiet machine reproduces: wall times stretch with other processes' load
        "cpu_ms_per_node_per_simulated_hour": round(
            1000 * stepping_cpu / args.nodes / simulated_hours, 2),
        "setup_cpu_ms_per_node": round(1000 * setup_cpu / args.nodes, 1),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "wall_seconds": round(wall, 1),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--topology", choices=topo.TOPOLOGIES, default="geometric")
    parser.add_argument("--days", type=float, default=1 / 24)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--partition", action="store_true")
    parser.add_argument("--partition-hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--listings-per-day", type=float, default=24.0)
    parser.add_argument("--offline-days", type=float, default=0.0,
                        help="one node offline this long, then its catch-up is measured")
    parser.add_argument("--trust-lines", type=int, default=0,
                        help="open this many trust lines, then members pay across nodes")
    parser.add_argument("--trust-hub", type=int, default=0,
                        help="the best connected node first opens lines with this many")
    parser.add_argument("--payments-per-day", type=float, default=24.0,
                        help="cross-node payments per node per day (with --trust-lines)")
    parser.add_argument("--bookings-per-day", type=float, default=0.0,
                        help="cross-node ride bookings per node per day (with --trust-lines)")
    parser.add_argument("--line-limit", default="100", help="each line's limit, both ways")
    parser.add_argument("--max-payment", type=int, default=4000,
                        help="largest payment in minor units (smallest: 100)")
    parser.add_argument("--latency-ms-median", type=float, default=50.0,
                        help="one-way latency of a message, median (log-normal)")
    parser.add_argument("--latency-ms-p95", type=float, default=200.0,
                        help="one-way latency of a message, 95th percentile")
    parser.add_argument("--housekeeping", type=float, default=1800.0,
                        help="a node with nothing due is still stepped this often (seconds)")
    parser.add_argument("--key-cache", help="a file of RSA keys kept between runs (made"
                        " when missing): set-up without key generation, keys still distinct")
    parser.add_argument("--slow-setup", dest="fast_setup", action="store_false",
                        help="generate keys and run migrations per node (scripts/sim_setup.py)")
    parser.add_argument("--sqlite-threads", action="store_true",
                        help="keep aiosqlite's thread per connection (scripts/sim_setup.py)")
    parser.add_argument("--tmp", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--svg", help="write plots into this directory (e.g. docs/scale)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run and print."""
    logging.basicConfig(level=logging.CRITICAL)
    args = parse(argv)
    result = asyncio.run(simulate(args))
    if args.svg:
        from scripts.sim_svg import write_plots
        write_plots(Path(args.svg), result)
    result = {k: v for k, v in result.items() if not k.startswith("_")}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    if not result.get("invariants", {"ok": True})["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
