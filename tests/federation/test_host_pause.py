"""A host that answered 429 / 503 is paused: nothing is POSTed to it until the time it gave
(issue 17, pause22).

The soak's hub POSTed every new delivery once to a peer that had said "wait an hour", and got
hundreds of thousands of 429s. Now the first "wait" pauses the host, durably (SQLite), and
deliveries queued meanwhile are put off to the pause's end without an attempt counted. The
host here is a small aiohttp inbox on 127.0.0.1 that counts every POST it receives; the hub is
a real node (real SQLite, its delivery worker stepped by hand, one clock moved by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from meshnode.federation.delivery import MAX_PAUSED_HOSTS
from meshnode.protocol.retry import MAX_HOST_PAUSE, MAX_RETRY_AFTER, backoff_seconds
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import members
from meshnode.store import outbox as oq
from meshnode.store.db import reads_together
from tests.federation.browser import browser, page, person
from tests.federation.conftest import Node, NodeFactory, serving_inbox, settle
from tests.federation.test_delivery_concurrency import _queue

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


@dataclass
class WaitingInbox:
    """An inbox that answers ``status`` (429) with ``retry_after`` while ``waiting``, 202
    otherwise; a POST whose activity id is in ``slow`` is answered that many seconds late.
    Records every POST's activity id in arrival order, and the answers in answer order."""

    retry_after: str | None = "600"
    status: int = 429
    waiting: bool = True
    slow: dict[str, float] = field(default_factory=dict)
    wait_only: frozenset[str] | None = None  # answer "wait" to these activities only
    received: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # wall-clock time of each POST
    answered: list[tuple[str, int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        activity_id = json.loads(await request.read())["id"]
        self.received.append(activity_id)
        self.arrived.append(time.time())
        wait = self.waiting and (self.wait_only is None or activity_id in self.wait_only)
        await asyncio.sleep(self.slow.get(activity_id, 0.0))
        if wait:
            self.answered.append((activity_id, self.status))
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return web.Response(status=self.status, headers=headers)
        self.answered.append((activity_id, 202))
        return web.Response(status=202)


@pytest.fixture
async def waiting() -> AsyncIterator[tuple[str, WaitingInbox]]:
    inbox = WaitingInbox()
    async with serving_inbox(inbox.handle) as url:
        yield url, inbox


def origin(url: str) -> str:
    return url.removesuffix("/inbox")


async def hub_node(make_node: NodeFactory, **overrides: object) -> Node:
    hub = await make_node("hub", **overrides)
    hub.workers.delivery.jitter = lambda: 0.0  # the backoff of attempt 1: 16 s exactly
    return hub


async def rows(node: Node, ids: list[str]) -> list[tuple[str, int, str]]:
    """(state, attempts, next_attempt_at) of the deliveries of these activities, in order."""
    marks = ", ".join("?" for _ in ids)
    async with node.ctx.store.reader.execute(
            "SELECT d.state, d.attempts, d.next_attempt_at FROM deliveries d JOIN"
            " outbox_activities o ON o.seq = d.outbox_seq WHERE o.activity_id IN"
            f" ({marks}) ORDER BY d.id", ids) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def paused_until(node: Node, host: str) -> str | None:
    return await oq.host_pause(node.ctx.store.reader, host, format_utc(node.clock()))


async def test_host_pause__a_host_answering_429_gets_one_post_until_its_retry_after(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given a host that answers 429 with "Retry-After: 600" to a first delivery
    url, inbox = waiting
    hub = await hub_node(make_node)
    first = await _queue(hub, url, [("Create", "0")], prefix="first")
    await settle(hub)
    assert inbox.received == first
    end = format_utc(hub.clock() + timedelta(seconds=600))
    assert await paused_until(hub, origin(url)) == end
    # When four more deliveries to it are queued during the pause, and the worker runs on
    # until a second before its end
    later = await _queue(hub, url, [("Create", str(n)) for n in range(1, 5)], prefix="later")
    await settle(hub)
    hub.clock.advance(seconds=599)
    await settle(hub)
    # Then the host got no other POST; the four are put off to the pause's end, no attempt
    # counted (nothing was sent)
    assert inbox.received == first
    assert await rows(hub, later) == [("pending", 0, end)] * 4
    # And the scheduler's one read finds no host due, the next retry at the pause's end
    reader = hub.ctx.store.reader
    now = format_utc(hub.clock())
    assert await reads_together(reader, lambda db: oq.due_hosts(db, now),
                                oq.next_due_time) == [[], end]
    # When the pause is over and the host accepts again
    inbox.waiting = False
    hub.clock.advance(seconds=1)
    await settle(hub)
    # Then all five arrive, in the order they were queued (the first one twice: its 429)
    assert inbox.received == [*first, *first, *later]
    assert [state for state, _, _ in await rows(hub, [*first, *later])] == ["done"] * 5
    assert await paused_until(hub, origin(url)) is None


async def test_host_pause__the_peers_page_and_api_show_a_paused_host(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given a host that answered 429 "Retry-After: 600" at 10:00 UTC (11:00 in Paris)
    url, _inbox = waiting
    hub = await hub_node(make_node)
    await _queue(hub, url, [("Create", "0")])
    await settle(hub)
    # Then /api/v1/peers says until when, the admin's page too, in English and in French
    await members.add_member(hub.ctx, username="ann", password=None, is_admin=True)
    token = (await members.create_token(hub.ctx, "ann")).secret
    async with aiohttp.ClientSession() as session, session.get(
            f"{hub.url}/api/v1/peers", headers={"Authorization": f"Bearer {token}"}) as got:
        deliveries = (await got.json())["deliveries"]
    assert [(d["host"], d["paused_until"]) for d in deliveries] == [
        (origin(url), format_utc(hub.clock() + timedelta(seconds=600)))]
    await person(hub, "root", admin=True)
    async with browser(hub, "root") as session:
        english = await page(session, "/admin/peers")
        async with session.get("/admin/peers", headers=FR) as response:
            french = await response.text()
    assert "paused until 11:10\u202fAM (it asked us to wait)" in english or (
        "paused until 11:10 AM (it asked us to wait)" in english), english
    assert "en pause jusqu’à 11:10 (il nous a demandé d’attendre)" in french
    # And the host is shown as busy, not as "not answering": it answered, asking us to wait
    assert "Asked us to wait" in english
    assert "Not answering" not in english
    assert "Nous a demandé d’attendre" in french
    assert "Ne répond pas" not in french
    # And once the pause is over, neither says so (the failed delivery shows again)
    hub.clock.advance(seconds=601)
    async with browser(hub, "root") as session:
        after = await page(session, "/admin/peers")
    assert "paused until" not in after
    assert "Asked us to wait" not in after
    assert "Not answering" in after


async def test_host_pause__a_2xx_already_in_flight_ends_it(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given a host that answers quickly (two requests in flight at once), then, for a batch
    # of four deliveries, "429, wait 600 s" at once to the first POST and 202 to the
    # second half a second later
    url, inbox = waiting
    hub = await hub_node(make_node, delivery_concurrency=2)
    inbox.waiting = False
    await _queue(hub, url, [("Create", "warm")], prefix="warm")
    await settle(hub)
    inbox.received.clear()
    inbox.answered.clear()
    ids = await _queue(hub, url, [("Create", str(n)) for n in range(4)])
    inbox.waiting, inbox.wait_only, inbox.slow = True, frozenset(ids[:1]), {ids[1]: 0.5}
    # When the worker runs one round
    await hub.workers.delivery.step()
    # Then after the 429 nothing else was sent until the 202 (only the request already in
    # flight was answered), and the 202 ended the pause: the other two go at once, without
    # the clock moving
    assert sorted(inbox.received) == sorted(ids[:2])
    assert inbox.answered == [(ids[0], 429), (ids[1], 202)]
    assert await paused_until(hub, origin(url)) is None
    await settle(hub)
    assert sorted(inbox.received) == sorted(ids)
    assert [state for state, _, _ in await rows(hub, ids)] == ["pending", "done", "done",
                                                               "done"]


async def test_host_pause__a_restart_during_the_pause_keeps_it_and_loses_nothing(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given a host paused for 600 s and three deliveries held for it
    url, inbox = waiting
    hub = await hub_node(make_node)
    first = await _queue(hub, url, [("Create", "0")], prefix="first")
    await settle(hub)
    later = await _queue(hub, url, [("Create", str(n)) for n in range(1, 4)], prefix="later")
    await settle(hub)
    # When the hub stops and starts again (a new process's state: only SQLite is kept)
    await hub.stop()
    await hub.start()
    hub.workers.delivery.jitter = lambda: 0.0
    # Then the pause is still there: nothing is POSTed before its end
    await settle(hub)
    hub.clock.advance(seconds=300)
    await settle(hub)
    assert inbox.received == first
    # And after it every delivery arrives, none lost
    inbox.waiting = False
    hub.clock.advance(seconds=301)
    await settle(hub)
    assert inbox.received == [*first, *first, *later]


async def test_host_pause__the_scheduler_posts_nothing_while_a_host_is_paused(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given the delivery worker's own loop running (short polls) and a host that said wait
    url, inbox = waiting
    hub = await hub_node(make_node)
    loop = asyncio.create_task(hub.workers.delivery.run_forever(poll=0.01, idle_poll=0.05))
    try:
        await _queue(hub, url, [("Create", "0")], prefix="first")
        for _ in range(300):
            if await paused_until(hub, origin(url)):
                break
            await asyncio.sleep(0.01)
        # When deliveries are queued to it while the loop runs for half a second
        await _queue(hub, url, [("Create", str(n)) for n in range(1, 4)], prefix="later")
        hub.fed.wake_delivery()
        await asyncio.sleep(0.5)
        # Then none was POSTed
        assert len(inbox.received) == 1
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


@pytest.mark.parametrize(("retry_after", "pause"), [
    ("99999999999999", MAX_HOST_PAUSE),  # far in the future (seconds): an hour at most
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_HOST_PAUSE),  # far in the future (a date)
    ("-5", backoff_seconds(1, 0.0)),  # negative: malformed, the backoff
    ("soon", backoff_seconds(1, 0.0)),  # malformed: the backoff
    ("1e9", backoff_seconds(1, 0.0)),  # not delta-seconds: the backoff
    ("Thu, 01 Jan 1970 00:00:00 GMT", backoff_seconds(1, 0.0)),  # in the past: the backoff
    (None, backoff_seconds(1, 0.0)),  # none: the backoff
])
async def test_host_pause__a_hostile_retry_after_pauses_an_hour_at_most(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox], retry_after: str | None,
    pause: float,
) -> None:
    # Given a host that answers 503 with this Retry-After
    url, inbox = waiting
    inbox.status, inbox.retry_after = 503, retry_after
    hub = await hub_node(make_node)
    ids = await _queue(hub, url, [("Create", "0"), ("Create", "1")])
    # When the worker runs
    await settle(hub)
    # Then the host got one POST and is paused for that long (the delivery answered waits
    # a day at most, as before)
    assert inbox.received == ids[:1]
    until = await paused_until(hub, origin(url))
    assert until is not None
    assert (parse_utc(until, field="t") - hub.clock()).total_seconds() == pause
    (_, _, own), (_, _, held) = await rows(hub, ids)
    assert held == until
    assert (parse_utc(own, field="t") - hub.clock()).total_seconds() <= MAX_RETRY_AFTER


async def test_host_pause__at_most_MAX_PAUSED_HOSTS_hosts_are_paused(
    make_node: NodeFactory, waiting: tuple[str, WaitingInbox],
) -> None:
    # Given MAX_PAUSED_HOSTS other hosts paused (thousands of hosts each saying wait), and
    # one more whose pause is over
    url, inbox = waiting
    hub = await hub_node(make_node)
    now = hub.clock()
    later, over = format_utc(now + timedelta(hours=1)), format_utc(now - timedelta(seconds=1))
    async with hub.ctx.store.transaction() as tx:
        await tx.executemany(
            "INSERT INTO delivery_pauses (host, paused_until, status, since) VALUES (?,?,?,?)",
            [(f"https://h{n}.example", later, 429, format_utc(now))
             for n in range(MAX_PAUSED_HOSTS)] + [("https://over.example", over, 429, over)])
    # When a new host answers "wait"
    ids = await _queue(hub, url, [("Create", "0"), ("Create", "1")])
    await settle(hub)
    # Then the table stays bounded (the pause that was over is deleted) and the new host is
    # not paused: its other delivery is sent as before pauses existed, the one answered 429
    # keeps its own wait
    assert await hub.count("SELECT count(*) FROM delivery_pauses") == MAX_PAUSED_HOSTS
    assert await paused_until(hub, origin(url)) is None
    assert inbox.received == ids
    assert [(state, attempts) for state, attempts, _ in await rows(hub, ids)] == [
        ("pending", 1), ("pending", 1)]
    # And once a paused host's time is over it is let go, and the new host can be paused
    async with hub.ctx.store.transaction() as tx:
        await tx.execute("UPDATE delivery_pauses SET paused_until = ? WHERE host = ?",
                         (over, "https://h0.example"))
    more = await _queue(hub, url, [("Create", "2")], prefix="more")
    await settle(hub)
    assert inbox.received == [*ids, *more]
    assert await paused_until(hub, origin(url)) is not None
    assert await hub.count("SELECT count(*) FROM delivery_pauses") <= MAX_PAUSED_HOSTS
