"""Balance over time for the wallet page: a pure series and its scaling into an SVG path.

No I/O and no clock: the caller passes the entries it read, the current balance and ``now``.
The chart is a step line (a balance only changes at a transaction), drawn server-side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from meshnode.protocol.ledger import Movement
from meshnode.protocol.timefmt import parse_utc


class BalancePoint(NamedTuple):
    """From ``at`` on (until the next point), the account's balance was ``balance``.

    A named tuple: made sixty times a wallet page and hashed for its chart's fragment key,
    where a frozen dataclass cost three times as much (issue 17)."""

    at: datetime
    balance: int


@dataclass(frozen=True)
class BalanceSeries:
    """The balance before the oldest shown entry, then after each entry, oldest first."""

    start: int
    points: tuple[BalancePoint, ...]
    end: datetime

    @property
    def lowest(self) -> int:
        """The lowest balance the chart shows."""
        return min(self.start, *(p.balance for p in self.points))

    @property
    def highest(self) -> int:
        """The highest balance the chart shows."""
        return max(self.start, *(p.balance for p in self.points))


@dataclass(frozen=True)
class ChartGeometry:
    """What the SVG template draws: a step path, the zero line and the value range shown."""

    width: int
    height: int
    path: str
    zero_y: float
    top: int
    bottom: int


def balance_series(
    entries_newest_first: Sequence[Movement], account: str, balance_now: int, now: datetime
) -> BalanceSeries | None:
    """Walk back from the current balance through the newest entries' movements (None when
    there are none)."""
    if not entries_newest_first:
        return None
    after = balance_now
    points: list[BalancePoint] = []
    for entry in entries_newest_first:
        points.append(BalancePoint(parse_utc(entry.created_at, field="created_at"),
                                   after))
        if entry.payee == account:
            after -= entry.amount
        elif entry.payer == account:
            after += entry.amount
    points.reverse()
    end = max(now, points[-1].at)
    return BalanceSeries(start=after, points=tuple(points), end=end)


def chart_geometry(
    series: BalanceSeries, *, width: int = 320, height: int = 120, pad: int = 6
) -> ChartGeometry:
    """Scale a series into ``width`` x ``height`` (time across, balance up; zero always shown)."""
    top, bottom = max(series.highest, 0), min(series.lowest, 0)
    span_value = (top - bottom) or 1
    # A lead-in before the first entry and room after the last one keep the first and the
    # current level visible even when everything happened within the same minute.
    lead = max((series.end - series.points[0].at) / 10, timedelta(minutes=1))
    first = series.points[0].at - lead
    last = max(series.end, series.points[-1].at + lead)
    span_time = (last - first).total_seconds()
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def x(at: datetime) -> float:
        return pad + inner_w * (at - first).total_seconds() / span_time

    def y(value: int) -> float:
        return pad + inner_h * (top - value) / span_value

    # Each point's step inlined (the same arithmetic as x() and y()): sixty a wallet page,
    # the two calls were a third of this function's time (issue 17).
    steps = [f"M{x(first):.1f},{y(series.start):.1f}"]
    steps.extend(f"H{pad + inner_w * (at - first).total_seconds() / span_time:.1f}"
                 f"V{pad + inner_h * (top - balance) / span_value:.1f}"
                 for at, balance in series.points)
    steps.append(f"H{x(last):.1f}")
    return ChartGeometry(width=width, height=height, path="".join(steps), zero_y=round(y(0), 1),
                         top=top, bottom=bottom)
