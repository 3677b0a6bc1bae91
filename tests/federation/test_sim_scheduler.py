"""The simulator's virtual time (issue 20): only nodes with due work are stepped, a message
arrives at its latency, and the latency distribution is seeded and bounded.

Real nodes on 127.0.0.1 with their own SQLite files; no timings are asserted.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from meshnode.federation import peering
from meshnode.services import listings, members
from scripts.sim_network import Latency, Message, SimClock, SimNet, SimNode, start_node
from scripts.sim_scheduler import Scheduler
from scripts.simulate import draft


def test_latency__seeded_log_normal_is_reproducible_and_within_bounds() -> None:
    # Given a latency of median 50 ms and p95 200 ms, drawn for 4,000 messages on 200 links
    latency = Latency(median_ms=50, p95_ms=200, seed=7)
    rng = random.Random(1)
    messages = [(rng.randrange(100), rng.randrange(100), f"message {n}".encode())
                for n in range(4000)]
    draws = [latency.seconds(src, dst, body) for src, dst, body in messages]
    # Then every draw lies within the distribution's bounds
    low, high = latency.bounds()
    assert all(low <= draw <= high for draw in draws)
    assert 0 < low < 0.05 < high
    # And the median and 95th percentile are the ones asked for (within sampling error)
    cuts = statistics.quantiles(draws, n=20)
    assert 0.042 <= cuts[9] <= 0.058
    assert 0.16 <= cuts[18] <= 0.24
    # And the same seed gives the same draws, another seed others
    assert draws == [latency.seconds(src, dst, body) for src, dst, body in messages]
    other = Latency(median_ms=50, p95_ms=200, seed=8)
    assert draws != [other.seconds(src, dst, body) for src, dst, body in messages]


def test_latency__refuses_a_median_above_its_p95() -> None:
    # Given a median above the 95th percentile, Then the latency cannot be built
    try:
        Latency(median_ms=300, p95_ms=200)
    except ValueError:
        return
    raise AssertionError("Latency accepted median > p95")


def _stepped(sched: Scheduler, index: int, at: float) -> bool:
    return any(kind == "step" and node == index and abs(when - at) < 1e-5
               for when, kind, node in sched.trace or ())


async def _nodes(tmp_path: Path, count: int) -> tuple[Scheduler, list[SimNode]]:
    clock = SimClock()
    net = SimNet(clock, loss=0.0, seed=5, latency=Latency(40, 300, seed=5))
    nodes = [await start_node(i, tmp_path, clock, net) for i in range(count)]
    return Scheduler(clock, net, nodes), nodes


async def test_scheduler__idle_nodes_are_not_stepped_and_a_message_arrives_at_its_latency(
        tmp_path: Path) -> None:
    # Given nodes 0 and 1 peered, node 2 peered with nobody, the network settled
    sched, nodes = await _nodes(tmp_path, 3)
    try:
        await peering.add_peer(nodes[0].ctx, nodes[1].url)
        await sched.settle()
        author = await members.add_member(nodes[0].ctx, username="membre", password=None)
        delivered: list[tuple[float, Message]] = []
        deliver = sched.net.deliver

        async def spy(message: Message) -> int | None:
            delivered.append((sched.clock.seconds(), message))
            return await deliver(message)
        sched.net.deliver = spy  # type: ignore[method-assign]
        sched.trace = []
        start = sched.clock.seconds()
        # When ten quiet minutes pass (the next catch-up is 30 minutes after the last)
        await sched.run_until(start + 600)
        # Then no node was stepped at all
        assert sched.trace == []
        # When node 0's member publishes a listing, and a minute passes

        async def publish() -> None:
            await listings.create_listing(nodes[0].ctx, author,
                                          draft(random.Random(1), nodes[0].ctx.clock(), 1))
        sched.at(start + 601, publish, 0)
        await sched.run_until(start + 660)
        # Then node 0 was stepped at once, and its Create reached node 1 after its latency
        assert _stepped(sched, 0, start + 601)
        creates = [(at, m) for at, m in delivered if b'"Create"' in m.body and m.dst == 1]
        assert len(creates) == 1
        at, message = creates[0]
        assert message.sent == pytest.approx(start + 601, abs=1e-5)
        assert at == pytest.approx(message.sent + sched.net.latency.seconds(0, 1, message.key),
                                   abs=1e-5)
        # And node 1 was stepped at that instant, and the listing reached it then
        assert _stepped(sched, 1, at)
        assert [t for (_, node), t in sched.net.traffic.arrival.items() if node == 1] == [
            pytest.approx(at, abs=1e-5)]
        # And node 2, with nothing due, was never stepped
        assert all(index != 2 for _, _, index in sched.trace)
    finally:
        for node in nodes:
            await node.runner.cleanup()
