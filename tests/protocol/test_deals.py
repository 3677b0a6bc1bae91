"""Pure deal logic: the transition table, capacity arithmetic, documents and their proofs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol import deals as proto
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.proofs import create_proof, verify_proof

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SEED = bytes(range(32))


def test_graph__the_real_table_is_valid() -> None:
    proto.check_graph(proto.TRANSITIONS)


@pytest.mark.parametrize("broken", [
    {**proto.TRANSITIONS, "completed": {"cancel": proto.edge("cancelled", "author")}},
    {**proto.TRANSITIONS, "accepted": {"start": proto.edge("nowhere", "author")}},
    {**proto.TRANSITIONS, "requested": {"decline": proto.edge("declined", "author")}},
    {**proto.TRANSITIONS, "in_progress": {}},
    {**proto.TRANSITIONS, "accepted": {"start": proto.edge("in_progress", "anyone")}},
])
def test_graph__malformed_tables_are_refused(broken: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):  # noqa: PT011
        proto.check_graph(broken)


def test_next_state__roles_and_terminal_states() -> None:
    assert proto.next_state("requested", "accept", "author") == "accepted"
    with pytest.raises(proto.NotYourMoveError):
        proto.next_state("requested", "accept", "booker")
    with pytest.raises(proto.TransitionError):
        proto.next_state("completed", "cancel", "booker")


def test_capacity__counts_and_decimals() -> None:
    ride = proto.capacity_of("ride", {"seats": 3})
    proto.check_quantity(ride, 1, 2)
    with pytest.raises(proto.CapacityError, match="only 1 seat"):
        proto.check_quantity(ride, 2, 2)
    apples = proto.capacity_of("produce", {"quantity": "2.5", "unit": "kg"})
    assert proto.parse_quantity(apples, "1.25") == 1250
    with pytest.raises(ValidationError):
        proto.parse_quantity(apples, "0.0001")
    with pytest.raises(ValidationError):
        proto.parse_quantity(ride, 0)


def test_slots__past_inverted_and_outside_window_refused() -> None:
    cap = proto.capacity_of("lend", {"available_until": "2026-12-31T00:00:00Z"})
    with pytest.raises(ValidationError, match="past"):
        proto.parse_slot(cap, "2026-11-25T00:00:00Z", "2026-11-27T00:00:00Z", now=NOW)
    with pytest.raises(ValidationError, match="before it starts"):
        proto.parse_slot(cap, "2026-11-28T00:00:00Z", "2026-11-27T00:00:00Z", now=NOW)
    with pytest.raises(ValidationError, match="outside"):
        proto.parse_slot(cap, "2026-12-30T00:00:00Z", "2027-01-02T00:00:00Z", now=NOW)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=20))
def test_slots__accepted_slots_never_overlap(requests: list[tuple[int, int]]) -> None:
    accepted: list[proto.Slot] = []
    for start, length in requests:
        slot = proto.Slot(NOW + timedelta(hours=start), NOW + timedelta(hours=start + length))
        try:
            proto.check_slot(slot, accepted)
        except proto.CapacityError:
            continue
        accepted.append(slot)
    for i, one in enumerate(accepted):
        assert not any(one.overlaps(other) for other in accepted[i + 1:])


def test_amount__per_unit_per_period_and_rounding() -> None:
    seats = proto.capacity_of("ride", {"seats": 3})
    assert proto.deal_amount(450, None, seats, 2, None) == 900
    kilos = proto.capacity_of("produce", {"quantity": "10", "unit": "kg"})
    assert proto.deal_amount(150, None, kilos, 1250, None) == 188  # 1.875 → 1.88 (half-even)
    loan = proto.capacity_of("lend", {})
    slot = proto.Slot(NOW, NOW + timedelta(hours=25))
    assert proto.deal_amount(200, "day", loan, 1, slot) == 400  # two started days
    assert proto.deal_amount(None, None, seats, 2, None) == 0


def _terms() -> proto.DealTerms:
    return proto.DealTerms(
        agreement_id="https://b.example/deals/1", offer_id="https://b.example/deals/1/offer",
        listing_object="https://a.example/listings/9", booker="https://b.example/users/bob",
        author="https://a.example/users/alice", category="lend", quantity="1", unit="slot",
        slot=proto.Slot(NOW, NOW + timedelta(days=1)), amount="2.00", deposit="30.00",
        currency_uri="https://b.example/currency", currency_code="G", message="Merci",
        published=NOW)


def test_offer__round_trip_and_proof() -> None:
    offer = proto.build_offer(_terms())
    assert proto.deal_activity_kind(offer) == "offer"
    parsed = proto.parse_offer(offer)
    assert (parsed.amount, parsed.deposit, parsed.slot_start) == (
        "2.00", "30.00", "2026-11-26T10:00:00Z")
    signed = create_proof(offer, seed=SEED, verification_method=f"{offer['actor']}#ed25519-key",
                          created=NOW)
    from nacl.signing import SigningKey
    public = bytes(SigningKey(SEED).verify_key)
    verify_proof(signed, public_key=public)
    signed["object"]["stipulatesReciprocal"]["resourceQuantity"]["hasNumericalValue"] = "0.01"
    with pytest.raises(ProofError):
        verify_proof(signed, public_key=public)


def test_kinds__peering_accept_is_not_a_deal() -> None:
    follow_accept = {"type": "Accept", "object": {"type": "Follow", "id": "x"}}
    assert proto.deal_activity_kind(follow_accept) is None
    answer = proto.build_answer(activity_id="https://a.example/deals/1/accept",
                                actor="https://a.example/users/alice", offer_id="o",
                                agreement_id="g", booker="b", accept=True, when=NOW)
    assert proto.deal_activity_kind(answer) == "answer"


@pytest.mark.parametrize("data", [{"rating": 0}, {"rating": 6}, {"rating": "x"},
                                  {"rating": 3, "comment": "x" * 501},
                                  {"rating": 3, "no_show": "maybe"}])
def test_feedback__bad_input_refused(data: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        proto.parse_feedback(data)
