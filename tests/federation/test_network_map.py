"""The network map pages (issue 19) over real nodes on 127.0.0.1: a peer with a trust line
and a payment, a community only heard of through a relay, and a peer that stopped answering.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import aiohttp

from meshnode.config import MapConfig
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.services import iou as svc
from tests.federation.browser import browser, page, person
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.iou_helpers import handle, open_line

NS = "{http://www.w3.org/2000/svg}"
EN = {"Accept-Language": "en"}
HOSTILE = 'Beta <script>alert(1)</script> "]]>'


def _svg(html: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", html, re.S)
    assert found is not None, "no SVG on the page"
    return ET.fromstring(found.group(0))


def _edge_classes(root: ET.Element) -> list[str]:
    legend = {id(e) for g in root.iter(f"{NS}g") if g.get("class") == "legend"
              for e in g.iter()}
    return [line.get("class", "") for line in root.iter(f"{NS}line") if id(line) not in legend]


async def _network(make_node: NodeFactory, **alpha: object) -> tuple[Node, Node, Node, Node]:
    """alpha — beta (trust line, alice paid bob 12.50), beta — gamma (alpha knows gamma only
    through beta: beta follows it and relays its listings), alpha — delta (delta then stops
    answering)."""
    a = await make_node("alpha", **alpha)
    b = await make_node("beta")
    c, d = await make_node("gamma"), await make_node("delta")
    await peer(b, c, a, d)
    await peer(a, b, c, d)
    await peer(a, d, b, c)
    await open_line(a, b, c, d, limit_out="50", limit_in="40", rate="1")
    alice, _ = await person(a, "alice"), await b.member("bob")
    await svc.pay_remote(a.ctx, alice, handle(b, "bob"), 1250, "jam",
                         network=a.app[IOU_NETWORK])
    await c.publish(await c.member("carol"))
    await settle(a, b, c, d)
    await d.stop()
    # beta's cached name as a hostile community could choose it (stored as if fetched)
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE remote_actors SET name = ? WHERE id = ?", (HOSTILE, b.group))
    await a.publish(alice)  # its delivery to delta fails
    await settle(a, b, c)
    return a, b, c, d


async def test_network_map__admin_page_draws_peers_lines_volumes_relays_and_failures(
    make_node: NodeFactory,
) -> None:
    a, _, c, d = await _network(make_node)
    await person(a, "root", admin=True)
    async with browser(a, "root") as session:
        html = await page(session, "/admin/network")
    root = _svg(html)
    # Then the SVG is titled and described for screen readers
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "netmap-title netmap-desc"
    assert "Community alpha" in (root.find(f"{NS}title").text or "")  # type: ignore[union-attr]
    assert root.find(f"{NS}desc") is not None
    # and draws four communities: alpha, beta (hostile name, escaped), delta, gamma
    labels = [t.text or "" for g in root.iter(f"{NS}g") if "node" in g.get("class", "")
              for t in g.iter(f"{NS}text")]
    assert labels[0] == "Community alpha"
    assert any(label.startswith("Beta <script>") for label in labels)
    assert "<script>alert(1)</script>" not in html
    assert not list(root.iter(f"{NS}script"))
    # a trust line with its 30-day volume, a failing delivery, a community heard of
    edges = _edge_classes(root)
    # (beta follows gamma: drawn as a thin line between them, not through alpha)
    assert sorted(edges) == ["edge edge-failing", "edge edge-heard", "edge edge-line",
                             "edge edge-peered"]
    assert "30 d: 12.50\u00a0G" in html
    # And the table below says the same, with limits and the balance
    assert "Known through our peers" in html
    assert "Whom our peers peer with" in html
    assert c.config.public_url.removeprefix("http://") in html
    assert "50.00\u00a0G / 40.00\u00a0G" in html
    assert "we owe them 12.50\u00a0G" in html
    assert "12.50\u00a0G (1 transfer)" in html
    assert "failing since" in html
    assert d.config.public_url.removeprefix("http://") in html


async def test_network_map__public_page_hides_balances_and_limits_by_default(
    make_node: NodeFactory,
) -> None:
    a, *_ = await _network(make_node)
    async with aiohttp.ClientSession(headers=EN) as session, \
            session.get(f"{a.url}/network") as resp:
        assert resp.status == 200
        html = await resp.text()
    root = _svg(html)
    assert sorted(_edge_classes(root)) == ["edge edge-failing", "edge edge-heard",
                                           "edge edge-line", "edge edge-peered"]
    assert "30 d: 12.50\u00a0G" in html  # volumes are public
    assert "we owe them" not in html
    assert "50.00\u00a0G" not in html
    assert "Balance" not in html


async def test_network_map__public_balances_when_the_admin_chose_to_publish_them(
    make_node: NodeFactory,
) -> None:
    a, *_ = await _network(make_node, map=MapConfig(public_balances=True))
    async with aiohttp.ClientSession(headers=EN) as session, \
            session.get(f"{a.url}/network") as resp:
        html = await resp.text()
    assert "we owe them 12.50\u00a0G" in html
    assert "50.00\u00a0G / 40.00\u00a0G" in html


async def test_network_map__public_page_off_is_404_and_admin_page_needs_an_admin(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha", map=MapConfig(public=False))
    await person(a, "alice")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{a.url}/network") as resp:
            assert resp.status == 404
        async with session.get(f"{a.url}/admin/network", allow_redirects=False) as resp:
            assert resp.status in (302, 303)
    async with browser(a, "alice") as session, session.get(f"{a.url}/admin/network") as resp:
        assert resp.status == 403
