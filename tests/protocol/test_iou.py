"""Pure IOU protocol: conversion, transition table, routing, agreements with two proofs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from meshnode.protocol import iou as p
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.ledger import MEMO_MAX
from meshnode.protocol.statemachine import StateGraph, edge

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_convert__rounds_half_even_to_target_decimals() -> None:
    # 0.05 × 0.5 = 0.025 → 0.02 (half to even), 0.15 × 0.5 = 0.075 → 0.08
    assert p.convert(5, rate=Decimal("0.5"), from_decimals=2, to_decimals=2) == 2
    assert p.convert(15, rate=Decimal("0.5"), from_decimals=2, to_decimals=2) == 8
    assert p.convert(1000, rate=Decimal("1.5"), from_decimals=2, to_decimals=0) == 15
    assert p.convert_back(1500, rate=Decimal("1.5"), from_decimals=2, to_decimals=2) == 1000


@pytest.mark.parametrize("rate", ["0", "-1", "1e3", "abc", " 1", "NaN", "Infinity", ""])
def test_parse_rate__refuses_non_plain_positive_decimals(rate: str) -> None:
    with pytest.raises(ValidationError):
        p.parse_rate(rate)


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(["1", "2", "0.5", "1.25"]))
def test_line_view__both_sides_convert_identically(units: int, rate: str) -> None:
    proposer = p.LineView("l", "b", Decimal(rate), True, 2, 3)
    acceptor = p.LineView("l", "a", Decimal(rate), False, 3, 2)
    assert proposer.to_peer(units) == acceptor.from_peer(units)
    assert acceptor.to_peer(units) == proposer.from_peer(units)


def test_transitions__final_states_never_move() -> None:
    for state in p.FINAL_STATES:
        for event in ("commit", "reject", "expire"):
            assert p.next_state(state, event) is None
    assert p.next_state("prepared", "commit") == "committed"


def test_transitions__a_bad_table_is_refused_at_definition() -> None:
    # Given the transfer table with an exit added to a final state, Then it cannot be built
    broken = {**p.TRANSFER_GRAPH.edges, "committed": {"reject": edge("released", "decision")}}
    with pytest.raises(ValueError, match="terminal state 'committed' has exits"):
        StateGraph("transfer", broken, p.TRANSFER_GRAPH.initial, p.TRANSFER_GRAPH.terminal,
                   p.TRANSFER_GRAPH.roles)


def test_find_routes__most_capacity_then_fewest_hops() -> None:
    one = Decimal(1)
    edges = [p.Edge("A", "B", 100, one), p.Edge("A", "C", 500, one),
             p.Edge("C", "B", 400, one), p.Edge("C", "D", 900, one), p.Edge("D", "B", 900, one)]
    routes = p.find_routes(edges, "A", "B")
    assert routes[0].nodes == ("A", "C", "D", "B")
    assert routes[0].capacity == 500
    assert routes[1].nodes == ("A", "C", "B")
    assert p.choose_route(edges, "A", "B", 600) is None
    # equal capacity: fewer hops wins
    equal = [p.Edge("A", "B", 500, one), *edges[1:]]
    assert p.find_routes(equal, "A", "B")[0].nodes == ("A", "B")


def test_find_routes__capacity_in_payer_units_through_rates() -> None:
    edges = [p.Edge("A", "C", 1000, Decimal(2)), p.Edge("C", "B", 1000, Decimal(1))]
    assert p.find_routes(edges, "A", "B")[0].capacity == 500


def _agreement() -> dict[str, object]:
    cur = p.Currency("https://a.example/currency", "A", 2)
    terms = p.LineTerms("abc123", "https://a.example/l", "https://a.example/g",
                        "https://b.example/g", cur, p.Currency("https://b.example/c", "B", 0),
                        5000, 3000, Decimal("1.5"), "2026-01-01T00:00:00Z")
    return p.build_agreement(terms)


def test_agreement__both_proofs_verify_and_a_change_breaks_them() -> None:
    seed_a, seed_b = b"\x01" * 32, b"\x02" * 32
    doc = p.cosign(_agreement(), seed=seed_a, verification_method="https://a.example/g#k",
                   created=NOW)
    doc = p.cosign(doc, seed=seed_b, verification_method="https://b.example/g#k", created=NOW)
    keys = {"https://a.example/g#k": bytes(SigningKey(seed_a).verify_key),
            "https://b.example/g#k": bytes(SigningKey(seed_b).verify_key)}
    assert p.verify_proofs(doc, keys) == set(keys)
    terms = p.parse_agreement(doc)
    assert terms.limit_proposer_owes == 5000
    assert terms.rate == Decimal("1.5")
    with pytest.raises(ProofError):
        p.verify_proofs({**doc, "rate": "2"}, keys)


def test_parse_prepare__refuses_loops_and_bad_amounts() -> None:
    terms = p.PrepareTerms("t1", "l1", 10, 10, ("a", "b"), "x", "y", "", "2026-01-01T00:00:00Z")
    act = p.build_prepare(terms, actor="a", to="b", when="2026-01-01T00:00:00Z")
    assert p.parse_prepare(act) == terms
    for bad in ({"route": ["a", "a"]}, {"amount": "-1"}, {"amount": "1.5"}, {"transfer": "x/y"}):
        with pytest.raises(ValidationError):
            p.parse_prepare({**act, **bad})


def test_parse_prepare__the_memo_follows_the_ledger_memo_rule() -> None:
    terms = p.PrepareTerms("t1", "l1", 10, 10, ("a", "b"), "x", "y", "", "2026-01-01T00:00:00Z")
    act = p.build_prepare(terms, actor="a", to="b", when="2026-01-01T00:00:00Z")
    # control characters go, as in a local payment's memo (protocol.ledger.parse_memo)
    assert p.parse_prepare({**act, "memo": " pain\x07 du jour "}).memo == "pain du jour"
    assert p.parse_prepare({**act, "memo": "é" * MEMO_MAX}).memo == "é" * MEMO_MAX
    for bad in ("é" * (MEMO_MAX + 1), 5, ["memo"]):
        with pytest.raises(ValidationError):
            p.parse_prepare({**act, "memo": bad})


def test_reconcile__mirror_match_and_mismatch() -> None:
    ours = p.Statement("l", 100, -150, ("t1",))
    assert p.reconcile(ours, p.Statement("l", -150, 100, ("t1",)), in_flight=0).status == "match"
    verdict = p.reconcile(ours, p.Statement("l", 0, 0, ()), in_flight=0)
    assert verdict.status == "mismatch"
    assert verdict.only_ours == ("t1",)
    assert p.reconcile(ours, p.Statement("l", 0, 0, ()), in_flight=1).status == "in_flight"


def _view(rate: str, *, proposer: bool = True, local: int = 2, peer: int = 2) -> p.LineView:
    return p.LineView(line_id="l", peer="X", rate=Decimal(rate), is_proposer=proposer,
                      local_decimals=local, peer_decimals=peer)


def test_payee_amounts__round_half_even_upstream_hop_by_hop() -> None:
    # 10.00 at the payee; 1 gamma = 3 beta -> 3.33; 1 alpha = 2 gamma -> 1.665 -> 1.66
    assert p.payee_amounts([_view("2"), _view("3")], 1000) == (166, 333, 1000)
    # acceptor side of a line: the rate is read the other way (1 beta = 4 alpha)
    assert p.payee_amounts([_view("4", proposer=False)], 250) == (1000, 250)
    with pytest.raises(ValidationError):
        p.payee_amounts([_view("1000")], 4)  # 0.04 / 1000 rounds to nothing


def test_line_view_matches__either_side_may_round_but_never_by_a_unit() -> None:
    view = _view("3")
    assert view.matches(333, 999)  # forward: 3.33 × 3 = 9.99
    assert view.matches(333, 1000)  # backward: 10.00 / 3 = 3.333 -> 3.33
    assert not view.matches(333, 1001)
    assert not view.matches(334, 1000)


@given(st.integers(1, 10**9), st.sampled_from(["0.4", "1", "1.25", "3", "7.5"]),
       st.booleans(), st.integers(0, 3), st.integers(0, 3))
def test_payee_amounts__every_hop_matches_its_line(units: int, rate: str, proposer: bool,
                                                   local: int, peer: int) -> None:
    view = _view(rate, proposer=proposer, local=local, peer=peer)
    try:
        amounts = p.payee_amounts([view], units)
    except ValidationError:
        return
    assert amounts[-1] == units
    assert view.matches(amounts[0], amounts[1])


def test_choose_route_for_payee__needs_exact_views_and_room_on_every_hop() -> None:
    one = Decimal(1)
    edges = [p.Edge("A", "C", 1000, Decimal(2), _view("2")),
             p.Edge("C", "B", 300, Decimal(3), _view("3")),
             p.Edge("A", "B", 5000, one)]  # no published view: unusable here
    chosen = p.choose_route_for_payee(edges, "A", "B", 900)
    assert chosen is not None
    assert chosen[0].nodes == ("A", "C", "B")
    assert chosen[1] == (150, 300, 900)
    assert p.choose_route_for_payee(edges, "A", "B", 1000) is None  # C needs 333 > 300


def test_prepare__amounts_round_trip_and_must_cover_the_route() -> None:
    terms = p.PrepareTerms(transfer_id="t1", line_id="l1", amount=300, source_amount=150,
                           route=("A", "C", "B"), payer="pa", payee="pb", memo="",
                           expires="2026-01-01T00:02:00Z", amounts=(150, 300, 900))
    act = p.build_prepare(terms, actor="A", to="C", when="2026-01-01T00:00:00Z")
    assert p.parse_prepare(act) == terms
    with pytest.raises(ValidationError):
        p.parse_prepare(act | {"amounts": ["150", "300"]})
    with pytest.raises(ValidationError):
        p.parse_prepare(act | {"amounts": ["150", "-300", "900"]})
    plain = p.build_prepare(terms.__class__(**{**terms.__dict__, "amounts": ()}), actor="A",
                            to="C", when="2026-01-01T00:00:00Z")
    assert "amounts" not in plain


def test_reconcile__names_transfers_recorded_with_different_amounts() -> None:
    ours = p.Statement("l1", 1300, -1300, ("t1", "t2"), (("t2", 300, -300), ("t1", 1000, -1000)))
    same = p.Statement("l1", -1300, 1300, ("t1", "t2"), (("t2", -300, 300), ("t1", -1000, 1000)))
    assert p.reconcile(ours, same, in_flight=0).status == "match"
    edited = p.Statement("l1", -1300, 1200, ("t1", "t2"),
                         (("t2", -200, 200), ("t1", -1000, 1000)))
    verdict = p.reconcile(ours, edited, in_flight=1)
    assert verdict.status == "mismatch"  # in flight cannot explain an amount recorded twice
    assert verdict.differing == (("t2", 300, -300, -200, 200),)
    # compensating edits that keep the totals still show up
    swapped = p.Statement("l1", -1300, 1300, ("t1", "t2"),
                          (("t2", -400, 400), ("t1", -900, 900)))
    assert {d[0] for d in p.reconcile(ours, swapped, in_flight=0).differing} == {"t1", "t2"}


def test_statement__moves_round_trip_and_are_capped() -> None:
    statement = p.Statement("l1", 5, -5, ("t1",), (("t1", 5, -5),))
    act = p.build_statement(statement, actor="A", to="B", when="2026-01-01T00:00:00Z",
                            nonce="n")
    assert p.parse_statement(act) == statement
    with pytest.raises(ValidationError):
        p.parse_statement(act | {"moves": [["t1", "5"]]})
    with pytest.raises(ValidationError):
        p.parse_statement(act | {"moves": [["t1", "5", "x"]]})
    with pytest.raises(ValidationError):
        p.parse_statement(act | {"moves": [["t1", "1", "1"]] * 101})


def test_choose_route__fewest_hops_with_room_before_more_capacity() -> None:
    # Given a direct line with little room, a 2-hop route with more, a 3-hop one with most
    one = Decimal(1)
    edges = [p.Edge("A", "B", 100, one), p.Edge("A", "C", 500, one),
             p.Edge("C", "B", 400, one), p.Edge("C", "D", 900, one), p.Edge("D", "B", 900, one)]
    # Then each amount takes the shortest route that has room for it
    assert p.choose_route(edges, "A", "B", 100).nodes == ("A", "B")  # type: ignore[union-attr]
    assert p.choose_route(edges, "A", "B", 200).nodes == ("A", "C", "B")  # type: ignore[union-attr]
    assert p.choose_route(edges, "A", "B", 450).nodes == (  # type: ignore[union-attr]
        "A", "C", "D", "B")
    assert p.choose_route(edges, "A", "B", 501) is None
