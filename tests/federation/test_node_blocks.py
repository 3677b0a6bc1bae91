"""Blocking a whole node explicitly: the admin sees what it does first, confirms, and can
lift it. Two real nodes peered with a trust line (1 beta = 2 alpha); bob on beta borrows
alice's chainsaw on alpha with a 30.00 alpha deposit held on beta's ledger."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from meshnode.services import deals, iou, members
from meshnode.store.deals import DealRow
from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants
from tests.federation.test_deal_payments import _author_side, _setup
from tests.federation.test_deals_cross_node import SLOT, _holds, _loan, _paid_ride
from tests.federation.test_flags import api

Loan = tuple[Node, Node, Any, Any, DealRow, dict[str, str]]


@pytest.fixture
async def loan(make_node: NodeFactory) -> Loan:
    a, b, alice, bob, remote = await _setup(make_node, _loan())
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    await settle(a, b)
    assert (await _author_side(a, deal)).state == "accepted"
    await members.add_member(b.ctx, username="bea", password=None, is_admin=True)
    token = await members.create_token(b.ctx, "bea")
    return a, b, alice, bob, deal, {"Authorization": f"Bearer {token.secret}"}


async def _visible(node: Node) -> int:
    return await node.count("SELECT count(*) FROM listings WHERE is_local = 0 AND hidden = 0")


async def test_block_preview__lists_listings_deals_line_and_changes_nothing(loan: Loan) -> None:
    a, b, _alice, _bob, deal, bea = loan
    status, seen = await api(b, "POST", "/api/v1/blocks/preview", bea, {"peer": a.url})
    assert status == 200, seen
    assert seen["origin"] == a.url
    assert seen["listings_hidden"] == 1
    [effect] = seen["deals"]
    assert (effect["id"], effect["action"], effect["held"]) == (deal.id, "cancel", "15.00")
    [line] = seen["lines"]
    assert (line["state"], line["freeze"]) == ("active", True)
    # nothing changed
    assert await _visible(b) == 1
    assert await _holds(b, f"deal:{deal.id}:deposit") == [1500]
    assert (await iou.list_lines(b.ctx))[0].state == "active"
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0


async def test_block__without_confirmation_is_refused_and_changes_nothing(loan: Loan) -> None:
    a, b, _alice, _bob, deal, bea = loan
    status, error = await api(b, "POST", "/api/v1/blocks", bea, {"peer": a.url})
    assert status == 422
    assert "confirm" in error["fields"]
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
    assert await _holds(b, f"deal:{deal.id}:deposit") == [1500]


async def test_block__hides_listings_cancels_the_deal_releases_the_deposit_freezes_the_line(
    loan: Loan,
) -> None:
    a, b, _alice, bob, deal, bea = loan
    # When beta's admin confirms the block of alpha
    status, done = await api(b, "POST", "/api/v1/blocks", bea, {"peer": a.url, "confirm": True})
    assert status == 200, done
    assert [d["outcome"] for d in done["deals"]] == ["cancelled"]
    await settle(a, b)
    # Then alpha's listing is hidden (kept, not deleted), the loan is cancelled and the
    # deposit held on bob's account released
    assert await _visible(b) == 0
    assert await b.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "cancelled"
    assert await _holds(b, f"deal:{deal.id}:deposit") == []
    # and the line is frozen (no payment crosses a frozen line: test_iou_lines_live)
    assert (await iou.list_lines(b.ctx))[0].state == "frozen"
    # and alpha heard of both before the door closed behind them
    assert (await _author_side(a, deal)).state == "cancelled"
    assert (await iou.list_lines(a.ctx))[0].state == "frozen"
    # and alpha is blocked at beta's door
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 1


async def test_unblock__shows_the_listings_again_and_unfreezes_the_line(loan: Loan) -> None:
    a, b, _alice, _bob, _deal, bea = loan
    await api(b, "POST", "/api/v1/blocks", bea, {"peer": a.url, "confirm": True})
    await settle(a, b)
    status, done = await api(b, "POST", "/api/v1/blocks/undo", bea, {"peer": a.url})
    assert status == 200, done
    assert done["listings_shown"] == 1
    await settle(a, b)
    assert await _visible(b) == 1
    assert (await iou.list_lines(b.ctx))[0].state == "active"
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
    status, _ = await api(b, "POST", "/api/v1/blocks/undo", bea, {"peer": a.url})
    assert status == 409


async def test_peers_api_block__is_the_preview_then_confirm_block_and_keeps_listings(
    loan: Loan,
) -> None:
    a, b, _alice, bob, deal, bea = loan
    # Given beta's admin calls the peering API's block without confirming
    status, error = await api(b, "POST", "/api/v1/peers/block", bea, {"peer": a.url})
    # Then it is refused and nothing changed (it used to delete alpha's listings at once)
    assert status == 422, error
    assert "confirm" in error["fields"]
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
    assert await _visible(b) == 1
    # When it confirms, naming the node by a handle on it
    host = a.url.split("://", 1)[1]
    status, done = await api(b, "POST", "/api/v1/peers/block", bea,
                             {"peer": f"acct:someone@{host}", "confirm": True})
    # Then alpha is blocked as /api/v1/blocks does it: listings hidden, kept; the deal ends
    assert status == 200, done
    assert (done["peer"], done["done"], done["listings_hidden"]) == (a.url, "block", 1)
    assert await _visible(b) == 0
    assert await b.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "cancelled"
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 1


async def test_block__is_for_admins_and_never_of_our_own_node(loan: Loan) -> None:
    a, b, _alice, _bob, _deal, bea = loan
    token = await members.create_token(b.ctx, "bob")
    status, _ = await api(b, "POST", "/api/v1/blocks/preview",
                          {"Authorization": f"Bearer {token.secret}"}, {"peer": a.url})
    assert status == 403
    status, _ = await api(b, "POST", "/api/v1/blocks", bea, {"peer": b.url, "confirm": True})
    assert status == 422


async def test_block__a_paid_deal_is_cancelled_and_refunded_through_the_line_once_unblocked(
    make_node: NodeFactory,
) -> None:
    # Given bob on beta paid alice on alpha for two seats (4.50 beta through the line)
    a, b, _alice, bob, deal, _theirs = await _paid_ride(make_node)
    await members.add_member(b.ctx, username="bea", password=None, is_admin=True)
    bea = {"Authorization": f"Bearer {(await members.create_token(b.ctx, 'bea')).secret}"}
    _, seen = await api(b, "POST", "/api/v1/blocks/preview", bea, {"peer": a.url})
    assert [(d["action"], d["paid"]) for d in seen["deals"]] == [("cancel", "4.50")]
    # When beta blocks alpha
    _, done = await api(b, "POST", "/api/v1/blocks", bea, {"peer": a.url, "confirm": True})
    assert [d["outcome"] for d in done["deals"]] == ["cancelled"]
    await settle(a, b)
    # Then the deal is cancelled on both nodes; the refund waits (the line is frozen)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "cancelled"
    assert (await _author_side(a, deal)).state == "cancelled"
    assert await balance(b, "bob") == -450
    # And once beta lifts the block, the refund comes back through the line
    await api(b, "POST", "/api/v1/blocks/undo", bea, {"peer": a.url})
    for _ in range(3):
        a.clock.advance(minutes=10)
        await settle(a, b)
    assert await balance(b, "bob") == 0
    await check_invariants(a, b)


async def test_block_pages__preview_then_confirm_from_the_peers_page(loan: Loan) -> None:
    a, b, _alice, _bob, deal, _bea = loan
    await person(b, "root", admin=True)
    async with browser(b, "root") as session:
        peers = await page(session, "/admin/peers")
        assert 'formaction="/admin/blocks/preview"' in peers
        # When the admin presses Block, the preview says what would happen
        status, _, shown = await submit(session, "/admin/blocks/preview", {"peer": a.url},
                                        "/admin/peers")
        assert status == 200
        assert f"Blocking {a.url} would do this; nothing changes until you confirm." in shown
        assert "Its listings hidden here: 1" in shown
        assert "frozen, no payment crosses it" in shown
        assert f'href="/deals/{deal.id}"' in shown
        assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
        # When the admin confirms, it is done and said so
        status, _, done = await submit(session, "/admin/blocks",
                                       {"peer": a.url, "confirm": "1"}, "/admin/peers")
        assert status == 200
        assert f"{a.url} is blocked." in done
        assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 1
        # And the peers page offers Unblock, which lifts it
        assert 'formaction="/admin/blocks/undo"' in await page(session, "/admin/peers")
        status, location, _ = await submit(session, "/admin/blocks/undo", {"peer": a.url},
                                           "/admin/peers")
        assert (status, location) == (303, "/admin/peers")
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
    assert await _visible(b) == 1


async def _cli(node: Node, *args: str) -> str:
    """``meshnode peer block`` in its own process, on the running node's data directory."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshnode.cli", "peer", "block", *args,
        "--data-dir", str(node.ctx.config.data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_cli_peer_block__shows_the_preview_and_changes_nothing_without_yes(
    loan: Loan,
) -> None:
    a, b, _alice, bob, deal, _bea = loan
    # When the operator asks the command line to block alpha, without --yes
    said = await _cli(b, a.url)
    # Then it lists what would happen (the listing, the loan with its deposit, the line)
    assert "listings hidden (shown again if you unblock): 1" in said
    assert f"deal {deal.id}" in said
    assert "held here 15.00): cancel" in said
    assert "frozen" in said
    assert "nothing changed" in said
    # and nothing changed
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 0
    assert await _visible(b) == 1
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state != "cancelled"


async def test_cli_peer_block__yes_applies_what_the_preview_listed(loan: Loan) -> None:
    a, b, _alice, bob, deal, _bea = loan
    # When the operator confirms with --yes
    said = await _cli(b, a.url, "--yes")
    # Then alpha is blocked, its listing hidden (kept), the loan cancelled, the line frozen
    assert f"blocked {a.url}" in said
    assert await b.count("SELECT count(*) FROM peers WHERE blocked = 1") == 1
    assert await b.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1
    assert await _visible(b) == 0
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "cancelled"
    assert await _holds(b, f"deal:{deal.id}:deposit") == []
    assert (await iou.list_lines(b.ctx))[0].state == "frozen"
