"""Declared state machines (deals, transfers, trust lines, peering) share one checker."""

from __future__ import annotations

import pytest

from meshnode.protocol import deals, peering
from meshnode.protocol import iou as p
from meshnode.protocol.statemachine import StateGraph, edge


def _rebuilt(graph: StateGraph, **changes: object) -> StateGraph:
    fields = {"name": graph.name, "edges": graph.edges, "initial": graph.initial,
              "terminal": graph.terminal, "roles": graph.roles, **changes}
    return StateGraph(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("graph", [p.TRANSFER_GRAPH, p.LINE_GRAPH, peering.PEERING_GRAPH])
def test_graphs__the_declared_tables_are_valid(graph: StateGraph) -> None:
    assert _rebuilt(graph) == graph


def test_graphs__deals_use_the_same_checker() -> None:
    with pytest.raises(ValueError, match="unreachable"):
        deals.check_graph({**deals.TRANSITIONS, "accepted": {
            "cancel": edge("cancelled", "author")}, "requested": {
            "cancel": edge("cancelled", "booker")}})


@pytest.mark.parametrize(("change", "message"), [
    ({"edges": {**p.LINE_GRAPH.edges, "closed": {"unfreeze": edge("active", "admin")}}},
     "terminal state 'closed' has exits"),
    ({"edges": {**p.LINE_GRAPH.edges, "frozen": {"unfreeze": edge("thawed", "admin")}}},
     "unknown state 'thawed'"),
    ({"edges": {**p.LINE_GRAPH.edges, "active": {"freeze": edge("frozen", "stranger")}}},
     "unknown roles"),
    ({"edges": {**p.LINE_GRAPH.edges, "frozen": {}}}, "dead end"),
    ({"initial": frozenset({"proposed"})}, "unreachable states: \\['pending'\\]"),
])
def test_graphs__a_malformed_trust_line_table_is_refused(change: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _rebuilt(p.LINE_GRAPH, **change)


def test_trust_lines__only_the_peer_answers_our_offer_and_only_our_admin_answers_theirs() -> None:
    assert p.next_line_state("proposed", "accepted", "peer") == "active"
    assert p.next_line_state("proposed", "accept", "admin") is None
    assert p.next_line_state("pending", "accept", "admin") == "active"
    assert p.next_line_state("pending", "accepted", "peer") is None


def test_trust_lines__closed_and_rejected_lines_never_move() -> None:
    for state in ("closed", "rejected"):
        for event in (*p.LINE_CHANGES, "accept", "accepted", "close_refused"):
            assert p.next_line_state(state, event, "admin") is None
            assert p.next_line_state(state, event, "peer") is None


def test_trust_lines__open_lines_are_the_active_and_frozen_ones() -> None:
    assert {"active", "frozen"} == p.OPEN_LINE_STATES


def test_trust_lines__a_refused_close_freezes_and_limits_keep_the_state() -> None:
    assert p.next_line_state("active", "close_refused", "peer") == "frozen"
    assert p.next_line_state("frozen", "limits", "peer") == "frozen"
    assert p.next_line_state("active", "limits", "admin") == "active"


def test_peering__answers_apply_only_to_a_follow_in_flight_or_done() -> None:
    assert peering.next_peer_state("following", "accept", "peer") == "peered"
    assert peering.next_peer_state("following", "reject", "peer") == "rejected"
    # a late Accept after a Reject, or one arriving while we re-resolve, is ignored
    assert peering.next_peer_state("rejected", "accept", "peer") is None
    assert peering.next_peer_state("resolving", "accept", "peer") is None


def test_peering__their_follow_makes_us_follow_back_only_when_we_did_not_ask() -> None:
    for state in ("none", "rejected", "failed"):
        assert peering.next_peer_state(state, "follow", "peer") == "following"
    for state in ("resolving", "following", "peered"):
        assert peering.next_peer_state(state, "follow", "peer") is None


def test_peering__only_the_worker_retries_or_gives_up() -> None:
    assert peering.next_peer_state("resolving", "give_up", "worker") == "failed"
    assert peering.next_peer_state("resolving", "give_up", "admin") is None
    assert peering.next_peer_state("failed", "add", "admin") == "resolving"
