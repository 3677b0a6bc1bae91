"""A small simulated network (issue 20): 12 real nodes, one simulated hour, invariants only.

The simulator (``scripts/simulate.py``) runs the real nodes; only the HTTP hop goes through
its simulated network. Figures and timings are printed by the script, never asserted here.
"""

from __future__ import annotations

from typing import Any

from scripts.simulate import parse, simulate

# Timings, and byte counts: ports and key ids are random, so URLs differ by a few characters.
VOLATILE = ("wall_seconds", "setup_seconds", "post_bytes", "catchup_bytes", "_points",
            "setup_ms_per_node", "run_seconds", "ms_per_node_per_simulated_hour", "load_average",
            "setup_cpu_seconds", "cpu_seconds", "cpu_ms_per_node_per_simulated_hour",
            "setup_cpu_ms_per_node")


async def _run(*extra: str) -> dict[str, Any]:
    return await simulate(parse(["--nodes", "12", "--topology", "geometric", "--days",
                                 str(1 / 24), "--seed", "3", *extra]))


async def test_simulate__listings_reach_the_hop_radius_within_the_message_bound_deterministically(
) -> None:
    # Given 12 nodes peered as a seeded geometric graph, 24 listings a day each for an hour
    first = await _run()
    # Then every listing reached every node within the hop radius, at its last version
    assert first["listings"] > 0
    assert first["reached_all_in_radius"] == first["listings"]
    assert first["converged_pairs"] > 0
    assert first["unconverged_pairs"] == 0
    # And no listing version cost more than 2 messages per edge within its radius
    assert first["messages_over_edges_max"] <= 2.0
    # And the same seed gives the same figures (timings aside)
    second = await _run()
    for key in VOLATILE:
        first.pop(key)
        second.pop(key)
    assert first == second


async def test_simulate__partitioned_third_converges_within_one_catch_up_period() -> None:
    # Given a third of the network cut off for one hour while members publish
    result = await _run("--partition", "--partition-hours", "1")
    # Then after the heal every node in each listing's radius has its last version
    assert result["unconverged_pairs"] == 0
    assert result["partition_heal_seconds"] is not None
    assert result["partition_heal_seconds"] <= result["catchup_period_seconds"]
