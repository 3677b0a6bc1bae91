"""The transfer state machine: declared, checked at import (REFERENCE §6)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from meshnode.protocol.timefmt import format_utc

# --- state machine --------------------------------------------------------------------------

TRANSFER_STATES: Final = ("prepared", "committed", "released", "expired")
FINAL_STATES: Final = frozenset({"committed", "released", "expired"})
# (state, event) → next state. Events: "commit" (the decider said yes), "reject" (no),
# "expire" (the decider said the offer arrived or was asked about after its expiry).
# A missing pair is an impossible transition: the message is late or repeated and is ignored.
TRANSITIONS: Final[Mapping[tuple[str, str], str]] = {
    ("prepared", "commit"): "committed",
    ("prepared", "reject"): "released",
    ("prepared", "expire"): "expired",
}


def _check_transitions(table: Mapping[tuple[str, str], str]) -> None:
    """Checked at import: every state is known, final states have no way out."""
    for (state, _event), target in table.items():
        if state not in TRANSFER_STATES or target not in TRANSFER_STATES:
            raise RuntimeError(f"unknown state in transition {state} → {target}")
        if state in FINAL_STATES:
            raise RuntimeError(f"final state {state} has an outgoing transition")
    reachable = {"prepared"} | set(table.values())
    if reachable != set(TRANSFER_STATES):
        raise RuntimeError(f"unreachable states {set(TRANSFER_STATES) - reachable}")


_check_transitions(TRANSITIONS)


def next_state(state: str, event: str) -> str | None:
    """The state after ``event``, or None when the event must be ignored (idempotency)."""
    return TRANSITIONS.get((state, event))


def is_expired_at(expires: str, now: datetime) -> bool:
    """True once ``now`` has reached the transfer's expiry (UTC strings compare in order)."""
    return format_utc(now) >= expires
