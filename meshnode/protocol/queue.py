"""The waiting list of a lent item ("file d'attente"): states, and who moves next.

While a loan is out, members join the listing's queue. When the item is back, the first in
line is told and has ``CONFIRM_WINDOW`` to book it; if they don't, the next one is told.
The table below is a :class:`~meshnode.protocol.statemachine.StateGraph` (checked when
declared); :func:`plan_moves` decides one step of the whole queue from its rows and an
explicit ``now``, so the worker that applies the moves is deterministic in tests.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from meshnode.protocol.statemachine import StateGraph, edge

CONFIRM_WINDOW = timedelta(hours=24)
MAX_WAITING = 50  # members waiting for one item; more is refused (a bounded table per item)
LIVE = ("waiting", "notified")
OPEN_STATUSES = ("active", "reserved")  # listings that keep a queue (a lent item may be reserved)

QUEUE_GRAPH = StateGraph(
    name="queue",
    edges={
        "waiting": {
            "turn": edge("notified", "system"),  # the item is back and they are first
            "leave": edge("left", "member"),
            "close": edge("closed", "system"),  # the listing is no longer offered
        },
        "notified": {
            "confirm": edge("confirmed", "member"),  # a booking request was sent in time
            "lapse": edge("lapsed", "system"),  # CONFIRM_WINDOW passed: the next is told
            "leave": edge("left", "member"),
            "close": edge("closed", "system"),
        },
        "confirmed": {}, "lapsed": {}, "left": {}, "closed": {},
    },
    initial=frozenset({"waiting"}),
    terminal=frozenset({"confirmed", "lapsed", "left", "closed"}),
    roles=frozenset({"member", "system"}),
)


@dataclass(frozen=True)
class Entry:
    """One live place in a queue, in joining order (``id`` grows with time)."""

    id: int
    member_id: int | None  # None: a member of another community (protocol/queue_wire.py)
    state: str
    confirm_by: datetime | None = None


@dataclass(frozen=True)
class Move:
    """One transition to apply: ``event`` on entry ``entry_id`` (``confirm_by`` for a turn)."""

    entry_id: int
    member_id: int | None
    event: str
    to: str
    confirm_by: datetime | None = None


def _move(entry: Entry, event: str, confirm_by: datetime | None = None) -> Move:
    to = QUEUE_GRAPH.next_state(entry.state, event, "system")
    if to is None:
        raise ValueError(f"{entry.state} entry cannot {event}")
    return Move(entry.id, entry.member_id, event, to, confirm_by)


def plan_moves(entries: Sequence[Entry], *, item_out: bool, open_: bool,
               now: datetime) -> list[Move]:
    """The system's moves for one listing's live entries at ``now``.

    A closed listing closes every entry. Otherwise a turn past its deadline lapses, and
    when nobody holds a turn and the item is not out, the first one waiting gets it with
    ``now + CONFIRM_WINDOW`` to confirm (at most one turn at a time).
    """
    live = sorted((e for e in entries if e.state in LIVE), key=lambda e: e.id)
    if not open_:
        return [_move(e, "close") for e in live]
    moves = [_move(e, "lapse") for e in live
             if e.state == "notified" and e.confirm_by is not None and e.confirm_by <= now]
    lapsed = {m.entry_id for m in moves}
    holding = [e for e in live if e.state == "notified" and e.id not in lapsed]
    waiting = [e for e in live if e.state == "waiting"]
    if not holding and not item_out and waiting:
        moves.append(_move(waiting[0], "turn", now + CONFIRM_WINDOW))
    return moves


def position_of(entries: Sequence[Entry], member_id: int) -> int | None:
    """The member's place in line (1 = next; a member holding the turn is 1), or None."""
    mine = next((e for e in entries if e.state in LIVE and e.member_id == member_id), None)
    return None if mine is None else position_of_entry(entries, mine.id)


def position_of_entry(entries: Sequence[Entry], entry_id: int) -> int | None:
    """Entry ``entry_id``'s place in line (1 = next; the one holding the turn is 1), or None."""
    live = sorted((e for e in entries if e.state in LIVE),
                  key=lambda e: (e.state != "notified", e.id))
    for place, entry in enumerate(live, start=1):
        if entry.id == entry_id:
            return place
    return None
