"""The waiting-list graph and its one-step planner: pure, stepped with an explicit ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshnode.protocol.queue import CONFIRM_WINDOW, QUEUE_GRAPH, Entry, plan_moves, position_of

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_queue_graph__only_the_member_confirms_and_only_the_system_lapses() -> None:
    assert QUEUE_GRAPH.next_state("notified", "confirm", "member") == "confirmed"
    assert QUEUE_GRAPH.next_state("notified", "confirm", "system") is None
    assert QUEUE_GRAPH.next_state("notified", "lapse", "member") is None
    assert QUEUE_GRAPH.next_state("waiting", "confirm", "member") is None  # no turn yet
    assert QUEUE_GRAPH.next_state("lapsed", "turn", "system") is None  # terminal


def test_plan_moves__item_still_out_gives_no_turn() -> None:
    # Given two members waiting while the loan is out
    entries = [Entry(1, 10, "waiting"), Entry(2, 20, "waiting")]
    # Then nobody is told
    assert plan_moves(entries, item_out=True, open_=True, now=NOW) == []


def test_plan_moves__returned_item_goes_to_the_first_in_line_with_24_hours() -> None:
    entries = [Entry(7, 20, "waiting"), Entry(3, 10, "waiting")]
    [move] = plan_moves(entries, item_out=False, open_=True, now=NOW)
    assert (move.entry_id, move.member_id, move.to) == (3, 10, "notified")
    assert move.confirm_by == NOW + CONFIRM_WINDOW == NOW + timedelta(hours=24)


def test_plan_moves__a_lapsed_turn_passes_to_the_next_in_the_same_step() -> None:
    entries = [Entry(1, 10, "notified", NOW - timedelta(seconds=1)), Entry(2, 20, "waiting")]
    moves = plan_moves(entries, item_out=False, open_=True, now=NOW)
    assert [(m.member_id, m.to) for m in moves] == [(10, "lapsed"), (20, "notified")]


def test_plan_moves__a_turn_still_running_blocks_the_next() -> None:
    entries = [Entry(1, 10, "notified", NOW + timedelta(hours=1)), Entry(2, 20, "waiting")]
    assert plan_moves(entries, item_out=False, open_=True, now=NOW) == []


def test_plan_moves__a_withdrawn_listing_closes_every_place() -> None:
    entries = [Entry(1, 10, "notified", NOW + timedelta(hours=1)), Entry(2, 20, "waiting")]
    moves = plan_moves(entries, item_out=False, open_=False, now=NOW)
    assert [(m.entry_id, m.to) for m in moves] == [(1, "closed"), (2, "closed")]


@pytest.mark.parametrize(("member", "place"), [(20, 1), (10, 2), (30, 3), (99, None)])
def test_position_of__the_turn_holder_is_first_then_joining_order(member: int,
                                                                   place: int | None) -> None:
    entries = [Entry(1, 10, "waiting"), Entry(2, 20, "notified", NOW), Entry(3, 30, "waiting"),
               Entry(4, 40, "left")]
    assert position_of(entries, member) == place
