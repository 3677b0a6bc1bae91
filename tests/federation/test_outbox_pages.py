"""Outbox pages as catch-up reads them, served from the stored text (issue 17: the 30-minute
soak's cliff, when every peer's catch-up walks a hub's outbox at once).

Real nodes on 127.0.0.1 and real SQLite: whole pages splice the stored activities and stop
at ``PAGE_CHARS``; summary pages take their fields from SQLite's ``json_extract`` and must
say exactly what ``summary_item`` says of the parsed body; at most ``OUTBOX_BUILDS`` whole
pages are built at once, a bounded queue waits, more are refused with 503; each node's
catch-up period is its own (``sync_interval``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from meshnode.federation import actors
from meshnode.federation.state import OUTBOX_RETRY_AFTER, PageGate
from meshnode.federation.sync import SYNC_INTERVAL, SYNC_JITTER, sync_interval
from meshnode.protocol.parsing import MAX_SQL_INT
from meshnode.protocol.vocab import ACTIVITY_JSON
from tests.federation.conftest import Node, NodeFactory, peer, settle

ACCEPT = {"Accept": ACTIVITY_JSON}
# Bodies a node stores (or a future version might) that test every branch of summary_item.
ODD_BODIES: list[dict[str, Any]] = [
    {"type": "Follow", "object": "https://elsewhere.example/groups/x"},
    {"type": "Announce", "object": {"id": 5, "updated": "2026-12-04T01:00:00Z"}},
    {"type": "Update", "object": {"id": "https://a.example/o/3", "updated": "",
                                  "published": "2026-12-04T02:00:00Z"}},
    {"type": "Update", "object": {"id": "https://a.example/o/4", "updated": 12,
                                  "published": "2026-12-04T02:00:00Z"}},
    {"type": "Delete", "object": {"id": "https://a.example/o/5",
                                  "deleted": "2026-12-04T03:00:00Z"}},
    {"type": "Update", "object": {"id": "https://a.example/o/6", "updated": {},
                                  "published": "2026-12-04T04:00:00Z"}},
    {"type": "Update", "object": {"id": "https://a.example/o/7", "updated": None,
                                  "published": None, "deleted": "2026-12-04T05:00:00Z"}},
    {"type": "Create", "object": {"id": "https://a.example/o/é8", "updated": "été",
                                  "name": "Vélo \u2028 \"cité\""}},
    {"type": "Create", "object": [{"id": "https://a.example/o/9"}]},
    {"type": "Create", "object": {"published": "2026-12-04T06:00:00Z"}},
]


async def get_json(url: str, *, status: int = 200) -> Any:
    async with ClientSession() as http, http.get(url, headers=ACCEPT) as response:
        text = await response.text()
        assert response.status == status, text
        return json.loads(text) if status == 200 else response.headers


async def stored(node: Node) -> list[tuple[int, str]]:
    """(seq, body) of every public outbox activity, oldest first."""
    async with node.ctx.store.reader.execute(
            "SELECT seq, body FROM outbox_activities WHERE public = 1 ORDER BY seq") as cursor:
        return [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]


async def add_odd_rows(node: Node) -> None:
    """Store ``ODD_BODIES`` as public outbox activities of the node's Group."""
    async with node.ctx.store.transaction() as tx:
        for number, body in enumerate(ODD_BODIES):
            activity = {"id": f"{node.group}/odd/{number}", "actor": node.group, **body}
            await tx.execute(
                "INSERT INTO outbox_activities (activity_id, actor, type, object_id, public,"
                " body, created_at) VALUES (?,?,?,NULL,1,?,'2026-12-04T00:00:00Z')",
                (activity["id"], node.group, body["type"],
                 json.dumps(activity, ensure_ascii=False, separators=(",", ":"))))


async def walk(node: Node, first: str) -> list[dict[str, Any]]:
    """Every page from ``first`` on, following ``next`` (at most 200 pages)."""
    pages, url = [], first
    for _ in range(200):
        page = await get_json(url)
        pages.append(page)
        if "next" not in page or not page["orderedItems"]:
            return pages
        url = page["next"]
    raise AssertionError("the outbox walk did not end")


async def test_summary_pages__say_what_summary_item_says_of_each_parsed_body(
    make_node: NodeFactory,
) -> None:
    # Given an outbox with listings created, updated and withdrawn, and odd bodies
    a = await make_node("alpha")
    alice = await a.member("alice")
    views = [await a.publish(alice, title=f"Trajet {n}") for n in range(3)]
    from meshnode.services import listings
    await listings.withdraw_listing(a.ctx, alice, views[0].row.id)
    await add_odd_rows(a)
    rows = await stored(a)
    # When the summary pages are walked
    pages = await walk(a, f"{a.group}/outbox?after=0&summary=1")
    # Then each item is summary_item of the stored body, in order, none missing
    items = [item for page in pages for item in page["orderedItems"]]
    assert items == [actors.summary_item(json.loads(body), seq) for seq, body in rows]
    assert len(items) == len(ODD_BODIES) + 4
    stamps = {item["object"]: item["stamp"] for item in items if "object" in item}
    assert stamps["https://a.example/o/3"] == "2026-12-04T02:00:00Z"  # "" is no stamp
    assert "https://a.example/o/4" not in stamps  # 12 is truthy and no string: no stamp
    assert stamps["https://a.example/o/6"] == "2026-12-04T04:00:00Z"
    assert stamps["https://a.example/o/é8"] == "été"


async def test_summary_pages__a_next_link_only_after_a_full_page(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 5 activities and summary pages of 2
    monkeypatch.setattr(actors, "PAGE_SIZE", 2)
    a = await make_node("alpha")
    alice = await a.member("alice")
    for n in range(5):
        await a.publish(alice, title=f"Trajet {n}")
    # When they are walked
    pages = await walk(a, f"{a.group}/outbox?after=0&summary=1")
    # Then 2 + 2 + 1 items, the last page without next
    assert [len(page["orderedItems"]) for page in pages] == [2, 2, 1]
    assert "next" not in pages[-1]
    assert all(page["next"].endswith("&summary=1") for page in pages[:-1])


async def test_whole_pages__stop_at_page_chars_and_serve_every_activity_once_as_stored(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 12 listings and a cap of about three of them a page
    a = await make_node("alpha")
    alice = await a.member("alice")
    for n in range(12):
        await a.publish(alice, title=f"Trajet {n}")
    await add_odd_rows(a)
    rows = await stored(a)
    cap = 3 * max(len(body) for _, body in rows)
    monkeypatch.setattr(actors, "PAGE_CHARS", cap)
    # When the whole pages are walked
    pages = await walk(a, f"{a.group}/outbox?after=0")
    # Then no page's activities pass the cap, and all of them come once, in order, as stored
    served = [page["orderedItems"] for page in pages]
    assert [item for items in served for item in items] == [json.loads(b) for _, b in rows]
    lengths = iter(len(body) for _, body in rows)
    sizes = [[next(lengths) for _ in items] for items in served]
    assert all(sum(page) <= cap for page in sizes)
    # ...and each page took as many as fitted (the next one would have passed the cap)
    assert all(sum(page) + following[0] > cap for page, following in itertools.pairwise(sizes)
               if following)
    assert len(pages) >= 12 / 3 + 1
    assert pages[-1]["orderedItems"] == []
    assert "next" not in pages[-1]
    async with ClientSession() as http, http.get(f"{a.group}/outbox?after=0",
                                                  headers=ACCEPT) as response:
        text = await response.text()
    assert rows[0][1] in text  # spliced: the stored text itself, not a re-serialisation


async def test_whole_pages__an_activity_longer_than_the_cap_is_served_alone(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given activities all longer than the page cap
    monkeypatch.setattr(actors, "PAGE_CHARS", 10)
    a = await make_node("alpha")
    alice = await a.member("alice")
    for n in range(3):
        await a.publish(alice, title=f"Trajet {n}")
    # When the whole pages are walked
    pages = await walk(a, f"{a.group}/outbox?after=0")
    # Then each page has one (the walk goes on: a peer is never stuck on an empty page)
    assert [len(page["orderedItems"]) for page in pages] == [1, 1, 1, 0]


@pytest.mark.parametrize("after", ["-1", "1.5", "0x10", "9" * 19, "", "1 "])
@pytest.mark.parametrize("summary", ["", "&summary=1"])
async def test_outbox__a_malformed_cursor_is_400(
    make_node: NodeFactory, after: str, summary: str
) -> None:
    a = await make_node("alpha")
    await get_json(f"{a.group}/outbox?after={after}{summary}", status=400)
    # And the outbox is served as before to the next reader
    assert (await get_json(f"{a.group}/outbox"))["type"] == "OrderedCollection"


@pytest.mark.parametrize("summary", ["", "&summary=1"])
async def test_outbox__the_largest_cursor_is_an_empty_last_page(
    make_node: NodeFactory, summary: str
) -> None:
    a = await make_node("alpha")
    alice = await a.member("alice")
    await a.publish(alice)
    page = await get_json(f"{a.group}/outbox?after={MAX_SQL_INT}{summary}")
    assert page["orderedItems"] == []
    assert "next" not in page


async def test_whole_pages__a_flood_waits_in_a_bounded_queue_then_gets_503(
    make_node: NodeFactory,
) -> None:
    # Given a node building one whole page at a time with one request allowed to wait
    a = await make_node("alpha")
    alice = await a.member("alice")
    await a.publish(alice)
    gate = a.fed.outbox_gate = PageGate(builds=1, waiting_max=1)
    async with gate.turn():  # the one build slot is taken (a page being built)
        # When one request comes, then another
        waiting = asyncio.create_task(get_json(f"{a.group}/outbox?after=0"))
        for _ in range(200):
            if gate.waiting == 1:
                break
            await asyncio.sleep(0.01)
        assert gate.waiting == 1
        assert not waiting.done()
        headers = await get_json(f"{a.group}/outbox?after=0", status=503)
        # Then the second is refused with Retry-After; summary pages are still served
        assert headers["Retry-After"] == str(OUTBOX_RETRY_AFTER)
        assert len((await get_json(f"{a.group}/outbox?after=0&summary=1"))["orderedItems"]) == 1
    # And the first is served once the slot is free
    page = await asyncio.wait_for(waiting, 10)
    assert len(page["orderedItems"]) == 1
    assert gate.waiting == 0


async def test_whole_pages__a_request_that_leaves_the_queue_frees_its_place(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha")
    gate = a.fed.outbox_gate = PageGate(builds=1, waiting_max=1)
    async with gate.turn():
        async def queued() -> None:
            async with gate.turn():
                raise AssertionError("never reached")

        task = asyncio.create_task(queued())
        await asyncio.sleep(0.05)
        assert gate.waiting == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.waiting == 0
    await get_json(f"{a.group}/outbox?after=0")


def test_sync_interval__each_node_its_own_within_the_jitter() -> None:
    handles = [f"quartier{number}" for number in range(100)]
    intervals = [sync_interval(handle) for handle in handles]
    assert all(SYNC_INTERVAL - SYNC_JITTER < value <= SYNC_INTERVAL for value in intervals)
    assert intervals == [sync_interval(handle) for handle in handles]  # after a restart too
    minutes = {int(value / timedelta(minutes=1)) for value in intervals}
    assert len(minutes) == int(SYNC_JITTER / timedelta(minutes=1))  # spread over them all


async def test_catch_up__due_after_the_node_s_own_interval_not_before(
    make_node: NodeFactory,
) -> None:
    # Given b peered with a, its catch-up done
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    await settle(a, b)
    pulls: list[str] = []
    real_get = b.fed.client.get_json

    async def recording_get(url: str, **kwargs: Any) -> Any:
        pulls.append(url)
        return await real_get(url, **kwargs)

    b.fed.client.get_json = recording_get  # type: ignore[method-assign]
    interval = sync_interval(b.config.handle)
    # When its own interval has not quite passed, nothing is pulled; once it has, it is
    b.clock.advance(seconds=interval.total_seconds() - 5)
    await b.workers.sync.step()
    assert pulls == []
    b.clock.advance(seconds=6)
    await b.workers.sync.step()
    assert any("/outbox?after=" in url for url in pulls)
