"""Cross-node bookings in the network simulator, through the real deal flow (issue 20).

``scripts/simulate.py --trust-lines N --bookings-per-day B`` calls in here. At seeded times a
member of a node that holds another community's ride (it arrived by federation) books a seat
with ``services.deals.book``; the signed ``Offer`` travels to the author's node; ten minutes
later the author accepts with ``services.deals.act``; the acceptance makes the price due on
the booker's node, whose deal worker pays it over the trust lines (``pay_remote``). What
became of each booking is read from the booker's deal row and its payment row.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshnode.errors import ServiceError
from meshnode.protocol.errors import ValidationError
from meshnode.services import deals
from meshnode.store import deals as deal_store
from meshnode.store.listings import get_listing_by_object_id
from meshnode.store.members import MemberRow
from scripts import sim_topology as topo
from scripts.sim_network import SimNode
from scripts.sim_scheduler import Scheduler

ACCEPT_AFTER = 600.0


class Listing(Protocol):
    """What the listing workload records of a published listing."""

    node: int
    object_id: str
    withdrawn: bool


@dataclass
class Booking:
    """One booking the workload tried."""

    booker_node: int
    author_node: int
    agreement_id: str | None = None
    refused: str | None = None


@dataclass
class BookingRun:
    """The booking side of a simulation."""

    nodes: list[SimNode]
    sched: Scheduler
    graph: topo.Graph
    bookers: dict[int, list[MemberRow]]
    authors: list[MemberRow]
    published: list[Any]  # the listing workload's entries (simulate.Published)
    bookings: list[Booking] = field(default_factory=list)


def schedule_bookings(run: BookingRun, rng: random.Random, count: int, start: float,
                      end: float) -> None:
    """``count`` bookings at seeded times (each picks a listing when it happens)."""
    for _ in range(count):
        at = start + rng.random() * (end - start)
        run.sched.at(at, _book(run, random.Random(rng.random())))


def _book(run: BookingRun, rng: random.Random) -> Any:
    async def action() -> None:
        live = [e for e in run.published if not e.withdrawn]
        if not live:
            return
        entry = rng.choice(live)
        near = sorted(n for n in topo.within(run.graph, entry.node, 2) if n != entry.node)
        if not near:
            return
        booking = Booking(rng.choice(near), entry.node)
        run.bookings.append(booking)
        node = run.nodes[booking.booker_node]
        row = await get_listing_by_object_id(node.ctx.store.reader, entry.object_id)
        if row is None:
            booking.refused = "listing not on the booker's node"
            return
        try:
            deal = await deals.book(node.ctx, rng.choice(run.bookers[booking.booker_node]),
                                    row.id, {"quantity": 1})
        except (ServiceError, ValidationError) as exc:
            booking.refused = f"{type(exc).__name__}: {str(exc)[:50]}"
            return
        booking.agreement_id = deal.agreement_id
        node.fed.wake_delivery()
        run.sched.at(run.sched.clock.seconds() + ACCEPT_AFTER, _accept(run, booking),
                     booking.author_node)
    return action


def _accept(run: BookingRun, booking: Booking) -> Any:
    async def action() -> None:
        node = run.nodes[booking.author_node]
        deal = await deal_store.deal_by(node.ctx.store.reader, "agreement_id",
                                        str(booking.agreement_id))
        if deal is None or deal.state != "requested":
            return
        try:
            await deals.act(node.ctx, run.authors[booking.author_node], deal.id, "accept")
        except (ServiceError, ValidationError) as exc:
            booking.refused = f"accept: {type(exc).__name__}: {str(exc)[:50]}"
        node.fed.wake_delivery()
    return action


async def booking_figures(run: BookingRun) -> dict[str, Any]:
    """Counts: booked, the booker's deal states and price payment states, refusals."""
    states: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for booking in run.bookings:
        if booking.refused:
            refused[booking.refused] += 1
        if booking.agreement_id is None:
            continue
        db = run.nodes[booking.booker_node].ctx.store.reader
        deal = await deal_store.deal_by(db, "agreement_id", booking.agreement_id)
        if deal is None:
            states["missing"] += 1
            continue
        states[deal.state] += 1
        for payment in await deal_store.payments_of(db, deal.id):
            paid[f"{payment.action}: {payment.state}"] += 1
    return {"attempted": len(run.bookings),
            "booked": sum(1 for b in run.bookings if b.agreement_id),
            "deal_states_at_booker": dict(states), "payments_at_booker": dict(paid),
            "refused": dict(refused.most_common())}
