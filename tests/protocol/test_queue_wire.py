"""The waiting-list documents across communities: kinds, round trips, positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshnode.protocol import queue as proto
from meshnode.protocol import queue_wire as wire

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
A, B = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
PLACE = wire.QueuePlace(place_id=f"{A}/queue/places/7", join_id=f"{B}/queue/joins/1",
                        member=f"{B}/users/bob", listing_object=f"{A}/listings/1",
                        state="notified", position=1, confirm_by=NOW + timedelta(hours=24))


def test_queue_wire__join_and_leave_round_trip() -> None:
    for leave in (False, True):
        document = wire.build_join(activity_id=f"{B}/queue/joins/1", actor=f"{B}/users/bob",
                                   author=f"{A}/users/alice",
                                   listing_object=f"{A}/listings/1", when=NOW, leave=leave)
        assert wire.queue_activity_kind(document) == ("leave" if leave else "join")
        request = wire.parse_join(document)
        assert (request.actor, request.listing_object) == (f"{B}/users/bob",
                                                           f"{A}/listings/1")


@pytest.mark.parametrize(("answer", "state", "kind", "type_"), [
    (True, "waiting", "answer", "Accept"), (True, "refused", "answer", "Reject"),
    (False, "notified", "place", "Update"), (False, "lapsed", "place", "Update"),
])
def test_queue_wire__place_messages_round_trip(answer: bool, state: str, kind: str,
                                               type_: str) -> None:
    told = PLACE if state == "notified" else wire.QueuePlace(
        **{**PLACE.__dict__, "state": state, "confirm_by": None,
           "reason": "full" if state == "refused" else ""})
    document = wire.build_place_message(activity_id=f"{A}/x", actor=f"{A}/users/alice",
                                        place=told, when=NOW, answer=answer)
    assert (document["type"], wire.queue_activity_kind(document)) == (type_, kind)
    assert wire.parse_place(document) == told


def test_queue_wire__other_accepts_and_updates_are_not_queue_messages() -> None:
    assert wire.queue_activity_kind({"type": "Accept", "object": {"type": "Follow"}}) is None
    assert wire.queue_activity_kind({"type": "Update", "object": {"type": "Agreement"}}) is None


def test_queue__position_of_entry_counts_the_turn_holder_first() -> None:
    entries = [proto.Entry(1, None, "waiting"), proto.Entry(2, 5, "notified"),
               proto.Entry(3, None, "left"), proto.Entry(4, None, "waiting")]
    assert [proto.position_of_entry(entries, i) for i in (1, 2, 3, 4)] == [2, 1, None, 3]
    assert proto.position_of(entries, 5) == 1
