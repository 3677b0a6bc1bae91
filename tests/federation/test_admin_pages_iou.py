"""Trust lines page and the wallet's cross-community payment between two real nodes."""

from __future__ import annotations

from meshnode.services import iou as svc
from meshnode.services import members
from tests.federation.browser import HTML, browser, page, person, submit
from tests.federation.conftest import NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants, handle, open_line


async def test_trustlines_page__offer_from_the_other_node_accepted_from_the_page(
    make_node: NodeFactory,
) -> None:
    # Given alpha's admin proposed a line to beta
    a, b = await make_node("alpha"), await make_node("beta")
    await person(a, "root", admin=True)
    await person(b, "root", admin=True)
    line = await svc.propose_line(a.ctx, None, peer=b.url, limit_out="40", limit_in="20",
                                  rate="2")
    await settle(a, b)
    async with browser(b, "root") as session:
        # Then beta's admin sees the offer, signed by alpha only, with Accept / Reject
        text = await page(session, "/admin/trustlines")
        assert a.group in text
        assert "Offered to us" in text
        assert "signed by them only" in text
        assert f'formaction="/admin/trustlines/{line.id}/accept"' in text
        # When beta's admin accepts it from the page
        status, location, _ = await submit(session, f"/admin/trustlines/{line.id}/accept",
                                           {}, "/admin/trustlines")
        assert (status, location) == (303, f"/admin/trustlines?done=accept#line-{line.id}")
        await settle(a, b)
        accepted = await page(session, "/admin/trustlines")
        # (beta's limits are alpha's, mirrored: beta may owe 20·2, alpha may owe 40·2)
        assert "signed by both nodes" in accepted
        assert "40.00\u00a0G" in accepted
        assert "80.00\u00a0G" in accepted
    async with browser(a, "root") as session:
        mine = await page(session, "/admin/trustlines")
        assert '<span class="tag tag-status">Active</span>' in mine
        assert "signed by both nodes" in mine
        assert "0.00\u00a0G" in mine  # balance


async def test_wallet__pays_a_member_of_another_community_and_shows_the_status(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    alice, root = await person(a, "alice"), await person(a, "root", admin=True)
    await b.member("bob")
    line_id = await open_line(a, b, limit_out="50", limit_in="50", rate="1")
    del root
    async with browser(a, "alice") as session:
        # When alice pays bob@beta from the wallet's pay form
        status, location, _ = await submit(session, "/wallet/pay", {
            "payee": handle(b, "bob"), "amount": "12,50", "memo": "jam", "listing": ""},
            "/wallet/pay")
        assert status == 303
        assert location.startswith("/wallet/transfers/")
        # Then the status page says it is in progress, with a refresh link
        pending = await page(session, location)
        assert "In progress" in pending
        assert f'href="{location}">Refresh' in pending
        await settle(a, b)
        done = await page(session, location)
        assert "Paid: the other community confirmed the payment." in done
        assert "12.50\u00a0G" in done
    assert await balance(a, "alice") == -1250
    assert await balance(b, "bob") == 1250
    await check_invariants(a, b)
    # And the admin cannot close the line while it carries a balance: the page says why
    async with browser(a, "root") as session:
        status, _, text = await submit(session, f"/admin/trustlines/{line_id}/close", {},
                                       "/admin/trustlines")
        assert status == 409
        assert "closing needs zero" in text
    assert (await svc.get_line(a.ctx, line_id)).state == "active"
    del alice


async def test_wallet__remote_payment_refused_before_anything_is_held(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await person(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="5", limit_in="5", rate="1")
    async with browser(a, "alice") as session:
        cases = [({"payee": handle(b, "bob"), "amount": "9"}, "amount", "capacity"),
                 ({"payee": handle(b, "nobody"), "amount": "1"}, "payee", "cannot resolve"),
                 ({"payee": handle(b, "bob"), "amount": "-1"}, "amount", "amount")]
        for data, name, reason in cases:
            status, _, text = await submit(session, "/wallet/pay", {
                **data, "memo": "", "listing": ""}, "/wallet/pay")
            assert status in (409, 422), data
            assert f'id="err-{name}"' in text, data
            assert reason in text, data
            assert f'value="{data["payee"]}"' in text
    assert await svc.list_transfers(a.ctx, await members.get_member(a.ctx, "alice")) == []
    assert await balance(a, "alice") == 0


async def test_transfer_page__refusal_by_the_payee_node_shows_its_reason(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta can receive at most 1
    from meshnode.services import ledger

    a, b = await make_node("alpha"), await make_node("beta")
    await person(a, "alice")
    await person(a, "carol")
    await b.member("bob")
    beta_root = await person(b, "root", admin=True)
    await ledger.set_limits(b.ctx, beta_root, "bob", min_balance=None, max_balance="1")
    await open_line(a, b, limit_out="50", limit_in="50", rate="1")
    async with browser(a, "alice") as session:
        status, location, _ = await submit(session, "/wallet/pay", {
            "payee": handle(b, "bob"), "amount": "3", "memo": "", "listing": ""},
            "/wallet/pay")
        assert status == 303
        await settle(a, b)
        refused = await page(session, location)
    # Then the payer reads that nothing was paid, and why
    assert "The payment was refused; nothing was paid." in refused
    assert "Reason: " in refused
    assert "limit" in refused.split("Reason: ")[1][:200].lower()
    assert await balance(a, "alice") == 0
    # And another member of alpha cannot see alice's transfer
    async with browser(a, "carol") as session, session.get(location, headers=HTML) as other:
        assert other.status == 404


async def test_trustlines_page__freeze_unfreeze_and_lower_limits(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await person(a, "root", admin=True)
    line_id = await open_line(a, b, limit_out="50", limit_in="40", rate="1")
    limits = f"/admin/trustlines/{line_id}/limits"
    async with browser(a, "root") as session:
        # Bad or raised limits are refused next to the field and nothing changes
        status, _, text = await submit(session, limits, {"limit_out": "-1", "limit_in": ""},
                                       "/admin/trustlines")
        assert status == 422
        assert 'id="err-limit_out"' in text
        assert 'value="-1"' in text
        status, _, text = await submit(session, limits, {"limit_out": "", "limit_in": "90"},
                                       "/admin/trustlines")
        assert status == 409
        assert "can only be lowered" in text
        line = await svc.get_line(a.ctx, line_id)
        assert (line.limit_out, line.limit_in) == (5000, 4000)
        # Lowering works, and the peer hears of it
        status, _, _ = await submit(session, limits, {"limit_out": "20", "limit_in": ""},
                                    "/admin/trustlines")
        assert status == 303
        for action, state in (("freeze", "frozen"), ("unfreeze", "active")):
            status, _, _ = await submit(session, f"/admin/trustlines/{line_id}/{action}", {},
                                        "/admin/trustlines")
            assert status == 303
            assert (await svc.get_line(a.ctx, line_id)).state == state
        await settle(a, b)
    line = await svc.get_line(a.ctx, line_id)
    assert (line.limit_out, line.limit_in) == (2000, 4000)
    mirrored = await svc.get_line(b.ctx, line_id)
    assert (mirrored.limit_in, mirrored.state) == (2000, "active")
