"""The Atom feed: valid XML a stdlib parser reads, this community's listings only, hostile
titles escaped (never markup), an unknown category refused."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from aiohttp.test_utils import TestClient

from meshnode.protocol.atom import FeedEntry, FeedHead, build_feed, xml_text
from meshnode.services import listings
from meshnode.services.context import NodeContext
from tests.conftest import START, TestMember, ride_listing

NS = {"a": "http://www.w3.org/2005/Atom"}


async def _feed(client: TestClient, query: str = "") -> ET.Element:
    response = await client.get(f"/feed.atom{query}")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(await response.read())


async def test_feed__lists_active_local_listings_newest_first_with_links(
    client: TestClient, ctx: NodeContext, alice: TestMember,
) -> None:
    first = await listings.create_listing(ctx, alice.row, ride_listing(title="Trajet un"))
    second = await listings.create_listing(ctx, alice.row, ride_listing(
        category="give", title="Table à donner", price={"mode": "free"}, details={}))
    feed = await _feed(client)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    assert feed.findtext("a:title", namespaces=NS) == "Les Voisins du Canal"
    entries = feed.findall("a:entry", NS)
    assert [e.findtext("a:title", namespaces=NS) for e in entries] == [
        "Table à donner", "Trajet un"]
    top = entries[0]
    assert top.findtext("a:id", namespaces=NS) == second.row.object_id
    link = top.find("a:link", NS)
    assert link is not None
    assert link.get("href") == f"http://127.0.0.1:8080/listings/{second.row.id}"
    assert top.findtext("a:author/a:name", namespaces=NS) == "alice"
    assert feed.findtext("a:updated", namespaces=NS) == second.row.updated_at
    assert first.row.id  # both listed
    rides = await _feed(client, "?category=ride")
    assert [e.findtext("a:title", namespaces=NS) for e in rides.findall("a:entry", NS)] == [
        "Trajet un"]


async def test_feed__withdrawn_listings_are_left_out(
    client: TestClient, ctx: NodeContext, alice: TestMember,
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing())
    await listings.withdraw_listing(ctx, alice.row, view.row.id)
    assert (await _feed(client)).findall("a:entry", NS) == []


async def test_feed__hostile_title_and_description_stay_text(
    client: TestClient, ctx: NodeContext, alice: TestMember,
) -> None:
    hostile = "<script>alert(1)</script> & ]]> \"'"
    await listings.create_listing(ctx, alice.row, ride_listing(
        title=hostile[:120], description="<img src=x onerror=alert(1)> & co"))
    raw = await (await client.get("/feed.atom")).text()
    assert "<script>" not in raw
    assert "<img" not in raw
    entry = (await _feed(client)).find("a:entry", NS)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=NS) == hostile
    assert entry.findtext("a:summary", namespaces=NS) == "<img src=x onerror=alert(1)> & co"


def test_atom__characters_xml_cannot_carry_are_dropped_and_the_feed_still_parses() -> None:
    # Given an entry (e.g. from a future code path) whose text holds NUL, ESC and U+FFFE
    entry = FeedEntry(id="http://127.0.0.1:8080/o/1", title="a\x00b\x1bc\ufffe",
                      summary="x" * 600, link="http://127.0.0.1:8080/listings/1",
                      author="al\x07ice", category="ride", published="2026-11-26T10:00:00Z",
                      updated="2026-11-26T10:00:00Z")
    head = FeedHead(id="urn:x", title="T", self_url="http://127.0.0.1:8080/feed.atom",
                    site_url="http://127.0.0.1:8080/")
    # When the feed is built, Then it parses and the forbidden characters are gone
    feed = ET.fromstring(build_feed(head, [entry], START))
    assert feed.findtext("a:entry/a:title", namespaces=NS) == "abc"
    assert feed.findtext("a:entry/a:author/a:name", namespaces=NS) == "alice"
    summary = feed.findtext("a:entry/a:summary", namespaces=NS)
    assert summary is not None
    assert len(summary) == 500
    assert summary.endswith("…")
    assert xml_text("ok\t\n") == "ok\t\n"


def test_atom__empty_feed_is_dated_now() -> None:
    head = FeedHead(id="urn:x", title="T", self_url="s", site_url="s")
    feed = ET.fromstring(build_feed(head, [], START))
    assert feed.findtext("a:updated", namespaces=NS) == "2026-11-26T10:00:00Z"


@pytest.mark.parametrize("query", ["?category=weapons", "?category=", "?category=%3Cx%3E"])
async def test_feed__unknown_category_is_refused(client: TestClient, query: str) -> None:
    response = await client.get(f"/feed.atom{query}", headers={"Accept": "application/json"})
    assert response.status == 422
    assert set(await response.json()) == {"error", "message", "fields"}
