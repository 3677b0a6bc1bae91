"""Cross-node payments in the network simulator, with the real IOU code (issue 20).

``scripts/simulate.py --trust-lines 300 --payments-per-day N [--trust-hub K]`` calls in here:

* :func:`trust_pairs` draws the trust graph: the topology's edges first (neighbours trust
  each other), then seeded pairs two or three hops apart until the count is reached; with
  ``--trust-hub K`` one node (the best connected) first opens lines with K others.
* :func:`open_lines` opens every line through the real use cases: ``propose_line`` on one
  node, the IOU worker resolves the peer and sends the signed offer, ``accept_line`` on the
  other, the countersigned answer travels back (all over the simulated transport).
* :func:`schedule_payments` makes members pay members of other nodes at seeded times with
  ``services.iou.pay_remote`` and the node's real ``IouNetwork`` (route discovery through
  neighbours' ``/iou/info``, then prepare / forward / decide / commit or release).
* :func:`payment_figures` reads the outcome of every attempt from the payer node's transfer
  row, the prepared holds at intermediate nodes from the hop rows (created → decided), and
  :func:`check_invariants` checks every node's ledger and every line's two mirrors.

Latency and hold times come from the rows' stamps, which are whole seconds (the wire format).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from meshnode.errors import ServiceError
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou import MAX_HOPS
from meshnode.protocol.timefmt import format_utc
from meshnode.services import iou, members
from meshnode.services.ledger import verify_journal
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store.iou import TransferRow
from meshnode.store.members import MemberRow
from scripts import sim_topology as topo
from scripts.sim_network import SimNode
from scripts.sim_scheduler import Scheduler

Pair = tuple[int, int]
PAYERS_PER_NODE = 2


@dataclass
class Attempt:
    """One payment the workload tried: who, how much, and what became of it."""

    src: int
    dst: int
    amount: int
    at: float
    transfer_id: str | None = None
    refused: str | None = None  # why no transfer was prepared (route search, limits)
    hops: int | None = None
    search_seconds: float = 0.0  # wall time of pay_remote (route discovery + prepare)
    gets: int = 0  # GETs the route discovery made


@dataclass
class PaymentRun:
    """The payment side of a simulation."""

    nodes: list[SimNode]
    sched: Scheduler
    pairs: list[Pair]
    lines: dict[Pair, str] = field(default_factory=dict)
    payers: dict[int, list[MemberRow]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)


# --- the trust graph ------------------------------------------------------------------------


def trust_pairs(graph: topo.Graph, count: int, rng: random.Random, hub: int = 0) -> list[Pair]:
    """``count`` distinct node pairs (a < b) that open a trust line, seeded.

    With ``hub`` > 0 the best connected node first takes lines with ``hub`` others (its
    topology neighbours first); then topology edges, then pairs two or three hops apart.
    """
    n = len(graph)
    count = min(count, n * (n - 1) // 2)
    chosen: dict[Pair, None] = {}

    def add(a: int, b: int) -> None:
        if a != b and len(chosen) < count:
            chosen.setdefault((min(a, b), max(a, b)), None)
    if hub:
        centre = max(sorted(graph), key=lambda node: len(graph[node]))
        others = sorted(graph[centre]) + rng.sample(sorted(set(graph) - graph[centre]
                                                            - {centre}), n - 1 - len(graph[centre]))
        for other in others[:hub]:
            add(centre, other)
    edges = sorted((a, b) for a in graph for b in graph[a] if a < b)
    rng.shuffle(edges)
    for a, b in edges:
        add(a, b)
    near = sorted((a, b) for a in graph for b, d in topo.within(graph, a, 3).items()
                  if a < b and d > 1)
    rng.shuffle(near)
    for a, b in near:
        add(a, b)
    while len(chosen) < count:  # a small or sparse graph: any pair
        add(rng.randrange(n), rng.randrange(n))
    return list(chosen)


def trust_graph(n: int, pairs: list[Pair]) -> topo.Graph:
    """The undirected graph of the trust lines."""
    graph: topo.Graph = {i: set() for i in range(n)}
    for a, b in pairs:
        graph[a].add(b)
        graph[b].add(a)
    return graph


# --- set-up ---------------------------------------------------------------------------------


async def open_lines(nodes: list[SimNode], sched: Scheduler, pairs: list[Pair], *,
                     limit: str) -> PaymentRun:
    """Open every line through the real proposal and acceptance; add payers on every node."""
    run = PaymentRun(nodes, sched, pairs)
    for a, b in pairs:
        line = await iou.propose_line(nodes[a].ctx, None, peer=nodes[b].url, limit_out=limit,
                                      limit_in=limit, rate="1")
        run.lines[(a, b)] = line.id
    await sched.settle(limit=2000)
    for (_, b), line_id in run.lines.items():
        await iou.accept_line(nodes[b].ctx, None, line_id)
    await sched.settle(limit=2000)
    for (a, b), line_id in run.lines.items():
        for index in (a, b):
            row = await iq.get_line(nodes[index].ctx.store.reader, line_id)
            if row is None or row.state != "active":
                raise RuntimeError(f"trust line {a}-{b} is not active on node {index}")
    for node in nodes:
        run.payers[node.index] = [
            await members.add_member(node.ctx, username=f"payeur{k}", password=None)
            for k in range(PAYERS_PER_NODE)]
    return run


# --- the workload ---------------------------------------------------------------------------


def handle(node: SimNode, username: str) -> str:
    """``username@host:port`` of a member of ``node``."""
    return f"{username}@{urlsplit(node.url).netloc}"


def schedule_payments(run: PaymentRun, rng: random.Random, count: int, start: float,
                      end: float, *, max_units: int) -> None:
    """``count`` payments at seeded times between members of two different nodes."""
    n = len(run.nodes)
    for _ in range(count):
        src = rng.randrange(n)
        dst = rng.choice([i for i in range(n) if i != src])
        attempt = Attempt(src, dst, rng.randint(100, max_units), start + rng.random()
                          * (end - start))
        run.attempts.append(attempt)
        run.sched.at(attempt.at, pay_action(run, attempt, rng.randrange(PAYERS_PER_NODE)),
                     attempt.src)


def refusal(exc: ServiceError | ValidationError) -> str:
    """A short, countable reason for a payment that could not be prepared."""
    fields = getattr(exc, "fields", None) or {}
    detail = next(iter(fields.values()), str(exc))
    return f"{type(exc).__name__}: {str(detail)[:60]}"


def pay_action(run: PaymentRun, attempt: Attempt, who: int) -> Any:
    """The scheduled action: one real ``pay_remote`` from the payer's node."""
    async def action() -> None:
        node, payee = run.nodes[attempt.src], run.nodes[attempt.dst]
        if {attempt.src, attempt.dst} & run.sched.net.offline:
            attempt.refused = "offline"
            return
        traffic = run.sched.net.traffic
        gets, started = traffic.gets, time.perf_counter()
        try:
            status = await iou.pay_remote(
                node.ctx, run.payers[attempt.src][who],
                handle(payee, run.payers[attempt.dst][who].username), attempt.amount,
                f"sim {len(run.attempts)}", network=node.runner.app[IOU_NETWORK])
        except (ServiceError, ValidationError) as exc:
            attempt.refused = refusal(exc)
        else:
            attempt.transfer_id, attempt.hops = status.id, len(status.route) - 1
        attempt.search_seconds = time.perf_counter() - started
        attempt.gets = traffic.gets - gets
        node.fed.wake_delivery()
    return action


# --- figures --------------------------------------------------------------------------------


def percentiles(values: list[float], digits: int = 1) -> dict[str, float | None]:
    """p50, p95 and max of ``values`` (None when empty), rounded to ``digits``."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": round(pick(0.5), digits), "p95": round(pick(0.95), digits),
            "max": round(ordered[-1], digits)}


def stamp_seconds(stamp: str) -> float:
    """A stored ``...Z`` stamp as POSIX seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def all_transfers(node: SimNode) -> list[TransferRow]:
    """Every transfer row a node holds (any role)."""
    return await iq.list_transfers(node.ctx.store.reader, limit=1_000_000)


def hold_peaks(rows_by_node: dict[int, list[TransferRow]]) -> dict[str, Any]:
    """Prepared holds at intermediate nodes (hop rows, from prepare to decision), swept over
    time: the most at one node and in total at the busiest second, and how long they sat.
    At equal stamps a new hold counts before a release (an upper bound at 1 s resolution)."""
    events: list[tuple[float, int, int]] = []
    held_for: list[float] = []
    for index, rows in rows_by_node.items():
        for row in rows:
            if row.role != "hop" or row.amount == 0:
                continue
            start = stamp_seconds(row.created_at)
            end = stamp_seconds(row.decided_at) if row.decided_at else float("inf")
            events += [(start, 0, index), (end, 1, index)]
            held_for.append(end - start)
    per_node: dict[int, int] = defaultdict(int)
    total = busiest_total = busiest_node = 0
    busiest_at: float | None = None
    for when, kind, index in sorted(events):
        step = 1 if kind == 0 else -1
        per_node[index] += step
        total += step
        busiest_node = max(busiest_node, per_node[index])
        if total > busiest_total:
            busiest_total, busiest_at = total, when
    return {"hop_transfers": len(held_for),
            "max_prepared_at_one_intermediate_node": busiest_node,
            "max_prepared_at_intermediate_nodes_total": busiest_total,
            "busiest_at": None if busiest_at is None else format_utc(
                datetime.fromtimestamp(busiest_at, tz=UTC)),
            "hold_seconds": percentiles([s for s in held_for if s != float("inf")])}


def reason_key(text: str) -> str:
    """A refusal reason without its amounts and account names."""
    return text.split(":")[0][:60]


async def payment_figures(run: PaymentRun) -> dict[str, Any]:
    """What became of every attempt, read from the payer node's transfer row."""
    rows_by_node = {node.index: await all_transfers(node) for node in run.nodes}
    origin = {row.id: row for rows in rows_by_node.values() for row in rows
              if row.role == "origin"}
    reasons: Counter[str] = Counter()
    states: Counter[str] = Counter()
    latency: list[float] = []
    distance = {a: topo.within(trust_graph(len(run.nodes), run.pairs), a, len(run.nodes))
                for a in range(len(run.nodes))}
    for attempt in run.attempts:
        row = origin.get(attempt.transfer_id or "")
        if row is None:
            reasons[attempt.refused or "no transfer row"] += 1
            continue
        states[row.state] += 1
        if row.reason:
            reasons[f"{row.state}: {reason_key(row.reason)}"] += 1
        if row.decided_at:
            latency.append(stamp_seconds(row.decided_at) - stamp_seconds(row.created_at))
    routed = [a for a in run.attempts if a.transfer_id is not None]
    far = sum(1 for a in run.attempts if distance[a.src].get(a.dst, MAX_HOPS + 1) > MAX_HOPS)
    degrees = Counter(x for pair in run.pairs for x in pair)
    return {
        "trust_lines": len(run.lines), "max_lines_at_one_node": max(degrees.values(), default=0),
        "attempted": len(run.attempts), "routed": len(routed),
        "route_found_rate": round(len(routed) / len(run.attempts), 3) if run.attempts else None,
        "beyond_max_hops_in_trust_graph": far,
        "committed": states["committed"],
        "commit_rate": round(states["committed"] / len(run.attempts), 3)
        if run.attempts else None,
        "final_states": dict(states), "failures": dict(reasons.most_common()),
        "hops": percentiles([float(a.hops) for a in routed if a.hops is not None]),
        "latency_seconds": percentiles(latency),
        "route_search_wall_seconds": percentiles([a.search_seconds for a in run.attempts], 3),
        "route_search_gets": percentiles([float(a.gets) for a in run.attempts]),
        "holds": hold_peaks(rows_by_node),
    }


# --- invariants -----------------------------------------------------------------------------


async def node_problems(node: SimNode) -> tuple[list[str], dict[str, tuple[int, int, int]]]:
    """One node's ledger problems, and per line: (our account balance, Σ ours, Σ theirs)."""
    ctx, problems = node.ctx, []
    verification = await verify_journal(ctx)
    if not verification.ok:
        problems.append(f"node {node.index}: ledger {verification.describe()}")
    stamp = format_utc(ctx.clock())
    for account in await ledger_store.list_accounts(ctx.store.reader):
        holds = await ledger_store.list_holds(ctx.store.reader, account.name, stamp)
        if holds:
            problems.append(f"node {node.index}: {len(holds)} holds left on {account.name}")
    prepared = [row.id for row in await all_transfers(node) if row.state == "prepared"]
    if prepared:
        problems.append(f"node {node.index}: {len(prepared)} transfers still prepared")
    views: dict[str, tuple[int, int, int]] = {}
    for line in await iq.list_lines(ctx.store.reader):
        if not line.account:
            continue
        local, peer, _ = await iq.line_totals(ctx.store.reader, line.id)
        account_row = await ledger_store.get_account(ctx.store.reader, line.account)
        views[line.id] = (account_row.balance if account_row else 0, local, peer)
    return problems, views


async def check_invariants(run: PaymentRun) -> dict[str, Any]:
    """On every node: the ledger verifies and sums to zero, no hold and no prepared transfer
    is left; every line's two mirrors agree (our Σ = their peer Σ, balances opposite)."""
    problems: list[str] = []
    sides: dict[str, list[tuple[int, tuple[int, int, int]]]] = defaultdict(list)
    for node in run.nodes:
        found, views = await node_problems(node)
        problems += found
        for line_id, view in views.items():
            sides[line_id].append((node.index, view))
    mirrored = 0
    for line_id, pair in sorted(sides.items()):
        if len(pair) != 2:
            problems.append(f"line {line_id}: active on {len(pair)} node(s)")
            continue
        (a, (bal_a, loc_a, peer_a)), (b, (bal_b, loc_b, peer_b)) = pair
        if (loc_a, peer_a) != (peer_b, loc_b) or bal_a != loc_a or bal_b != loc_b:
            problems.append(f"line {line_id} ({a}-{b}) does not mirror: {pair}")
        else:
            mirrored += 1
    return {"ok": not problems, "nodes_checked": len(run.nodes), "lines_mirrored": mirrored,
            "problems": problems[:20]}
