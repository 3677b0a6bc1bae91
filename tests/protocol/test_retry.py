"""Delivery retry policy (pure)."""

from __future__ import annotations

import pytest

from meshnode.protocol.retry import (
    MAX_ATTEMPTS,
    MAX_HOST_PAUSE,
    backoff_seconds,
    classify_status,
    host_pause_seconds,
    next_delay,
    parse_retry_after,
    total_schedule_seconds,
)


def test_schedule__spans_about_two_days() -> None:
    assert 1.8 * 86400 < total_schedule_seconds() < 2.6 * 86400


@pytest.mark.parametrize(("status", "outcome"), [
    (202, "done"), (None, "retry"), (500, "retry"), (503, "retry"), (429, "retry"),
    (400, "final"), (401, "final"), (404, "final"), (410, "final"),
])
def test_classify_status__only_network_5xx_and_429_retry(status: int | None, outcome: str) -> None:
    assert classify_status(status) == outcome


def test_next_delay__honours_retry_after_and_gives_up() -> None:
    assert next_delay(1, status=429, retry_after=600.0, jitter=0.0) == 600.0
    assert next_delay(1, status=404, retry_after=None, jitter=0.0) is None
    assert next_delay(MAX_ATTEMPTS, status=500, retry_after=None, jitter=0.0) is None
    assert next_delay(2, status=None, retry_after=None, jitter=0.5) == 2**4 + 15 + 30


def test_parse_retry_after__seconds_and_http_date() -> None:
    now = 1_700_000_000
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now=now) == 120.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("99999999", now=now) == 86400.0


def test_host_pause_seconds__a_wait_status_pauses_the_host_an_hour_at_most() -> None:
    assert host_pause_seconds(1, status=429, retry_after=600.0, jitter=0.0) == 600.0
    assert host_pause_seconds(1, status=503, retry_after=86400.0, jitter=0.0) == MAX_HOST_PAUSE
    assert host_pause_seconds(1, status=429, retry_after=None, jitter=0.5) == backoff_seconds(
        1, 0.5)
    assert host_pause_seconds(1, status=429, retry_after=0.0, jitter=0.0) == 16.0
    assert host_pause_seconds(MAX_ATTEMPTS + 5, status=429, retry_after=None,
                              jitter=1.0) == MAX_HOST_PAUSE
    assert host_pause_seconds(1, status=500, retry_after=600.0, jitter=0.0) is None
    assert host_pause_seconds(1, status=None, retry_after=None, jitter=0.0) is None
