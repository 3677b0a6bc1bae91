"""Catch-up from a peer that published nothing new: one small request (issue 20).

Two and three real nodes on 127.0.0.1; every GET a node makes is recorded by wrapping its
federation client, and the peer's ``following`` is read conditionally (ETag, 304).
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession, web

from meshnode.federation import peering
from meshnode.federation.http import MAX_ETAG, FederationClient, UrlGuard
from meshnode.federation.sync import FOLLOWING_INTERVAL, SYNC_INTERVAL
from meshnode.protocol.vocab import ACTIVITY_JSON
from tests.federation.conftest import Node, NodeFactory, bind_socket, peer, settle


def record_gets(node: Node) -> list[str]:
    """The URLs of every GET ``node``'s federation client makes from now on."""
    client, urls = node.fed.client, []
    plain, conditional = client.get_json, client.get_json_if_changed

    async def get_json(url: str, **kwargs: Any) -> Any:
        urls.append(url)
        return await plain(url, **kwargs)

    async def get_json_if_changed(url: str, etag: str | None, **kwargs: Any) -> Any:
        fetched = await conditional(url, etag, **kwargs)
        urls.append(f"{url} If-None-Match {etag}: {200 if fetched.modified else 304}")
        return fetched

    client.get_json = get_json  # type: ignore[method-assign]
    client.get_json_if_changed = get_json_if_changed  # type: ignore[method-assign]
    return urls


async def last_sync(node: Node) -> str:
    row = await (await node.ctx.store.reader.execute("SELECT last_sync_at FROM peers")).fetchone()
    assert row is not None
    return str(row[0])


async def test_catch_up__an_unchanged_peer_costs_one_summary_request(
    make_node: NodeFactory,
) -> None:
    # Given b peered with a and holding everything a published (by push)
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    await a.publish(alice)
    await settle(a, b)
    before = await last_sync(b)
    gets = record_gets(b)
    # When b's periodic catch-up from a runs
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    applied = await b.workers.sync.step()
    # Then it read one empty summary page: no whole page, no following (read at peering)
    assert applied == 0
    assert len(gets) == 1
    assert "?after=" in gets[0]
    assert gets[0].endswith("&summary=1")
    # And the pull is recorded, so the next one waits a whole period
    assert await last_sync(b) > before
    gets.clear()
    b.clock.advance(seconds=60)
    await b.workers.sync.step()
    assert gets == []


async def test_catch_up__a_listing_missed_after_an_unchanged_pass_is_still_pulled(
    make_node: NodeFactory,
) -> None:
    # Given b's catch-up from a found nothing new
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    await a.publish(alice)
    await settle(a, b)
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    # When a publishes while b is down (the push fails), then b comes back after a period
    await b.stop()
    missed = await a.publish(alice, title="Publié pendant la panne")
    await a.workers.delivery.step()
    await b.start()
    gets = record_gets(b)
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    applied = await b.workers.sync.step()
    # Then the summary showed an activity b lacks and the whole page brought it
    assert applied >= 1
    assert await b.remote(missed.row.object_id) is not None
    assert [url for url in gets if "?after=" in url and "summary=1" not in url]


async def test_following__unchanged_is_a_304_and_a_new_peering_is_read_again(
    make_node: NodeFactory,
) -> None:
    # Given b peered with a (b read a's following then) and a period of no change
    a = await make_node("alpha")
    b = await make_node("beta")
    c = await make_node("gamma")
    await peer(a, b)
    links = "SELECT count(*) FROM peer_links WHERE target = ?"
    assert await b.count(links, c.url) == 0
    gets = record_gets(b)
    # When b's catch-up runs once the following interval has passed
    b.clock.advance(seconds=FOLLOWING_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    # Then b asked for a's following with the ETag it had, and a answered 304
    conditional = [url for url in gets if "/following" in url]
    assert len(conditional) == 1
    assert "If-None-Match None" not in conditional[0]
    assert conditional[0].endswith(": 304")
    # When a peers with c, and b's next read is due
    await peering.add_peer(a.ctx, c.url)
    await settle(a, b, c)
    gets.clear()
    b.clock.advance(seconds=FOLLOWING_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    # Then the changed list was read whole and the map learnt the a — c link
    assert next(url for url in gets if "/following" in url).endswith(": 200")
    assert await b.count(links, c.url) == 1


async def test_following__a_matching_if_none_match_gets_a_bodiless_304(
    make_node: NodeFactory,
) -> None:
    # Given a node with a peer, and its following page read once
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    url = f"{a.group}/following?page=1"
    first = await b.fed.client.get_json_if_changed(url, None)
    assert first.modified
    assert first.etag is not None
    assert first.document["orderedItems"] == [b.group]
    async with ClientSession() as session:
        # When it is asked again with that ETag
        async with session.get(url, headers={"If-None-Match": first.etag,
                                             "Accept": ACTIVITY_JSON}) as response:
            # Then the answer is 304 with no body
            assert response.status == 304
            assert await response.read() == b""
        # And a stale ETag gets the whole page
        async with session.get(url, headers={"If-None-Match": '"stale"',
                                             "Accept": ACTIVITY_JSON}) as response:
            assert response.status == 200
    again = await b.fed.client.get_json_if_changed(url, first.etag)
    assert not again.modified
    assert again.document is None


async def test_following__an_overlong_etag_from_a_peer_is_not_kept() -> None:
    # Given a server whose ETag is longer than MAX_ETAG
    async def handler(request: web.Request) -> web.Response:
        response = web.json_response({"orderedItems": []})
        response.headers["ETag"] = '"' + "x" * MAX_ETAG + '"'
        return response

    app = web.Application()
    app.router.add_get("/following", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = bind_socket()
    await web.SockSite(runner, sock).start()
    port = sock.getsockname()[1]
    try:
        async with ClientSession() as session:
            client = FederationClient(session, UrlGuard())
            # When the client reads it
            fetched = await client.get_json_if_changed(
                f"http://127.0.0.1:{port}/following", None)
    finally:
        await runner.cleanup()
    # Then the document is read but the ETag is dropped (it would be stored and sent back)
    assert fetched.document == {"orderedItems": []}
    assert fetched.etag is None


async def test_catch_up__summary_pages_are_walked_until_one_without_next(
    make_node: NodeFactory, monkeypatch: Any,
) -> None:
    from meshnode.federation import actors
    monkeypatch.setattr(actors, "PAGE_SIZE", 2)
    # Given b holds three of a's listings by push and misses a fourth (b was down)
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    for n in range(3):
        await a.publish(alice, title=f"Trajet {n}")
    await settle(a, b)
    await b.stop()
    missed = await a.publish(alice, title="Publié pendant la panne")
    await a.workers.delivery.step()
    await b.start()
    gets = record_gets(b)
    # When b's catch-up runs (summary pages of two items)
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    # Then the full first summary page led to the next, whose unknown item was pulled whole
    summaries = [url for url in gets if "summary=1" in url]
    assert len(summaries) >= 2
    assert await b.remote(missed.row.object_id) is not None
    # And the next catch-up reads one summary page past the new cursor, nothing else
    gets.clear()
    b.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    await b.workers.sync.step()
    assert len(gets) == 1
    assert gets[0].endswith("&summary=1")
