"""Our side of a peering (``peers.out_state``) as a declared, checked state machine.

Community Group actors follow each other (ActivityPub ``Follow``/``Accept``/``Reject``,
https://www.w3.org/TR/activitypub/#follow-activity-inbox)::

    none ──add──▶ resolving ──follow (WebFinger/actor fetched, Follow queued)──▶ following
    following ──accept──▶ peered          following ──reject──▶ rejected
    resolving ──retry──▶ resolving        resolving ──give_up (too many failures)──▶ failed

Roles: ``admin`` (CLI, API, admin pages), ``worker`` (the peering worker resolving the
peer), ``peer`` (the other node's activities, and a Follow of ours that answers theirs).
``block`` resets our side from any state (the block itself is a separate flag).
"""

from __future__ import annotations

from typing import Final

from meshnode.protocol.statemachine import StateGraph, Transition, edge

_BLOCK: Final = {"block": edge("none", "admin")}
# Following again from a state where we do not follow: the admin re-adds or approves the
# peer, or the peer follows us and the policy follows back.
_FOLLOWABLE: Final[dict[str, Transition]] = {
    "add": edge("resolving", "admin"),
    "follow": edge("following", "admin", "peer"),
    **_BLOCK,
}
# An answer to our current Follow; a repeated Accept keeps the peering, a later Reject ends it.
_ANSWERED: Final[dict[str, Transition]] = {
    "accept": edge("peered", "peer"),
    "reject": edge("rejected", "peer"),
    **_BLOCK,
}

PEERING_GRAPH: Final = StateGraph(
    name="peering",
    edges={
        "none": _FOLLOWABLE,
        "resolving": {"follow": edge("following", "worker"),
                      "retry": edge("resolving", "worker"),
                      "give_up": edge("failed", "worker"), **_BLOCK},
        "following": _ANSWERED,
        "peered": _ANSWERED,
        "rejected": _FOLLOWABLE,
        "failed": _FOLLOWABLE,
    },
    initial=frozenset({"none"}), terminal=frozenset(), roles=frozenset({"admin", "worker",
                                                                        "peer"}),
)


def next_peer_state(state: str, event: str, role: str) -> str | None:
    """Our side's state after ``event`` by ``role``; None when it does not apply."""
    return PEERING_GRAPH.next_state(state, event, role)
