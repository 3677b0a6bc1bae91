"""Bookings as iCalendar: the private feed and the per-deal file, parsed back with the
``icalendar`` library; revocation, isolation between members, rate limit, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import icalendar
from aiohttp.test_utils import TestClient

from meshnode.services import calendar as calendar_service
from meshnode.services import deals, listings
from meshnode.services.context import NodeContext
from meshnode.store.calendar import CalendarDeal
from tests.conftest import MakeMember, TestMember, ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login
from tests.web.test_queue_api import LATER, SLOT, drill

FEED_RE = re.compile(r'value="(http://127\.0\.0\.1:8080/calendar/(mnc_[^"]+)\.ics)"')


async def _new_feed(client: TestClient, username: str) -> str:
    """Make the member's feed through the Settings page; its path."""
    await login(client, username)
    token = await csrf_of(client, "/settings")
    page = await client.post("/settings/calendar", data={"csrf": token}, headers=HTML)
    assert page.status == 200
    match = FEED_RE.search(await page.text())
    assert match, "the new address is shown once"
    client.session.cookie_jar.clear()  # the feed needs no session
    return f"/calendar/{match.group(2)}.ics"


def _events(body: bytes) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


async def _bookings(ctx: NodeContext, alice: TestMember, bob: TestMember
                    ) -> tuple[str, str, str]:
    """Bob borrows Alice's drill (accepted), books a seat in her ride (requested); Alice
    borrows nothing. Returns the loan's, the ride's and the drill listing's ids."""
    drill_view = await listings.create_listing(ctx, alice.row, drill())
    loan = await deals.book(ctx, bob.row, drill_view.row.id, SLOT)
    await deals.act(ctx, alice.row, loan.id, "accept")
    ride_view = await listings.create_listing(ctx, alice.row, ride_listing(
        price={"mode": "free"}))
    ride = await deals.book(ctx, bob.row, ride_view.row.id, {"quantity": 1})
    return loan.id, ride.id, drill_view.row.id


async def test_feed__events_are_the_members_deals_with_utc_times(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    # Given Bob's two bookings, and Carol's own unrelated loan from Alice
    loan_id, ride_id, drill_id = await _bookings(ctx, alice, bob)
    carol = await make_member("carol")
    await deals.book(ctx, carol.row, drill_id, LATER)
    path = await _new_feed(client, "bob")
    # When his calendar application fetches the feed without a session
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/calendar"
    assert "no-store" in response.headers["Cache-Control"]
    events = _events(await response.read())
    # Then it has exactly his two deals, keyed by their Agreement ids, in UTC
    loan = await deals.get_deal(ctx, bob.row, loan_id)
    ride = await deals.get_deal(ctx, bob.row, ride_id)
    assert set(events) == {loan.agreement_id, ride.agreement_id}
    drill_event = events[loan.agreement_id]
    assert drill_event.decoded("DTSTART") == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert drill_event.decoded("DTEND") == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert str(drill_event["SUMMARY"]) == "Perceuse à percussion"
    assert (str(drill_event["STATUS"]), drill_event["SEQUENCE"]) == ("CONFIRMED", 1)
    assert str(drill_event["URL"]) == f"http://127.0.0.1:8080/deals/{loan_id}"
    ride_event = events[ride.agreement_id]
    # the ride leaves at 09:00 Paris time: 08:00 UTC
    assert ride_event.decoded("DTSTART") == datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    assert (str(ride_event["STATUS"]), ride_event["SEQUENCE"]) == ("TENTATIVE", 0)
    # And Alice, the lender, sees the same deals in her own feed
    alice_events = _events(await (await client.get(await _new_feed(client, "alice"))).read())
    assert set(alice_events) >= set(events)


async def test_feed__a_cancelled_deal_keeps_its_uid_bumps_sequence_and_says_cancelled(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    loan_id, _, _ = await _bookings(ctx, alice, bob)
    path = await _new_feed(client, "bob")
    before = _events(await (await client.get(path)).read())
    loan = await deals.get_deal(ctx, bob.row, loan_id)
    await deals.act(ctx, bob.row, loan_id, "cancel")
    after = _events(await (await client.get(path)).read())
    assert str(after[loan.agreement_id]["STATUS"]) == "CANCELLED"
    assert after[loan.agreement_id]["SEQUENCE"] > before[loan.agreement_id]["SEQUENCE"]


async def test_feed__revoked_or_replaced_address_is_404(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    await _bookings(ctx, alice, bob)
    first = await _new_feed(client, "bob")
    # When Bob makes a new address, the first one stops working
    second = await _new_feed(client, "bob")
    assert (await client.get(first)).status == 404
    assert (await client.get(second)).status == 200
    # When he turns it off, the new one stops too
    await login(client, "bob")
    token = await csrf_of(client, "/settings")
    off = await client.post("/settings/calendar/revoke", data={"csrf": token}, headers=HTML,
                            allow_redirects=False)
    assert off.status == 303
    assert (await client.get(second)).status == 404
    # And a forged POST without the CSRF token changes nothing
    forged = await client.post("/settings/calendar", data={}, headers=HTML)
    assert forged.status == 403
    assert await calendar_service.feed_since(ctx, bob.row) is None


async def test_feed__another_members_address_never_shows_yours(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    await _bookings(ctx, alice, bob)
    await make_member("carol")
    carols = await _new_feed(client, "carol")
    events = _events(await (await client.get(carols)).read())
    assert events == {}  # Carol has no booking: nothing of Bob's or Alice's
    # Guessed and malformed secrets are 404
    for path in ("/calendar/mnc_" + "A" * 43 + ".ics", "/calendar/..%2Fsettings.ics",
                 "/calendar/x.ics"):
        assert (await client.get(path)).status == 404


async def test_feed__rate_limited_per_feed_then_429_with_retry_after(
    client: TestClient, ctx: NodeContext, bob: TestMember,
) -> None:
    path = await _new_feed(client, "bob")
    for _ in range(calendar_service.FEED_FETCHES_PER_HOUR):
        assert (await client.get(path)).status == 200
    refused = await client.get(path)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0


async def test_feed__unknown_secrets_are_rate_limited_per_address(
    client: TestClient, ctx: NodeContext,
) -> None:
    for _ in range(calendar_service.MISSES_PER_HOUR):
        assert (await client.get("/calendar/mnc_" + "B" * 43 + ".ics")).status == 404
    assert (await client.get("/calendar/mnc_" + "C" * 43 + ".ics")).status == 429


async def test_deal_file__for_its_parties_only(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    loan_id, _, _ = await _bookings(ctx, alice, bob)
    await make_member("carol")
    await login(client, "bob")
    page = await client.get(f"/deals/{loan_id}", headers=HTML)
    assert f'href="/deals/{loan_id}.ics"' in await page.text()
    response = await client.get(f"/deals/{loan_id}.ics")
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    [uid] = _events(await response.read())
    assert uid == (await deals.get_deal(ctx, bob.row, loan_id)).agreement_id
    client.session.cookie_jar.clear()
    await login(client, "carol")
    assert (await client.get(f"/deals/{loan_id}.ics")).status == 404
    client.session.cookie_jar.clear()
    anonymous = await client.get(f"/deals/{loan_id}.ics", allow_redirects=False)
    assert anonymous.status in (302, 303)


HOSTILE = "Perceuse\r\nATTENDEE:mailto:evil@example.org\r\nBEGIN:VALARM;x=1,y\\z\rURL:x"


def test_build_calendar__hostile_text_cannot_add_properties() -> None:
    # Given a title and a place written to break out of their property
    deal = CalendarDeal(
        id="d1", agreement_id="http://127.0.0.1:8080/deals/d1", listing_id="l1",
        category="lend", state="accepted", title=HOSTILE, place="Quai;\r\nLOCATION:ailleurs",
        starts="2026-11-26T11:00:00Z", ends="2026-11-27T11:00:00Z",
        updated_at="2026-11-26T10:00:00Z", created_at="2026-11-26T10:00:00Z", moves=1)
    body = calendar_service.build_calendar([deal], base_url="http://127.0.0.1:8080",
                                           name="Les Voisins; du Canal\r\nX-EVIL:1")
    # Then every line is a known property of ours, folded lines aside
    names = {line.split(":", 1)[0].split(";", 1)[0]
             for line in body.decode().split("\r\n") if line and not line.startswith(" ")}
    assert names == {"BEGIN", "END", "VERSION", "PRODID", "CALSCALE", "METHOD",
                     "X-WR-CALNAME", "UID", "DTSTAMP", "LAST-MODIFIED", "CREATED",
                     "SEQUENCE", "DTSTART", "DTEND", "SUMMARY", "LOCATION", "DESCRIPTION",
                     "URL", "CATEGORIES", "STATUS"}
    assert b"\nATTENDEE" not in body
    assert b"\nX-EVIL" not in body
    assert body.count(b"BEGIN:VEVENT") == 1
    # And parsed back, one event with one SUMMARY and one LOCATION holding the text
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert "ATTENDEE" not in event
    assert [c.name for c in event.subcomponents] == []
    assert "evil@example.org" in str(event["SUMMARY"])
    assert str(event["LOCATION"]).startswith("Quai;")


async def test_feed__hostile_listing_title_stays_one_summary(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given a listing whose title and place try to close the property and open others
    title = "Perceuse; ATTENDEE:mailto:evil@example.org,\r\nBEGIN:VALARM"
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title=title, price={"mode": "free"}, details={},
        location={"name": "Quai\r\nEND:VEVENT"}))
    await deals.book(ctx, bob.row, view.row.id, SLOT)
    path = await _new_feed(client, "bob")
    # Then the feed parses to one event, with no attendee, alarm or early end
    [event] = _events(await (await client.get(path)).read()).values()
    assert "ATTENDEE" not in event
    assert [c.name for c in event.subcomponents] == []
    assert "evil@example.org" in str(event["SUMMARY"])
    assert str(event["LOCATION"]).startswith("Quai")


def test_calendar__the_library_is_not_loaded_at_node_start() -> None:
    """Idle memory and start-up: `icalendar` (≈1.6 MB, 70 ms) loads on the first feed."""
    import subprocess
    import sys

    code = "import sys, meshnode.app, meshnode.cli; print('icalendar' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
