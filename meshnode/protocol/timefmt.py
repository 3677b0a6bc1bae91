"""Timestamps on the wire: UTC, whole seconds, ``Z`` suffix (what Fedify accepts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from meshnode.protocol.parsing import parse_datetime


def format_utc(when: datetime) -> str:
    """``2026-11-26T10:00:00Z`` for an aware datetime."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    utc = when if when.tzinfo is UTC else when.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad years below 1000: keep its form
        return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The same text as the strftime above in half the time (several calls per listing
    # received: issue 17).
    return utc.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


# Date-times anyone sends us (listing times, remote documents, cursors) lie in this window;
# checking the year first keeps years 0001 and 9999 with an offset from overflowing.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


# What ``format_utc`` writes, and so what our own rows hold (``created_at`` of a journal
# entry...): years 1970-2199 as the window above; ASCII digits only.
_STORED = re.compile(r"(19[7-9][0-9]|2[01][0-9][0-9])-[0-9][0-9]-[0-9][0-9]"
                     r"T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z")


def parse_utc(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a timezone; raise ValidationError otherwise.

    The result is UTC, whole seconds, between 1970 and 2200 (``protocol/parsing.py``).
    What ``format_utc`` writes (as every meshnode peer does: a listing carries three or four
    such times) is read in one C call; anything else takes the full checks, with the same
    result or error.
    """
    if isinstance(value, str) and _STORED.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # 2026-02-30: the full checks say why
    parsed = parse_datetime(value, field, earliest=EARLIEST, latest=LATEST)
    return parsed.replace(microsecond=0)


def normalise_utc(value: object, *, field: str) -> str:
    """``format_utc(parse_utc(value, field=field))``, the same text or error; text already in
    that form (every meshnode peer's: three or four per listing received) is checked and
    given back as it is rather than parsed and written again."""
    if type(value) is str and _STORED.fullmatch(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass  # 2026-02-30: parse_utc says why
        else:
            return value
    return format_utc(parse_utc(value, field=field))
