"""The inbox quota's memory of the last hour (issue 17: the soak; federation/state.py)."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime, timedelta

from meshnode.federation.state import InboxQuota
from meshnode.protocol.inbox_policy import QUOTA_WINDOW_SECONDS, Quota
from meshnode.services.context import NodeContext

ORIGIN = "https://peer.example"
ROOMY = Quota(rows=1_000_000, bytes=10**12)  # never the limit in these tests


async def test_inbox_quota__an_hour_of_activities_keeps_no_object_per_activity(
        ctx: NodeContext) -> None:
    # Given a quota that has already seen a peer
    quota = InboxQuota(ctx)
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    await quota.take(ORIGIN, start, 1_500, ROOMY)
    gc.collect()
    blocks = sys.getallocatedblocks()
    # When 3,000 activities of distinct sizes are admitted from it within the hour
    for n in range(3_000):
        await quota.take(ORIGIN, start + timedelta(seconds=1 + n), 1_000 + n, ROOMY)
    gc.collect()
    # Then they are all counted, rows and bytes, the oldest first
    now = start + timedelta(seconds=3_001)
    assert await quota.usage(ORIGIN, now) == (3_001, 1_500 + sum(range(1_000, 4_000)), 3_001.0)
    # And the quota keeps no Python object per activity (a tuple, a float and an int each
    # were made among the load's garbage and kept arenas of Python's allocator for an hour)
    assert sys.getallocatedblocks() - blocks < 300


async def test_inbox_quota__entries_leave_the_window_after_an_hour(ctx: NodeContext) -> None:
    # Given three activities a minute apart
    quota = InboxQuota(ctx)
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    for n in range(3):
        await quota.take(ORIGIN, start + timedelta(minutes=n), 100 * (n + 1), ROOMY)
    # When the hour after the first one has passed
    later = start + timedelta(seconds=QUOTA_WINDOW_SECONDS)
    # Then the first one has left: two rows, their bytes, the oldest a minute younger
    assert await quota.usage(ORIGIN, later) == (2, 500, QUOTA_WINDOW_SECONDS - 60.0)
    # And once every one has left, none is counted and a new one counts alone
    gone = start + timedelta(seconds=QUOTA_WINDOW_SECONDS + 121)
    assert await quota.usage(ORIGIN, gone) == (0, 0, 0.0)
    await quota.take(ORIGIN, gone, 42, ROOMY)
    assert await quota.usage(ORIGIN, gone + timedelta(seconds=5)) == (1, 42, 5.0)


async def test_inbox_quota__take_counts_only_what_fits_and_says_how_long_to_wait(
        ctx: NodeContext) -> None:
    # Given an origin that may get 2 rows an hour stored, one taken at 9:00
    quota = InboxQuota(ctx)
    limit = Quota(rows=2, bytes=10_000)
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert await quota.take(ORIGIN, start, 100, limit) is None
    # When two more come ten minutes later
    later = start + timedelta(minutes=10)
    answers = [await quota.take(ORIGIN, later, 100, limit) for _ in range(2)]
    # Then the first fits and the second waits until the 9:00 one leaves the hour
    assert answers == [None, QUOTA_WINDOW_SECONDS - 600 + 1]
    # And only what fitted was counted; asking (retry_after) counts nothing
    assert await quota.retry_after(ORIGIN, later, 100, limit) == QUOTA_WINDOW_SECONDS - 600 + 1
    assert await quota.usage(ORIGIN, later) == (2, 200, 600.0)
