"""Timestamps on the wire: UTC, whole seconds, ``Z`` suffix (what Fedify accepts)."""

from __future__ import annotations

from datetime import UTC, datetime

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text


def format_utc(when: datetime) -> str:
    """``2026-11-26T10:00:00Z`` for an aware datetime."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a timezone; raise ValidationError otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(Text("%(field)s must be an ISO 8601 date-time", field=field),
            {field: "not a date-time"})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(
            Text("%(field)s is not a valid date-time", field=field),
                {field: "use e.g. 2026-12-05T09:30:00+01:00"}
        ) from exc
    if parsed.tzinfo is None:
        raise ValidationError(
            Text("%(field)s needs a timezone", field=field),
                {field: "include a timezone, e.g. +01:00 or Z"}
        )
    return parsed.astimezone(UTC).replace(microsecond=0)
