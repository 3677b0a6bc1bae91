"""Reports across nodes: a member of alpha reports a listing of beta; it reaches beta's
moderators as an ActivityPub ``Flag``, and beta's decision comes back to alpha.

Two real nodes on 127.0.0.1 ports, peered for real; workers stepped by hand (``settle``).
Hostile Flags are signed for real by alpha's member and posted to beta's inbox over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from meshnode.services import members
from meshnode.store.members import MemberRow
from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_inbox_hostile import post, sign

Setup = tuple[Node, Node, MemberRow, MemberRow, str]


async def _headers(node: Node, username: str) -> dict[str, str]:
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


async def api(node: Node, method: str, path: str, headers: dict[str, str],
              body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, node.url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def nodes(make_node: NodeFactory) -> Setup:
    """alpha (alice, admin ann) peered with beta (bob, admin bea); bob's listing on alpha."""
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    alice = await alpha.member("alice")
    bob = await beta.member("bob")
    await members.add_member(alpha.ctx, username="ann", password=None, is_admin=True)
    await members.add_member(beta.ctx, username="bea", password=None, is_admin=True)
    await peer(alpha, beta)
    await peer(beta, alpha)
    view = await beta.publish(bob)
    await settle(alpha, beta)
    remote = await alpha.remote(view.row.object_id)
    assert remote is not None
    return alpha, beta, alice, bob, remote.id


async def _report(alpha: Node, listing_id: str, **body: Any) -> tuple[int, Any]:
    payload = {"reason": "scam", "comment": "asks to pay upfront", "anonymous": False, **body}
    return await api(alpha, "POST", f"/api/v1/listings/{listing_id}/reports",
                     await _headers(alpha, "alice"), payload)


async def test_flag__report_of_a_remote_listing_reaches_its_moderators_with_our_community(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, bob, listing_id = nodes
    # When alice reports bob's listing as seen on alpha
    status, sent = await _report(alpha, listing_id)
    assert status == 201, sent
    assert (sent["direction"], sent["status"], sent["community"]) == ("out", "open", beta.url)
    await settle(alpha, beta)
    # Then beta's admin finds it in the queue, about bob's listing, from alpha
    status, queue = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bea"))
    assert status == 200
    [item] = queue["items"]
    assert item["direction"] == "in"
    assert item["community"] == alpha.url
    assert item["reporter_actor"] == f"{alpha.url}/users/alice"
    assert (item["reason"], item["comment"]) == ("scam", "asks to pay upfront")
    assert item["listing"]["title"] == "Covoiturage vers Lyon, départ du canal"
    assert item["unknown_object"] is False
    assert f"{beta.url}/users/{bob.username}" in item["objects"]
    # and it arrived as a Flag, from alice, naming bob and his listing
    async with beta.ctx.store.reader.execute(
            "SELECT body FROM inbox_activities WHERE type = 'Flag'") as cursor:
        flag = json.loads((await cursor.fetchone())[0])
    assert (flag["type"], flag["actor"]) == ("Flag", f"{alpha.url}/users/alice")
    # and beta's admins were notified
    _, notes = await api(beta, "GET", "/api/v1/notifications", await _headers(beta, "bea"))
    assert [n["type"] for n in notes["items"]] == ["report_received"]


async def test_flag__anonymous_report_hides_the_reporter_from_the_other_node(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, listing_id = nodes
    status, _ = await _report(alpha, listing_id, anonymous=True, comment="")
    assert status == 201
    await settle(alpha, beta)
    _, queue = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bea"))
    [item] = queue["items"]
    assert (item["anonymous"], item["reporter"], item["reporter_actor"]) == (True, None, None)
    assert item["community"] == alpha.url
    # nothing beta stored names alice: the Flag came from alpha's Group actor
    async with beta.ctx.store.reader.execute("SELECT body FROM inbox_activities") as cursor:
        bodies = [row[0] for row in await cursor.fetchall()]
    flag = next(json.loads(b) for b in bodies if '"Flag"' in b)
    assert flag["actor"] == alpha.group
    assert all("alice" not in body for body in bodies)
    assert await beta.count("SELECT count(*) FROM reports WHERE remote_actor LIKE '%alice%'") == 0


async def test_flag__the_decision_of_the_listings_node_is_visible_on_the_reporting_node(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, listing_id = nodes
    await _report(alpha, listing_id)
    await settle(alpha, beta)
    bea = await _headers(beta, "bea")
    _, queue = await api(beta, "GET", "/api/v1/reports", bea)
    report_id = queue["items"][0]["id"]
    # When beta's admin removes the content
    status, decided = await api(beta, "POST", f"/api/v1/reports/{report_id}/decision", bea,
                                {"decision": "removed"})
    assert status == 200, decided
    assert (decided["resolution"], decided["listing"]["hidden"]) == ("removed", True)
    await settle(alpha, beta)
    # Then alpha's admins see what became of alice's report, and were told
    ann = await _headers(alpha, "ann")
    _, mine = await api(alpha, "GET", "/api/v1/reports?all=1", ann)
    [item] = mine["items"]
    assert (item["direction"], item["status"], item["resolution"]) == ("out", "decided",
                                                                       "removed")
    _, notes = await api(alpha, "GET", "/api/v1/notifications", ann)
    assert [n["type"] for n in notes["items"]] == ["report_answered"]
    # and deciding twice is refused
    status, _ = await api(beta, "POST", f"/api/v1/reports/{report_id}/decision", bea,
                          {"decision": "dismissed"})
    assert status == 409


async def test_flag__hiding_the_listing_from_the_admin_page_answers_dismissed_on_restore(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, listing_id = nodes
    await _report(alpha, listing_id, anonymous=True, comment="")
    await settle(alpha, beta)
    from meshnode.services import moderation
    bea = await members.get_member(beta.ctx, "bea")
    async with beta.ctx.store.reader.execute("SELECT listing_id FROM reports") as cursor:
        local_id = (await cursor.fetchone())[0]
    # When beta's admin keeps the listing visible (the page's "Keep visible")
    await moderation.set_listing_hidden(beta.ctx, bea, local_id, hidden=False)
    await settle(alpha, beta)
    _, mine = await api(alpha, "GET", "/api/v1/reports?all=1", await _headers(alpha, "ann"))
    assert mine["items"][0]["resolution"] == "dismissed"


@pytest.mark.parametrize(("body", "field"), [
    ({"reason": "ugly"}, "reason"),
    ({"comment": "x" * 1001}, "comment"),
    ({"anonymous": "yes"}, "anonymous"),
    ({"reason": "other", "comment": ""}, "comment"),
])
async def test_flag__bad_report_input_is_refused_and_nothing_is_stored_or_sent(
    nodes: Setup, body: dict[str, Any], field: str,
) -> None:
    alpha, _beta, _alice, _bob, listing_id = nodes
    outbox = await alpha.count("SELECT count(*) FROM outbox_activities")
    status, error = await _report(alpha, listing_id, **body)
    assert status == 422
    assert field in error["fields"]
    assert await alpha.count("SELECT count(*) FROM reports") == 0
    assert await alpha.count("SELECT count(*) FROM outbox_activities") == outbox


async def test_flag__reporting_the_same_listing_twice_in_a_day_is_refused(nodes: Setup) -> None:
    alpha, _beta, _alice, _bob, listing_id = nodes
    assert (await _report(alpha, listing_id))[0] == 201
    outbox = await alpha.count("SELECT count(*) FROM outbox_activities")
    status, error = await _report(alpha, listing_id, reason="spam")
    assert status == 409, error
    assert await alpha.count("SELECT count(*) FROM reports") == 1
    assert await alpha.count("SELECT count(*) FROM outbox_activities") == outbox
    # a day later, a new report is accepted
    alpha.clock.advance(days=1, seconds=1)
    assert (await _report(alpha, listing_id))[0] == 201


async def test_flag__report_of_our_own_listing_stays_here(nodes: Setup) -> None:
    alpha, _beta, alice, _bob, _listing_id = nodes
    view = await alpha.publish(alice)
    outbox = await alpha.count("SELECT count(*) FROM outbox_activities WHERE type = 'Flag'")
    status, sent = await _report(alpha, view.row.id)
    assert (status, sent["direction"]) == (201, "local")
    assert await alpha.count("SELECT count(*) FROM outbox_activities WHERE type = 'Flag'") \
        == outbox


async def test_flag__unknown_report_target_and_stranger_access_are_refused(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, _listing_id = nodes
    status, _ = await _report(alpha, "no-such-listing")
    assert status == 404
    status, _ = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bob"))
    assert status == 403


# --- hostile Flags posted straight to beta's inbox ---------------------------------------------

def _flag(alpha: Node, alice: MemberRow, objects: list[str], **changes: Any) -> dict[str, Any]:
    actor = f"{alpha.url}/users/{alice.username}"
    flag = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{actor}/flags/f1",
            "type": "Flag", "actor": actor, "object": objects, "content": "Spam."}
    flag.update(changes)
    return flag


async def _post_flag(alpha: Node, beta: Node, alice: MemberRow, flag: dict[str, Any],
                     headers: dict[str, str] | None = None) -> int:
    body = json.dumps(flag).encode()
    url = f"{beta.url}/inbox"
    return await post(url, body, headers or sign(alpha, alice, url, body))


async def _bob_objects(beta: Node, bob: MemberRow) -> list[str]:
    async with beta.ctx.store.reader.execute(
            "SELECT object_id FROM listings WHERE is_local = 1") as cursor:
        listing = (await cursor.fetchone())[0]
    return [f"{beta.url}/users/{bob.username}", listing]


async def test_flag_inbox__oversized_comment_is_refused_and_nothing_is_stored(
    nodes: Setup,
) -> None:
    alpha, beta, alice, bob, _ = nodes
    before = await beta.count("SELECT count(*) FROM inbox_activities")
    flag = _flag(alpha, alice, await _bob_objects(beta, bob), content="spam " * 300)
    assert await _post_flag(alpha, beta, alice, flag) == 403
    huge = _flag(alpha, alice, await _bob_objects(beta, bob), content="<b>x</b>" * 600)
    assert await _post_flag(alpha, beta, alice, huge) == 403
    too_many = _flag(alpha, alice, [f"{beta.url}/listings/{n}" for n in range(21)])
    assert await _post_flag(alpha, beta, alice, too_many) == 403
    await settle(alpha, beta)
    assert await beta.count("SELECT count(*) FROM inbox_activities") == before
    assert await beta.count("SELECT count(*) FROM reports") == 0


async def test_flag_inbox__forged_signature_is_refused_and_nothing_is_stored(
    nodes: Setup,
) -> None:
    alpha, beta, alice, bob, _ = nodes
    before = await beta.count("SELECT count(*) FROM inbox_activities")
    flag = _flag(alpha, alice, await _bob_objects(beta, bob))
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, json.dumps({**flag, "content": "other"}).encode())
    assert await _post_flag(alpha, beta, alice, flag, headers) == 401
    await settle(alpha, beta)
    assert await beta.count("SELECT count(*) FROM inbox_activities") == before
    assert await beta.count("SELECT count(*) FROM reports") == 0


async def test_flag_inbox__html_comment_is_stored_as_plain_text(nodes: Setup) -> None:
    alpha, beta, alice, bob, _ = nodes
    flag = _flag(alpha, alice, await _bob_objects(beta, bob),
                 content='<p>Fake <a href="https://evil.example">offer</a></p>'
                         "<script>alert(1)</script>")
    assert await _post_flag(alpha, beta, alice, flag) == 202
    await settle(alpha, beta)
    _, queue = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bea"))
    assert [item["comment"] for item in queue["items"]] == ["Fake offer"]


async def test_flag_inbox__a_flag_of_an_unknown_object_is_queued_but_marked(
    nodes: Setup,
) -> None:
    alpha, beta, alice, _bob, _ = nodes
    flag = _flag(alpha, alice, [f"{beta.url}/listings/gone"])
    assert await _post_flag(alpha, beta, alice, flag) == 202
    await settle(alpha, beta)
    _, queue = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bea"))
    [item] = queue["items"]
    assert (item["unknown_object"], item["listing"]) == (True, None)
    # the same Flag again (a retry) is stored once
    await _post_flag(alpha, beta, alice, flag)
    await settle(alpha, beta)
    assert await beta.count("SELECT count(*) FROM reports") == 1


async def test_flag_inbox__a_flag_about_another_node_is_refused(nodes: Setup) -> None:
    alpha, beta, alice, _bob, _ = nodes
    flag = _flag(alpha, alice, ["https://elsewhere.example/listings/1"])
    assert await _post_flag(alpha, beta, alice, flag) == 403


async def test_flag_inbox__an_answer_to_a_flag_we_never_sent_is_refused(nodes: Setup) -> None:
    alpha, beta, alice, _bob, _ = nodes
    actor = f"{alpha.url}/users/{alice.username}"
    answer = {"id": f"{actor}/a1", "type": "Accept", "actor": actor,
              "object": {"id": f"{alpha.url}/flags/x", "type": "Flag", "actor": beta.group}}
    assert await _post_flag(alpha, beta, alice, answer) == 403



async def test_reports_page__the_flag_shows_its_community_and_the_answer_shows_on_the_sender(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, listing_id = nodes
    await person(alpha, "root", admin=True)
    await person(beta, "root", admin=True)
    await _report(alpha, listing_id, anonymous=True, comment="<b>Arnaque</b> évidente")
    await settle(alpha, beta)
    async with beta.ctx.store.reader.execute("SELECT listing_id FROM reports") as cursor:
        listing_here = (await cursor.fetchone())[0]
    async with browser(beta, "root") as session:
        # Then beta's admin page names alpha, hides the reporter, shows the comment as text
        shown = await page(session, "/admin/reports")
        assert f"from the community {alpha.url}" in shown
        assert "(anonymous)" in shown
        assert "<p>Arnaque évidente</p>" in shown
        assert "alice" not in shown
        # When the admin hides the listing from the page
        status, _, _ = await submit(session, f"/admin/listings/{listing_here}/hide", {},
                                    "/admin/reports")
        assert status == 303
    await settle(alpha, beta)
    # Then alpha's admin page says what became of the report
    async with browser(alpha, "root") as session:
        assert "their moderators removed it" in await page(session, "/admin/reports")


async def test_listing_page__report_of_a_remote_listing_is_sent_there_without_the_name(
    nodes: Setup,
) -> None:
    alpha, beta, _alice, _bob, listing_id = nodes
    await person(alpha, "carol")
    async with browser(alpha, "carol") as session:
        shown = await page(session, f"/listings/{listing_id}")
        assert 'name="anonymous" value="1" checked' in shown
        status, location, _ = await submit(
            session, f"/listings/{listing_id}/report",
            {"reason": "Demande un paiement hors réseau", "anonymous": "1"},
            f"/listings/{listing_id}")
        assert (status, location) == (303, f"/listings/{listing_id}?report=sent")
    await settle(alpha, beta)
    _, queue = await api(beta, "GET", "/api/v1/reports", await _headers(beta, "bea"))
    [item] = queue["items"]
    assert (item["community"], item["anonymous"], item["comment"]) == (
        alpha.url, True, "Demande un paiement hors réseau")
