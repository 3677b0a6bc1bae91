"""What is left of a listing: the FEP-0837 availableQuantity a version carries, read back
strictly (a peer's document is untrusted), and versions that always move forward in time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from meshnode.protocol.capacity import (
    Remaining,
    bookable_capacity,
    counting_states,
    next_updated,
    only_capacity_moved,
    published_in,
    published_left,
    remaining_from_taken,
    stored_capacity,
    with_available,
)
from meshnode.protocol.deals import Capacity

SEATS = Capacity("count", 3, "seat")
KILOS = Capacity("decimal", 5000, "kg")
NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def test_capacity__rides_meals_and_quantities_count_down_but_loans_and_requests_do_not() -> None:
    assert bookable_capacity("ride", "offer", {"seats": 3}) == SEATS
    assert bookable_capacity("meal", "offer", {"portions": 4}) == Capacity("count", 4, "portion")
    assert bookable_capacity("lend", "offer", {}) is None  # time slots, not a count
    assert bookable_capacity("ride", "request", {"seats": 3}) is None
    assert bookable_capacity("ride", "offer", {}) is None  # a peer's ride without seats


def test_counting__a_seat_stays_taken_once_the_ride_took_place_and_pledges_count_at_once() -> None:
    assert "completed" in counting_states("ride")
    assert "requested" not in counting_states("ride")
    assert "requested" in counting_states("group-buy")


@pytest.mark.parametrize(("raw", "expected"), [
    ({"hasUnit": "seat", "hasNumericalValue": "2"}, 2),
    (json.dumps({"hasUnit": "seat", "hasNumericalValue": "0"}), 0),
    ({"hasNumericalValue": 2}, 2),
    ({"hasNumericalValue": "99"}, 3),  # more than the listing has: capped
    ({"hasNumericalValue": "-1"}, None),
    ({"hasNumericalValue": "1.5"}, None),  # half a seat
    ({"hasNumericalValue": "NaN"}, None),
    ({"hasNumericalValue": "１"}, None),  # non-ASCII digits
    ({"hasNumericalValue": "9" * 40}, None),
    ({"hasNumericalValue": True}, None),
    ("{not json", None),
    (None, None),
])
def test_published_left__a_peer_figure_is_read_strictly(raw: object, expected: int | None) -> None:
    assert published_left(SEATS, raw) == expected


def test_published_left__decimal_quantities_in_thousandths() -> None:
    assert published_left(KILOS, {"hasUnit": "kg", "hasNumericalValue": "2.5"}) == 2500
    assert published_left(KILOS, {"hasNumericalValue": "2.5001"}) is None


def test_with_available__the_next_version_carries_the_figure_and_no_old_proof() -> None:
    document = {"type": "Proposal", "id": "http://127.0.0.1:1/listings/x",
                "publishes": {"type": "Intent",
                              "resourceQuantity": {"hasUnit": "seat",
                                                   "hasNumericalValue": "3"}},
                "proof": {"type": "DataIntegrityProof"}, "updated": "2026-11-26T09:00:00Z"}
    unsigned = with_available(document, remaining_from_taken(SEATS, 1), NOW)
    assert "proof" not in unsigned
    assert unsigned["publishes"]["availableQuantity"] == {"hasUnit": "seat",
                                                         "hasNumericalValue": "2"}
    assert unsigned["updated"] == "2026-11-26T10:00:00Z"
    assert published_left(SEATS, published_in(unsigned)) == 2
    assert document["publishes"].get("availableQuantity") is None  # the input is not changed


def test_only_capacity_moved__a_new_figure_is_not_an_edit_a_new_title_is() -> None:
    document = {"type": "Proposal", "name": "Lyon", "status": "active",
                "publishes": {"type": "Intent",
                              "resourceQuantity": {"hasUnit": "seat", "hasNumericalValue": "3"}},
                "proof": {"type": "DataIntegrityProof"}, "updated": "2026-11-26T09:00:00Z"}
    # a booking: the figure, the status (full) and the stamp move, with a new proof
    booked = {**with_available(document, remaining_from_taken(SEATS, 3), NOW),
              "status": "closed", "proof": {"type": "DataIntegrityProof", "proofValue": "z2"}}
    assert only_capacity_moved(document, booked)
    assert only_capacity_moved(booked, document)
    # an edit by the author: anything else, in the document or its Intent
    assert not only_capacity_moved(booked, {**booked, "name": "Lyon par Vienne"})
    intent = {**booked["publishes"], "resourceQuantity": {"hasUnit": "seat",
                                                          "hasNumericalValue": "4"}}
    assert not only_capacity_moved(booked, {**booked, "publishes": intent})


def test_remaining__never_below_zero_when_the_author_cut_the_seats() -> None:
    assert remaining_from_taken(SEATS, 5) == Remaining(SEATS, 0)
    assert remaining_from_taken(SEATS, 5).full
    assert Remaining(KILOS, 2500).to_json() == {"remaining": "2.5", "total": "5",
                                                "unit": "kg", "full": False}


def test_next_updated__two_versions_in_the_same_second_are_a_second_apart() -> None:
    # peers keep a version only when its ``updated`` is later than theirs (whole seconds)
    assert next_updated("2026-11-26T10:00:00Z", NOW) == datetime(2026, 11, 26, 10, 0, 1,
                                                                  tzinfo=UTC)
    assert next_updated("2026-11-26T09:00:00Z", NOW) == NOW


@pytest.mark.parametrize(("category", "kind", "details"), [
    ("ride", "offer", {"seats": 3}), ("meal", "offer", {"portions": "4"}),
    ("produce", "offer", {"quantity": "2.5", "unit": "kg"}), ("give", "offer", {}),
    ("lend", "offer", {}), ("ride", "request", {"seats": 3}), ("ride", "offer", {}),
    ("group-buy", "offer", {"target_quantity": "10", "unit": "kg"}), ("unknown", "offer", {}),
])
def test_stored_capacity__the_same_as_from_the_parsed_details_and_kept(
    category: str, kind: str, details: dict[str, object]
) -> None:
    # Given a stored listing's details as their JSON text
    text = json.dumps(details)
    # When its capacity is asked twice
    first, again = stored_capacity(category, kind, text), stored_capacity(category, kind, text)
    # Then it is what the parsed details give, the second time the kept (immutable) value
    assert first == bookable_capacity(category, kind, details)
    assert again is first
