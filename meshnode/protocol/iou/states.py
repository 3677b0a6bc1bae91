"""The transfer and trust-line state machines: declared, checked at import (REFERENCE §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from meshnode.protocol.iou.vocab import LINE_CHANGES, LINE_STATES
from meshnode.protocol.statemachine import StateGraph, edge
from meshnode.protocol.timefmt import format_utc

# --- transfers ------------------------------------------------------------------------------

TRANSFER_STATES: Final = ("prepared", "committed", "released", "expired")
FINAL_STATES: Final = frozenset({"committed", "released", "expired"})
# Events: "commit" (the decider said yes), "reject" (no), "expire" (the decider said the offer
# arrived or was asked about after its expiry). Every node applies the decision it is sent
# (role "decision"); a missing edge means the message is late or repeated and is ignored.
TRANSFER_GRAPH: Final = StateGraph(
    name="transfer",
    edges={
        "prepared": {"commit": edge("committed", "decision"),
                     "reject": edge("released", "decision"),
                     "expire": edge("expired", "decision")},
        "committed": {}, "released": {}, "expired": {},
    },
    initial=frozenset({"prepared"}), terminal=FINAL_STATES, roles=frozenset({"decision"}),
)


def next_state(state: str, event: str) -> str | None:
    """The state after ``event``, or None when the event must be ignored (idempotency)."""
    return TRANSFER_GRAPH.next_state(state, event, "decision")


# --- trust lines ----------------------------------------------------------------------------

# Roles: "admin" (our administrator, API/CLI/pages) and "peer" (the other node's message).
# A line we propose starts "proposed" and waits for the peer's answer; an offer we receive
# starts "pending" and waits for our admin. "close_refused": the peer asked to close a line
# that still has a balance or transfers in flight, so it is frozen instead.
_OPEN_LINE_EVENTS: Final = {
    "freeze": edge("frozen", "admin", "peer"),
    "unfreeze": edge("active", "admin", "peer"),
    "close": edge("closed", "admin", "peer"),
    "close_refused": edge("frozen", "peer"),
}
LINE_GRAPH: Final = StateGraph(
    name="trust line",
    edges={
        "proposed": {"accepted": edge("active", "peer"), "rejected": edge("rejected", "peer")},
        "pending": {"accept": edge("active", "admin"), "reject": edge("rejected", "admin")},
        "active": {**_OPEN_LINE_EVENTS, "limits": edge("active", "admin", "peer")},
        "frozen": {**_OPEN_LINE_EVENTS, "limits": edge("frozen", "admin", "peer")},
        "rejected": {}, "closed": {},
    },
    initial=frozenset({"proposed", "pending"}), terminal=frozenset({"rejected", "closed"}),
    roles=frozenset({"admin", "peer"}),
)
if LINE_GRAPH.states != set(LINE_STATES) or not set(LINE_CHANGES) <= set(
        LINE_GRAPH.edges["active"]):
    raise ValueError("the trust-line graph must cover LINE_STATES and LINE_CHANGES")


# Lines that exist on both ledgers and can still be closed: statements are exchanged for them.
OPEN_LINE_STATES: Final = frozenset(
    state for state, exits in LINE_GRAPH.edges.items() if "close" in exits)


def next_line_state(state: str, event: str, role: str) -> str | None:
    """A trust line's state after ``event`` by ``role`` ("admin" or "peer"); None when the
    event does not apply in ``state``."""
    return LINE_GRAPH.next_state(state, event, role)


def is_expired_at(expires: str, now: datetime) -> bool:
    """True once ``now`` has reached the transfer's expiry (UTC strings compare in order)."""
    return format_utc(now) >= expires
