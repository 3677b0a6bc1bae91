"""Notifications for events that cross nodes, between two real nodes on 127.0.0.1: a booking
from another community tells the author, the author's answer tells the booker on their own
node, money arriving through a trust line tells the payee, a trust-line offer tells admins."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import aiohttp
from aiosmtpd.controller import Controller

from meshnode.config import EmailConfig
from meshnode.federation.mail import MAIL_WORKER
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.services import deals, email, members, notifications
from meshnode.services import iou as svc
from meshnode.store.members import MemberRow
from tests.conftest import ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.iou_helpers import handle, open_line
from tests.federation.test_deal_payments import _author_side, _setup
from tests.web.test_email import Inbox, _free_port

NS = {"a": "http://www.w3.org/2005/Atom"}


async def _types(node: Node, member: MemberRow) -> list[str]:
    rows = await notifications.list_notifications(node.ctx, member)
    return [row.type for row in rows]


async def test_cross_node__booking_from_another_community_notifies_author_then_booker(
    make_node: NodeFactory,
) -> None:
    # Given alice's paid ride on alpha, seen on beta, and a trust line beta—alpha
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    # When bob@beta books a seat
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    # Then alice is told on alpha, pointing at alpha's copy of the deal
    theirs = await _author_side(a, deal)
    items = await notifications.list_notifications(a.ctx, alice)
    assert [(i.type, i.ref, i.target_url) for i in items] == [
        ("booking_requested", theirs.id, f"/deals/{theirs.id}")]
    assert await _types(b, bob) == []
    # When alice accepts: bob is told on beta, and the payment through the line reaches alice
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    assert await _types(b, bob) == ["booking_accepted"]
    assert await _types(a, alice) == ["payment_received", "booking_requested"]
    # When bob cancels in time, alice is told
    await deals.act(b.ctx, bob, deal.id, "cancel")
    await settle(a, b)
    assert (await _types(a, alice))[0] == "booking_cancelled"


async def test_cross_node__payment_through_a_trust_line_notifies_the_payee_only(
    make_node: NodeFactory,
) -> None:
    # Given alpha—beta with a line, alice on alpha, bob on beta
    a, b = await make_node("alpha"), await make_node("beta")
    alice, bob = await a.member("alice"), await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="2")
    # When alice pays bob@beta 10.00 alpha
    status = await svc.pay_remote(a.ctx, alice, handle(b, "bob"), 1000, "merci pour le vélo",
                                  network=a.app[IOU_NETWORK])
    await settle(a, b)
    # Then bob is told on beta with beta's amount; alice (the payer) is told nothing
    items = await notifications.list_notifications(b.ctx, bob)
    assert [(i.type, i.ref, i.amount, i.detail) for i in items] == [
        ("payment_received", status.id, 2000, "merci pour le vélo")]
    assert await _types(a, alice) == []


async def test_cross_node__trust_line_offer_notifies_the_admins_of_the_receiving_node(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    admin = await members.add_member(b.ctx, username="camille", password=None, is_admin=True)
    plain = await b.member("bob")
    await svc.propose_line(a.ctx, None, peer=b.url, limit_out="10", limit_in="10", rate="1")
    await settle(a, b)
    items = await notifications.list_notifications(b.ctx, admin)
    assert [(i.type, i.target_url) for i in items] == [("trustline_proposed",
                                                        "/admin/trustlines")]
    assert await _types(b, plain) == []


async def test_cross_node__atom_feed_carries_only_the_communitys_own_listings(
    make_node: NodeFactory,
) -> None:
    # Given alice's ride on alpha, federated to beta, and carol's table on beta
    a, b, _alice, _bob, remote = await _setup(make_node, ride_listing(), line=False)
    carol = await b.member("carol")
    await b.publish(carol, category="give", title="Table à donner", price={"mode": "free"},
                    details={})
    # When a feed reader fetches each node's feed over HTTP
    async with aiohttp.ClientSession() as http:
        feeds = {}
        for node in (a, b):
            async with http.get(f"{node.url}/feed.atom") as response:
                assert response.status == 200
                feeds[node.config.handle] = ET.fromstring(await response.read())
    # Then each lists its own listings only
    titles = {handle: [e.findtext("a:title", namespaces=NS) for e in feed.findall("a:entry", NS)]
              for handle, feed in feeds.items()}
    assert titles == {"alpha": [remote.title], "beta": ["Table à donner"]}


async def test_cross_node__booking_from_another_community_is_mailed_to_the_author(
    make_node: NodeFactory,
) -> None:
    # Given alpha sends mail through a real SMTP server on 127.0.0.1, and alice verified
    # her address
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        a = await make_node("alpha", email=EmailConfig(
            host="127.0.0.1", port=port, security="none", from_address="alpha@canal.example"))
        b = await make_node("beta")
        await peer(a, b)
        alice, bob = await a.member("alice"), await b.member("bob")
        worker = a.app[MAIL_WORKER]
        await email.set_address(a.ctx, alice, "alice@canal.example")
        await worker.step()
        token = inbox.messages[0].get_body(("plain",)).get_content().split("/email/verify/")[1]
        await email.verify_address(a.ctx, token.split()[0])
        view = await a.publish(alice, price={"mode": "free"})
        await settle(a, b)
        remote = await b.remote(view.row.object_id)
        assert remote is not None
        # When bob@beta books a seat
        await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
        await settle(a, b)
        await worker.step()
    finally:
        controller.stop()
    # Then alice receives one mail about it, in French, linking to alpha's deal page
    booked = inbox.messages[-1]
    assert len(inbox.messages) == 2
    assert booked["Subject"] == "[Community alpha] Quelqu’un demande à réserver votre annonce"
    assert f"{a.url}/deals/" in booked.get_body(("plain",)).get_content()
