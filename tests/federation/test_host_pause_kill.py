"""A host's pause survives SIGKILL (issue 17, pause22): a real ``meshnode run`` subprocess
(real clock, its own delivery loop) is paused by a host that answered 429, holds the
deliveries queued meanwhile, is killed with SIGKILL and restarted: the host still gets no POST
before the pause's end, then every delivery, none lost. The host is the counting inbox of
test_host_pause.py on 127.0.0.1. About a minute: the pause is 47 s, the longest first backoff
(46 s) and one more, so that it does not depend on the node's random jitter.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshnode.config import Config
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import publishing
from meshnode.services.context import NodeContext
from tests.conftest import make_config
from tests.federation.test_host_pause import (  # noqa: F401 (the fixture)
    WaitingInbox,
    origin,
    waiting,
)
from tests.nodeproc import free_port, start_quiet_node, wait_healthy

pytestmark = pytest.mark.slow
PAUSE = 47


async def queue(config: Config, inbox: str, prefix: str, count: int) -> list[str]:
    """Queue ``count`` activities of the Group to ``inbox`` from this (another) process."""
    ctx = await NodeContext.open(config)
    group = f"{config.base_url}/groups/{config.handle}"
    ids = [f"{group}/activities/{prefix}-{n}" for n in range(count)]
    try:
        async with ctx.store.transaction() as tx:
            for n, activity_id in enumerate(ids):
                await publishing.queue_activity(
                    tx, {"id": activity_id, "actor": group, "type": "Create",
                         "object": {"id": f"{config.base_url}/objects/{prefix}{n}",
                                    "type": "Note"}},
                    public=False, inboxes=[inbox], now=format_utc(datetime.now(UTC)))
    finally:
        await ctx.close()
    return ids


def read(config: Config, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{config.database_path}?mode=ro", uri=True,
                         timeout=10) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


async def until(predicate: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_host_pause__sigkill_during_the_pause_keeps_it_and_loses_nothing(
    tmp_path: Path, waiting: tuple[str, WaitingInbox],  # noqa: F811 (the imported fixture)
) -> None:
    # Given a running node whose first delivery to a host is answered 429 "Retry-After: 47"
    url, inbox = waiting
    inbox.retry_after = str(PAUSE)
    port = free_port()
    config = make_config(tmp_path / "alpha", handle="alpha", port=port,
                         public_url=f"http://127.0.0.1:{port}")
    first = await queue(config, url, "first", 1)
    node = start_quiet_node(config)
    try:
        await wait_healthy(config.base_url)
        await until(lambda: bool(read(config, "SELECT 1 FROM delivery_pauses")), 30)
        [(paused_until,)] = read(config, "SELECT paused_until FROM delivery_pauses"
                                         " WHERE host = ?", origin(url))
        end = parse_utc(str(paused_until), field="t").timestamp()
        # When three more are queued meanwhile (from another process) and the node has
        # seen them (its idle loop reads the queue every 2 s at most)
        later = await queue(config, url, "later", 3)
        held = ("SELECT count(*) FROM deliveries WHERE attempts = 0 AND next_attempt_at = ?")
        await until(lambda: read(config, held, paused_until) == [(3,)], 10)
        # And the node is killed with SIGKILL, then started again
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        assert read(config, "SELECT paused_until FROM delivery_pauses") == [(paused_until,)]
        node = start_quiet_node(config)
        await wait_healthy(config.base_url)
        inbox.waiting = False
        # Then every delivery arrives, each the first time after the pause's end, none lost
        await until(lambda: len(inbox.received) == 5, PAUSE + 30)
        assert inbox.received == [*first, *first, *later]
        assert min(inbox.arrived[1:]) >= end - 1  # (the stamp is to the second)
        await until(lambda: read(config, "SELECT count(*) FROM deliveries WHERE state"
                                         " = 'done'") == [(4,)], 10)
    finally:
        node.kill()
        node.wait(timeout=10)
