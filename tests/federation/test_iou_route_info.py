"""A neighbour's published route info: hostile numbers drop the line, never the payment."""

from __future__ import annotations

from decimal import Decimal

from meshnode.federation.iou import _edges_from_info

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
