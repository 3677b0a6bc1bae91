"""Delivery retry policy: tiny pure functions (REFERENCE §5).

Schedule modelled on Mastodon's (delay of retry n ≈ n⁴ + 15 s, plus jitter): 16 attempts
spread over about two days. Only network errors, 5xx and 429 are retried; any other 4xx
is final. Randomness and time come in as parameters.
"""

from __future__ import annotations

from typing import Literal

from meshnode.protocol.errors import SignatureError
from meshnode.protocol.httpsig import parse_http_date

MAX_ATTEMPTS = 16
MAX_RETRY_AFTER = 24 * 3600
# Answers by which a peer tells us to wait (RFC 9110 §15.6.4, RFC 6585 §4), with a
# Retry-After or not (then the backoff applies).
WAIT_STATUSES = frozenset({429, 503})
# The longest one answer can pause a whole host (every delivery to it, not only the one
# answered): a stranger's Retry-After of a day still puts that one delivery off for a day
# (MAX_RETRY_AFTER), but the host is tried again after an hour at most (one POST; a host
# still over its quota says so again). An hour is the inbox quota's window (meshnode's
# QUOTA_WINDOW_SECONDS); Mastodon's rate limits are shorter.
MAX_HOST_PAUSE = 3600
Outcome = Literal["done", "retry", "final"]


def backoff_seconds(attempt: int, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1-based); ``jitter`` in [0, 1) spreads peers."""
    base = attempt**4 + 15
    return base + jitter * 30 * attempt


def total_schedule_seconds(jitter: float = 0.0) -> float:
    """Sum of all delays: how long a delivery is retried before it is given up."""
    return sum(backoff_seconds(n, jitter) for n in range(1, MAX_ATTEMPTS))


def classify_status(status: int | None) -> Outcome:
    """What an HTTP status means for a delivery (None = network error or timeout)."""
    if status is None or status >= 500 or status in (408, 429):
        return "retry"
    if 200 <= status < 300:
        return "done"
    return "final"


def parse_retry_after(value: str | None, *, now: int) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # RFC 9110 §10.2.3: delta-seconds = 1*DIGIT
        return float(min(int(text[:12]), MAX_RETRY_AFTER))
    try:
        when = parse_http_date(text)
    except SignatureError:
        return None
    return float(min(max(when - now, 0), MAX_RETRY_AFTER))


def next_delay(
    attempt: int, *, status: int | None, retry_after: float | None, jitter: float
) -> float | None:
    """Seconds until the next attempt after failed attempt ``attempt``, or None to give up."""
    if classify_status(status) != "retry" or attempt >= MAX_ATTEMPTS:
        return None
    delay = backoff_seconds(attempt, jitter)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def host_pause_seconds(attempt: int, *, status: int | None, retry_after: float | None,
                       jitter: float) -> float | None:
    """How long to send nothing to a host that answered attempt ``attempt`` with ``status``:
    for a 429 / 503 (``WAIT_STATUSES``) the wait that delivery gets (its Retry-After, never
    less than the backoff, the backoff when there is none or it is malformed), at most
    ``MAX_HOST_PAUSE``; None for any other answer."""
    if status not in WAIT_STATUSES:
        return None
    wait = backoff_seconds(min(max(attempt, 1), MAX_ATTEMPTS), jitter)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return float(min(wait, MAX_HOST_PAUSE))
