"""Cross-node payments in the simulator (issue 20): 12 real nodes, 30 real trust lines.

Figures are printed by ``scripts/simulate.py``; here only what must hold: the route found
rate counts real outcomes (a payment beyond every line's limit is not routed), and after the
run every ledger sums to zero, every line's two mirrors agree and no hold is left.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from scripts import sim_payments as pay
from scripts.simulate import build, open_payments, parse, simulate


async def test_sim_payments__route_found_rate_counts_real_outcomes_and_invariants_hold(
) -> None:
    # Given 12 nodes and 30 trust lines of 10.00 each way, opened by proposal and acceptance
    args = parse(["--nodes", "12", "--topology", "geometric", "--seed", "3",
                  "--listings-per-day", "0", "--trust-lines", "30", "--line-limit", "10"])
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        run = await build(args, Path(tmp))
        try:
            payments = await open_payments(run)
            assert len(payments.lines) == 30
            start = run.sched.clock.seconds() + 1
            # When six random payments within the limits are made, then one beyond every line
            pay.schedule_payments(payments, random.Random(1), 6, start, start + 300,
                                  max_units=500)
            huge = pay.Attempt(src=0, dst=5, amount=100_000, at=start + 400)
            payments.attempts.append(huge)
            run.sched.at(huge.at, pay.pay_action(payments, huge, 0))
            await run.sched.run_until(start + 900)
            figures = await pay.payment_figures(payments)
            invariants = await pay.check_invariants(payments)
        finally:
            for node in run.nodes:
                await node.runner.cleanup()
    # Then the huge payment was refused before anything was held, and counted as not routed
    assert huge.transfer_id is None
    assert huge.refused is not None
    assert "capacity" in huge.refused
    assert figures["attempted"] == 7
    assert figures["routed"] == sum(1 for a in payments.attempts if a.transfer_id)
    assert figures["routed"] <= 6
    assert figures["route_found_rate"] == round(figures["routed"] / 7, 3)
    assert figures["committed"] > 0
    assert sum(figures["failures"].values()) + figures["committed"] == 7
    # And every ledger sums to zero, every line mirrors, nothing is left prepared or held
    assert invariants["ok"], invariants["problems"]
    assert invariants["lines_mirrored"] == 30


async def test_sim_payments__bookings_are_paid_over_trust_lines_and_reported() -> None:
    # Given 12 nodes publishing rides, 30 trust lines, payments and bookings for an hour
    result = await simulate(parse([
        "--nodes", "12", "--topology", "geometric", "--seed", "3", "--days", str(1 / 24),
        "--trust-lines", "30", "--payments-per-day", "24", "--bookings-per-day", "24"]))
    # Then the JSON carries payments, bookings and invariants from real outcomes
    payments, bookings = result["payments"], result["bookings"]
    assert payments["attempted"] == 12
    assert payments["route_found_rate"] == round(payments["routed"] / 12, 3)
    assert bookings["booked"] > 0
    # And every booking the author accepted had its price paid through the lines
    accepted = bookings["deal_states_at_booker"].get("accepted", 0)
    assert accepted > 0
    assert bookings["payments_at_booker"].get("accept: paid", 0) == accepted
    assert result["invariants"]["ok"], result["invariants"]["problems"]
