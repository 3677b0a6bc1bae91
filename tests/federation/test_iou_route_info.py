"""A neighbour's published route info: hostile numbers drop the line, never the payment."""

from __future__ import annotations

from decimal import Decimal

from meshnode.federation.iou import MAX_INFO_LINES, _edges_from_info

NODE = "http://127.0.0.1:9/groups/canal"


def test_route_info__lines_with_unicode_huge_or_non_finite_numbers_are_skipped() -> None:
    # Given a neighbour that publishes one good line among hostile ones
    good = {"peer": "http://127.0.0.1:9/groups/good", "capacity": 5000, "ratio": "1.5"}
    hostile = [
        {"peer": "x", "capacity": "²", "ratio": "1"},
        {"peer": "x", "capacity": 10**30, "ratio": "1"},
        {"peer": "x", "capacity": -1, "ratio": "1"},
        {"peer": "x", "capacity": 1, "ratio": "1E+999999"},
        {"peer": "x", "capacity": 1, "ratio": "NaN"},
        {"peer": "x", "capacity": 1, "ratio": "-2"},
        {"peer": "x", "capacity": 1, "ratio": "١٢"},
    ]
    # When the route finder reads it
    edges = _edges_from_info(NODE, {"actor": NODE, "lines": [*hostile, good]})
    # Then only the good line is an edge
    assert [(e.target, e.capacity, e.ratio) for e in edges] == [
        ("http://127.0.0.1:9/groups/good", 5000, Decimal("1.5"))]


def test_route_info__a_hub_with_hundreds_of_lines_is_read_whole_up_to_the_cap() -> None:
    # Given a hub community publishing 300 lines (the simulator's hub), then one far past
    # the cap
    lines = [{"peer": f"http://127.0.0.1:9/groups/g{i}", "capacity": 100, "ratio": "1"}
             for i in range(300)]
    hostile = [{"peer": "http://127.0.0.1:9/groups/x", "capacity": 1, "ratio": "1"}] * (
        MAX_INFO_LINES + 5)
    # When the route finder reads them
    edges = _edges_from_info(NODE, {"actor": NODE, "lines": lines})
    capped = _edges_from_info(NODE, {"actor": NODE, "lines": hostile})
    # Then every one of the 300 lines is an edge (none beyond the 50th is dropped)...
    assert [e.target for e in edges] == [line["peer"] for line in lines]
    # ...and a list over the cap is read only up to MAX_INFO_LINES
    assert len(capped) == MAX_INFO_LINES
