"""The wallet chart's pure series and scaling (services/balance_chart.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meshnode.protocol.ledger import Movement
from meshnode.protocol.timefmt import format_utc
from meshnode.services.balance_chart import balance_series, chart_geometry

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _entry(seq: int, payer: str, payee: str, amount: int, at: datetime) -> Movement:
    return Movement(seq=seq, payer=payer, payee=payee, amount=amount, created_at=format_utc(at))


def test_balance_series__walks_back_from_the_current_balance() -> None:
    # Given alice received 500, then paid 200 and 1250 (newest first, as history returns them)
    entries = [
        _entry(3, "alice", "carol", 1250, T0 + timedelta(days=3)),
        _entry(2, "alice", "bob", 200, T0 + timedelta(days=2)),
        _entry(1, "bob", "alice", 500, T0 + timedelta(days=1)),
    ]
    # When the series is computed from her balance now (-950)
    series = balance_series(entries, "alice", -950, T0 + timedelta(days=5))
    # Then it starts at 0 and steps through each balance, oldest first
    assert series is not None
    assert series.start == 0
    assert [p.balance for p in series.points] == [500, 300, -950]
    assert [p.at.day for p in series.points] == [2, 3, 4]
    assert (series.lowest, series.highest) == (-950, 500)
    assert series.end == T0 + timedelta(days=5)


def test_balance_series__none_without_entries() -> None:
    assert balance_series([], "alice", 0, T0) is None


def test_chart_geometry__zero_line_and_extremes_at_the_edges() -> None:
    entries = [_entry(2, "alice", "bob", 300, T0 + timedelta(days=2)),
               _entry(1, "bob", "alice", 100, T0)]
    series = balance_series(entries, "alice", -200, T0 + timedelta(days=4))
    assert series is not None
    chart = chart_geometry(series, width=220, height=100, pad=0)
    # range 100 .. -200: zero is one third down
    assert (chart.top, chart.bottom) == (100, -200)
    assert abs(chart.zero_y - 100 / 3) < 0.1
    # 4 days + a 10% lead-in = 50 px a day: from 0 (the zero line) up to 100 (top) at day 0,
    # down to -200 (bottom) at day 2, flat until now (day 4)
    assert chart.path == "M0.0,33.3H20.0V0.0H120.0V100.0H220.0"


def test_chart_geometry__same_minute_entries_still_show_both_levels() -> None:
    series = balance_series([_entry(1, "bob", "alice", 100, T0)], "alice", 100, T0)
    assert series is not None
    chart = chart_geometry(series, width=200, height=100, pad=0)
    assert chart.path == "M0.0,100.0H100.0V0.0H200.0"


def test_chart_geometry__flat_series_does_not_divide_by_zero() -> None:
    series = balance_series([_entry(1, "bob", "alice", 0, T0)], "alice", 0, T0)
    assert series is not None
    chart = chart_geometry(series)
    assert "nan" not in chart.path.lower()


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10**9), st.integers(0, 10**6)),
                min_size=1, max_size=40), st.integers(-10**9, 10**9))
def test_chart_geometry__every_point_stays_inside_the_box(
    moves: list[tuple[bool, int, int]], balance_now: int
) -> None:
    at = T0
    entries = []
    for seq, (incoming, amount, gap) in enumerate(moves, start=1):
        at += timedelta(seconds=gap)
        payer, payee = ("bob", "alice") if incoming else ("alice", "bob")
        entries.append(_entry(seq, payer, payee, amount, at))
    series = balance_series(list(reversed(entries)), "alice", balance_now, at)
    assert series is not None
    assert series.points[-1].balance == balance_now
    chart = chart_geometry(series, width=320, height=120, pad=6)
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", chart.path)]
    assert all(5.9 <= n <= 314.1 for n in numbers)  # x within the padding (y range is smaller)
    assert 5.9 <= chart.zero_y <= 114.1
