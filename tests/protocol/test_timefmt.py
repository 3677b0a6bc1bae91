"""``format_utc``: one text for one instant, whatever the zone or precision it comes in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meshnode.protocol.timefmt import format_utc


@pytest.mark.parametrize("when", [
    datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 26, 10, 0, 0, 999_999, tzinfo=UTC),
    datetime(2026, 11, 26, 11, 30, 5, 123, tzinfo=timezone(timedelta(hours=1, minutes=30))),
    datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
])
def test_format_utc__matches_strftime_in_utc_whole_seconds(when: datetime) -> None:
    # Given an aware datetime in any zone; When formatted; Then the text is its UTC time to
    # the second with a Z, exactly as strftime writes it (the fast path changes no text)
    expected = when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert format_utc(when) == expected


def test_format_utc__refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_utc(datetime(2026, 11, 26, 10, 0, 0))
