"""The steps of deleting a member's account (RGPD, issue 19), as a declared state graph.

Each state is one resumable step the worker repeats until it has nothing left to do, then
takes the ``next`` edge; a node killed at any point resumes from the stored state. The key is
destroyed last: the Tombstones and ``Delete``s are sent (HTTP-signed) with the member's own
key, and neighbours re-fetch the actor's public key to verify them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from meshnode.protocol.activities import activity
from meshnode.protocol.statemachine import StateGraph, edge

DELETION_GRAPH: Final = StateGraph(
    name="account deletion",
    edges={
        # sessions and tokens are revoked with the request itself, in one transaction
        "listings": {"next": edge("messages", "worker")},   # signed Tombstone per listing
        "messages": {"next": edge("deals", "worker")},      # Delete for each sent remote note
        "deals": {"next": edge("draining", "worker")},      # open deals cancelled/declined
        "draining": {"next": edge("erase", "worker")},      # our deliveries done or given up
        "erase": {"next": edge("done", "worker")},          # profile emptied, key destroyed
        "done": {},
    },
    initial=frozenset({"listings"}), terminal=frozenset({"done"}),
    roles=frozenset({"worker"}),
)

# How long the Tombstones and Deletes may keep retrying before the key is destroyed anyway
# (a neighbour offline longer never gets them signed: it keeps what it has until it expires).
DRAIN_LIMIT: Final = timedelta(days=7)


def next_step(state: str) -> str:
    """The state after ``state`` is finished (ValueError for a terminal or unknown one)."""
    following = DELETION_GRAPH.next_state(state, "next", "worker")
    if following is None:
        raise ValueError(f"no step after {state!r}")
    return following


def pseudonym(nonce: bytes) -> str:
    """``deleted-<12 hex>`` from random bytes the caller draws: tied to nothing about the
    member, distinct per account so the ledger's audit still tells accounts apart."""
    if len(nonce) < 6:
        raise ValueError("a pseudonym needs 6 random bytes")
    return f"deleted-{nonce[:6].hex()}"


def drain_over(requested_at: datetime, now: datetime) -> bool:
    """True once the deliveries have had ``DRAIN_LIMIT`` to reach every neighbour."""
    return now - requested_at >= DRAIN_LIMIT


def note_delete(note_id: str, *, actor: str, recipient: str, published: str
                ) -> dict[str, Any]:
    """The ``Delete`` of a direct Note the member sent (AS2 §6.4: the object by its id only;
    the receiving node checks the Delete comes from the Note's own origin and author)."""
    return activity("Delete", activity_id=f"{note_id}/delete", actor=actor, obj=note_id,
                    to=[recipient], published=published)
