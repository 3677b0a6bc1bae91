"""Listing pages: post with validation, edit, status, search, negotiation, messages, reports."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from meshnode.services import listings as listing_service
from meshnode.services import moderation
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_q
from meshnode.store import messages as message_q
from meshnode.web.appkeys import CARDS
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride


async def test_post__invalid_input_shows_errors_next_to_fields_and_keeps_input(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/post?category=ride")
    response = await client.post("/post", data={
        "csrf": token, "category": "ride", "kind": "offer", "title": "Covoiturage vélo",
        "price.mode": "amount", "price.amount": "abc", "details.from": "Canal",
        "details.to": "", "details.departure": "2020-01-01T09:00", "details.seats": "12",
    }, headers=HTML)
    assert response.status == 422
    text = await response.text()
    assert 'value="Covoiturage vélo"' in text
    assert 'id="err-details-to"' in text
    assert 'id="err-details-departure"' in text
    assert "must be in the future" in text
    assert "between 1 and 8 seats" in text
    assert 'id="err-price-amount"' in text
    assert await listing_q.count_listings(ctx.store.reader) == 0


async def test_post_edit_status__full_cycle(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/post?category=ride")
    created = await client.post("/post", data={
        "csrf": token, "category": "ride", "kind": "offer", "title": "Vélo et covoiturage",
        "price.mode": "amount", "price.amount": "4,50", "details.from": "Canal",
        "details.to": "Lyon", "details.departure": "2026-12-05T09:00", "details.seats": "3",
    }, headers=HTML, allow_redirects=False)
    assert created.status == 303
    listing_id = created.headers["Location"].rsplit("/", 1)[1]
    view = await listing_service.get_listing(ctx, listing_id)
    assert view.row.price_amount == "4.50"
    details = json.loads(view.row.details)
    assert details["departure"] == "2026-12-05T08:00:00Z"  # Europe/Paris, UTC+1 in December
    edit = await client.get(f"/listings/{listing_id}/edit", headers=HTML)
    assert 'value="2026-12-05T09:00"' in await edit.text()
    edited = await client.post(f"/listings/{listing_id}/edit", data={
        "csrf": token, "kind": "offer", "title": "Vélo et covoiturage (2 places)",
        "price.mode": "free", "details.from": "Canal", "details.to": "Lyon",
        "details.departure": "2026-12-05T09:00", "details.seats": "2",
    }, headers=HTML, allow_redirects=False)
    assert edited.status == 303
    done = await client.post(f"/listings/{listing_id}/status",
                             data={"csrf": token, "status": "done"}, headers=HTML,
                             allow_redirects=False)
    assert done.status == 303
    view = await listing_service.get_listing(ctx, listing_id)
    assert (view.row.title, view.row.status, view.row.version) == (
        "Vélo et covoiturage (2 places)", "done", 3)
    assert view.row.price_mode == "free"
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert 'class="sig ok"' in page


async def test_listing__tampered_signature_is_not_marked_verified(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    view = await listing_service.get_listing(ctx, listing_id)
    tampered = view.row.signed_object.replace("Lyon", "Paris")
    async with ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET signed_object = ? WHERE id = ?",
                         (tampered, listing_id))
    text = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert 'class="sig ok"' not in text
    assert "may have been altered" in text


async def test_listing__a_kept_verification_does_not_outlive_a_tampered_row(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given a listing page shown verified twice (the second time from the kept outcome)
    listing_id = await make_ride(ctx, alice)
    assert 'class="sig ok"' in await (await client.get(f"/listings/{listing_id}",
                                                       headers=HTML)).text()
    assert 'class="sig ok"' in await (await client.get(f"/listings/{listing_id}",
                                                       headers=HTML)).text()
    # When its stored document is altered in the database
    view = await listing_service.get_listing(ctx, listing_id)
    async with ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET signed_object = ? WHERE id = ?",
                         (view.row.signed_object.replace("Lyon", "Paris"), listing_id))
    # Then the next page verifies again and says so
    text = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert 'class="sig ok"' not in text
    assert "may have been altered" in text


async def test_listing_url__negotiates_html_and_signed_json(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    page = await client.get(f"/listings/{listing_id}", headers=HTML)
    assert page.content_type == "text/html"
    assert page.headers["Vary"] == "Accept"
    for accept in ("application/activity+json",
                   'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'):
        document = await client.get(f"/listings/{listing_id}", headers={"Accept": accept})
        assert document.content_type == "application/activity+json"
        assert document.headers["Vary"] == "Accept"
        view = await listing_service.get_listing(ctx, listing_id)
        assert await document.text() == view.row.signed_object


async def test_profile_url__html_for_browsers_actor_document_for_activitypub(
    client: TestClient, alice: base.TestMember
) -> None:
    page = await client.get("/users/alice", headers=HTML)
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "Member since" in await page.text()
    actor = await client.get("/users/alice", headers={"Accept": "application/activity+json"})
    assert actor.status == 200
    assert actor.content_type == "application/activity+json"
    assert actor.headers["Vary"] == "Accept"
    document = await actor.json()
    assert document["type"] == "Person"
    assert document["preferredUsername"] == "alice"
    group = await client.get("/groups/voisins", headers=HTML, allow_redirects=False)
    assert group.status == 302


async def test_search__accent_insensitive_filters_and_empty_result(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await make_ride(ctx, alice, title="Balade à vélo au canal")
    found = await (await client.get("/search?q=velo", headers=HTML)).text()
    assert "Balade à vélo au canal" in found
    empty = await client.get("/search?q=velo&category=meal", headers=HTML)
    text = await empty.text()
    assert "No listing matches this search." in text
    assert "Clear all filters" in text
    bad = await client.get("/search?near=north", headers=HTML)
    assert bad.status == 400
    assert "lat,lon" in await bad.text() or "e.g. 45.76,4.83" in await bad.text()


async def test_search__paging(client: TestClient, ctx: NodeContext,
                              clock: base.FakeClock, alice: base.TestMember) -> None:
    for number in range(25):
        await make_ride(ctx, alice, title=f"Trajet numéro {number}")
        clock.advance(seconds=1)
    first = await (await client.get("/search?q=trajet", headers=HTML)).text()
    assert "Trajet numéro 24" in first
    assert "Trajet numéro 4<" not in first
    assert 'rel="next"' in first
    next_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = await (await client.get(next_link.replace("&amp;", "&"), headers=HTML)).text()
    assert "Trajet numéro 4<" in second
    assert 'rel="next"' not in second


async def test_interested__sends_message_with_unread_count(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    token = await csrf_of(client, f"/listings/{listing_id}")
    response = await client.post(f"/listings/{listing_id}/interested",
                                 data={"csrf": token, "body": "Une place pour moi ?"},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 303
    assert await message_q.unread_count(ctx.store.reader, alice.row.id) == 1
    client.session.cookie_jar.clear()
    await login(client, "alice")
    home = await (await client.get("/", headers=HTML)).text()
    assert '<span class="badge"' in home
    inbox = await (await client.get("/messages", headers=HTML)).text()
    assert "Une place pour moi ?" in inbox
    await client.get(f"/messages/{listing_id}/bob", headers=HTML)
    assert await message_q.unread_count(ctx.store.reader, alice.row.id) == 0


async def test_conversation__own_messages_say_you_not_the_members_handle(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob wrote to alice about her ride
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    token = await csrf_of(client, f"/listings/{listing_id}")
    await client.post(f"/listings/{listing_id}/interested",
                      data={"csrf": token, "body": "Une place pour moi ?"},
                      headers=HTML, allow_redirects=False)
    # When bob opens the thread, in English then in French
    path = f"/messages/{listing_id}/alice"
    english = await (await client.get(path, headers=HTML)).text()
    french = await (await client.get(path, headers={**HTML, "Accept-Language": "fr"})).text()
    # Then his own message is labelled "You" / "Vous", not "@bob"
    assert '<p class="meta">You · <time' in english
    assert '<p class="meta">Vous · <time' in french
    assert "@bob ·" not in english + french
    # And alice sees it from "@bob"
    client.session.cookie_jar.clear()
    await login(client, "alice")
    theirs = await (await client.get(f"/messages/{listing_id}/bob", headers=HTML)).text()
    assert '<p class="meta">@bob · <time' in theirs
    assert "You ·" not in theirs


async def test_report_then_admin_hides_and_restores(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, bob)
    await login(client, "alice")
    token = await csrf_of(client, f"/listings/{listing_id}")
    reported = await client.post(f"/listings/{listing_id}/report",
                                 data={"csrf": token, "reason": "spam"}, headers=HTML,
                                 allow_redirects=False)
    assert reported.status == 303
    assert len(await moderation.list_reports(ctx)) == 1
    hidden = await client.post(f"/admin/listings/{listing_id}/hide", data={"csrf": token},
                               headers=HTML, allow_redirects=False)
    assert hidden.status == 303
    assert (await listing_service.get_listing(ctx, listing_id)).row.hidden
    assert await moderation.list_reports(ctx) == []
    client.session.cookie_jar.clear()
    assert (await client.get(f"/listings/{listing_id}", headers=HTML)).status == 404
    await login(client, "alice")
    token = await csrf_of(client, "/admin/reports")
    await client.post(f"/admin/listings/{listing_id}/restore", data={"csrf": token},
                      headers=HTML, allow_redirects=False)
    assert not (await listing_service.get_listing(ctx, listing_id)).row.hidden


async def test_admin__invitation_page_shows_link_and_inline_qr(
    client: TestClient, alice: base.TestMember
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/admin/invitations")
    response = await client.post("/admin/invitations", data={"csrf": token, "days": "3"},
                                 headers=HTML)
    text = await response.text()
    assert response.status == 201
    assert "http://127.0.0.1:8080/join/" in text
    assert "<svg" in text


async def test_admin__cannot_demote_last_admin(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/admin/members")
    await client.post("/admin/members/bob", data={"csrf": token, "action": "promote"},
                      headers=HTML, allow_redirects=False)
    from meshnode.services import members
    assert (await members.get_member(ctx, "bob")).is_admin
    await client.post("/admin/members/bob", data={"csrf": token, "action": "disable"},
                      headers=HTML, allow_redirects=False)
    assert not (await members.get_member(ctx, "bob")).is_active


async def test_unknown_page__friendly_404(client: TestClient) -> None:
    response = await client.get("/no/such/page", headers=HTML)
    assert response.status == 404
    assert "Page not found" in await response.text()
    api = await client.get("/api/v1/nothing")
    assert api.status == 404
    assert (await api.json())["error"] == "not_found"


async def test_listing_page__renders_markdown_subset_and_escapes_html(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(
        ctx, alice, description='Un **vélo** *pliant*\n\n<script>alert("x")</script><b>gras</b>'
    )
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert "<strong>vélo</strong>" in page
    assert "<em>pliant</em>" in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    assert "<b>gras</b>" not in page


async def test_listing_cards__cached_per_version_and_language(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice, title="Trajet du matin vers Lyon")
    english = await (await client.get("/", headers={**HTML, "Accept-Language": "en"})).text()
    french = await (await client.get("/", headers={**HTML, "Accept-Language": "fr"})).text()
    assert "Offer" in english
    assert "Offre" in french
    cached = len(client.app[CARDS])
    await (await client.get("/", headers={**HTML, "Accept-Language": "en"})).text()
    assert len(client.app[CARDS]) == cached  # served from the cache
    # When the author edits the listing, Then every page shows the new version at once
    await listing_service.update_listing(ctx, alice.row, listing_id,
                                         {"title": "Trajet du soir vers Lyon"})
    page = await (await client.get("/", headers={**HTML, "Accept-Language": "en"})).text()
    assert "Trajet du soir vers Lyon" in page
    assert "Trajet du matin vers Lyon" not in page
