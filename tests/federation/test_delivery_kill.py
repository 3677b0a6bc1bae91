"""The sender killed with SIGKILL during a backlog of 2,000 deliveries, then restarted:
every listing reaches the peer, stored exactly once (issue 17, "Replication keeps up").

Node alpha (the sender) is a real ``meshnode run`` subprocess (real clock, its delivery
worker sending batches with several requests in flight); node beta runs in the test and
counts, per activity id, the POSTs its inbox authenticated, so the re-sends after the kill are
seen too. Beta's inbox worker is stepped by hand; its catch-up sync never runs, so every
listing beta gets came through delivery.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshnode.config import LimitsConfig
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from tests.conftest import FakeClock, make_config, ride_listing
from tests.federation.conftest import Node
from tests.nodeproc import cli, free_port, start_quiet_node, wait_healthy

pytestmark = pytest.mark.slow
BACKLOG = 2000
CREATES = ("SELECT count(*) FROM deliveries d JOIN outbox_activities o ON o.seq = d.outbox_seq"
           " WHERE o.type = 'Create' AND d.state {}")


async def _start_counting(beta: Node, posts: Counter[str]) -> None:
    """Start beta, counting per activity id the Creates its inbox authenticated and handed
    to the store (which keeps the first and ignores the others): the real writer, wrapped."""
    await beta.start()
    writer = beta.fed.writer
    store = writer.store

    async def counting(reading: Any = None, **row: Any) -> None:
        if row["activity_type"] == "Create":
            posts[row["activity_id"]] += 1
        await store(reading, **row)

    writer.store = counting  # type: ignore[method-assign]


def _alpha_count(database: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def _until(predicate: Callable[[], Awaitable[bool]], beta: Node, *,
                 step: bool, limit: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        beta.clock.now = datetime.now(UTC)
        if step:
            await beta.workers.step_all()
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def _backlog(config_dir: Path) -> None:
    """With alpha stopped, its member publishes BACKLOG listings: as many queued deliveries."""
    from meshnode.config import load_config

    ctx = await NodeContext.open(load_config(config_dir))
    try:
        alice = await members.get_member(ctx, "alice")
        for n in range(BACKLOG):
            await listings.create_listing(ctx, alice, ride_listing(title=f"Trajet numéro {n}"))
    finally:
        await ctx.close()


async def test_delivery__sigkill_during_a_backlog_of_2000__all_arrive_after_restart_once(
        tmp_path: Path) -> None:
    """Given alpha peered with beta and 2,000 deliveries to beta queued,
    When alpha is started and killed with SIGKILL while sending them, then restarted,
    Then beta has all 2,000 listings, each activity stored once, every delivery row is
    done, and the re-sent activities are no more than one batch in flight at the kill."""
    port_b = free_port()
    beta = Node(make_config(tmp_path / "beta", handle="beta", port=port_b,
                            public_url=f"http://127.0.0.1:{port_b}"),
                FakeClock(datetime.now(UTC)))
    posts: Counter[str] = Counter()
    await _start_counting(beta, posts)
    port_a = free_port()
    alpha_cfg = make_config(tmp_path / "alpha", handle="alpha", port=port_a,
                            public_url=f"http://127.0.0.1:{port_a}", synchronous="normal",
                            limits=LimitsConfig(0, 0, 0))
    database = alpha_cfg.database_path
    ctx = await NodeContext.open(alpha_cfg)
    await members.add_member(ctx, username="alice", password=None)
    await ctx.close()
    alpha = start_quiet_node(alpha_cfg)
    try:
        await wait_healthy(alpha_cfg.base_url)
        cli("peer", "add", "--data-dir", str(alpha_cfg.data_dir), beta.url)

        async def peered() -> bool:
            return _alpha_count(database, "SELECT count(*) FROM followers"
                                          " WHERE state = 'accepted'") == 1
        await _until(peered, beta, step=True)
        alpha.send_signal(signal.SIGTERM)
        alpha.wait(timeout=30)
        await _backlog(alpha_cfg.data_dir)
        assert _alpha_count(database, CREATES.format("= 'pending'")) == BACKLOG

        # When alpha starts sending the backlog and is killed part-way
        alpha = start_quiet_node(alpha_cfg)

        async def some_arrived() -> bool:
            return len(posts) >= 300
        await _until(some_arrived, beta, step=False, limit=60)
        alpha.send_signal(signal.SIGKILL)
        alpha.wait(timeout=10)
        done_at_kill = _alpha_count(database, CREATES.format("= 'done'"))
        assert len(posts) < BACKLOG, "killed too late to prove anything"
        assert done_at_kill < BACKLOG

        # Then after a restart everything arrives, stored once
        alpha = start_quiet_node(alpha_cfg)

        async def all_there() -> bool:
            await beta.workers.inbox.step()
            return await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") \
                == BACKLOG and _alpha_count(
                    database, CREATES.format("!= 'done'")) == 0
        await _until(all_there, beta, step=False)
        assert await beta.count("SELECT count(*) FROM inbox_activities WHERE type = 'Create'"
                                ) == BACKLOG
        assert len(posts) == BACKLOG
        resent = sum(posts.values()) - BACKLOG
        assert resent <= 128  # at most the batch whose outcomes the kill left unwritten
    finally:
        alpha.kill()
        alpha.wait(timeout=10)
        await beta.stop()
