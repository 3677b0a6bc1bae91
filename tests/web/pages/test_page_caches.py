"""What the members' pages keep between requests (issue 17) still shows every change.

The search form's option lists are kept per language, the community's places until the
next commit, deal cards by everything they show: each test changes what a cache holds and
checks the next page shows the change, and that the kept copy was really used meanwhile.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import deals, direct_messages, ledger, messages, notifications
from meshnode.services.badges import navigation_badges
from meshnode.services.context import NodeContext
from meshnode.services.places import PlaceCache
from meshnode.web.appkeys import FRAGMENTS, PLACES, SEARCH_OPTIONS
from meshnode.web.i18n import I18n
from tests import conftest as base
from tests.web.pages.conftest import HTML, login, make_ride

FRENCH = {**HTML, "Accept-Language": "fr"}
ENGLISH = {**HTML, "Accept-Language": "en"}


async def test_search_form__option_lists_follow_the_readers_language_and_selection(
    client: TestClient,
) -> None:
    # Given a French reader's search page (its option lists now kept)
    french = await (await client.get("/search", headers=FRENCH)).text()
    assert '<option value="offer">Offre</option><option value="request">Demande</option>' in (
        french)
    kept = len(client.app[SEARCH_OPTIONS])
    # When an English reader opens the same page, then someone picks "request" in French
    english = await (await client.get("/search", headers=ENGLISH)).text()
    chosen = await (await client.get("/search?kind=request&category=ride",
                                     headers=FRENCH)).text()
    again = await (await client.get("/search", headers=FRENCH)).text()
    # Then each sees their own language and their own selection, never another's
    assert '<option value="offer">Offer</option><option value="request">Request</option>' in (
        english)
    assert "Offre" not in english
    assert '<option value="request" selected>Demande</option>' in chosen
    assert '<option value="ride" selected>' in chosen
    assert " selected>" not in again.split('id="near"')[0]
    # And the French lists were rendered once, then reused (English and the selection added)
    assert len(client.app[SEARCH_OPTIONS]) == kept + 3 + 2


async def test_search_form__a_forged_value_selects_nothing_and_is_never_echoed(
    client: TestClient,
) -> None:
    page = await (await client.get('/search?category="><script>x</script>',
                                   headers=ENGLISH)).text()
    assert "<script>x</script>" not in page
    assert " selected>" not in page.split('id="near"')[0]


async def test_search_form__filters_are_kept_per_selection_and_the_words_never_are(
    client: TestClient,
) -> None:
    # Given a search page with filters (the filters' HTML now kept)
    kept = client.app[SEARCH_OPTIONS].filters_kept
    await client.get("/search?q=velo&kind=offer", headers=FRENCH)
    rendered = kept.renders
    # When other words are searched with the same filters, one of them hostile
    page = await (await client.get('/search?q="><script>x</script>&kind=offer',
                                   headers=FRENCH)).text()
    # Then the filters were reused, and the words shown are this search's own, escaped
    assert kept.renders == rendered
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    assert "<script>x</script>" not in page
    assert '<option value="offer" selected>Offre</option>' in page
    # And another selection, or a refused search, is rendered for itself
    other = await (await client.get("/search?q=velo&kind=request", headers=FRENCH)).text()
    assert '<option value="request" selected>Demande</option>' in other
    assert kept.renders == rendered + 1
    refused = await client.get("/search?radius_km=-3", headers=FRENCH)
    assert refused.status == 400
    assert 'id="err-radius_km"' in await refused.text()
    assert kept.renders == rendered + 1  # the refused one's filters were not kept


async def test_search_form__a_place_named_by_a_new_listing_shows_on_the_next_search(
    client: TestClient, ctx: NodeContext, alice: base.TestMember,
) -> None:
    # Given a search page read once (the places are kept)
    await make_ride(ctx, alice)
    first = await (await client.get("/search", headers=FRENCH)).text()
    assert ">Quai du Canal</option>" in first
    assert "Villeurbanne" not in first
    # When a listing names a new place, and more than the cache's minimum age has passed
    client.app[PLACES].min_age = 0.0  # the default (1 s) only spaces reads under a stream
    await make_ride(ctx, alice, title="Covoiturage vers Grenoble",
                    location={"name": "Villeurbanne", "lat": 45.7700, "lon": 4.8800})
    second = await (await client.get("/search", headers=FRENCH)).text()
    # Then the form offers it
    assert 'value="45.7700,4.8800">Villeurbanne</option>' in second


class Ticks:
    """A monotonic clock the test moves by hand (passed in, as PlaceCache allows)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_place_cache__reads_again_after_a_commit_but_at_most_once_per_min_age(
    ctx: NodeContext, alice: base.TestMember,
) -> None:
    # Given a cache read once
    ticks = Ticks()
    places = PlaceCache(min_age=1.0, max_age=30.0, monotonic=ticks)
    await make_ride(ctx, alice)
    assert [p.name for p in await places.get(ctx)] == ["Quai du Canal"]
    # When nothing is committed, pages keep using it (no read), however old it is
    ticks.now += 20
    await places.get(ctx)
    assert places.reads == 1
    # When a listing names a new place within min_age of a read: still the kept list
    ticks.now += 10  # max_age: read again (nothing new)
    await places.get(ctx)
    await make_ride(ctx, alice, title="Covoiturage vers Grenoble",
                    location={"name": "Villeurbanne", "lat": 45.7700, "lon": 4.8800})
    ticks.now += 0.5
    assert "Villeurbanne" not in [p.name for p in await places.get(ctx)]
    # Then once min_age has passed since that read, the next page reads it again
    ticks.now += 0.5
    assert "Villeurbanne" in [p.name for p in await places.get(ctx)]
    assert places.reads == 3


async def test_place_cache__a_write_by_another_process_shows_within_max_age(
    ctx: NodeContext, alice: base.TestMember,
) -> None:
    # Given a kept list, and a listing written by another process (its own store: this
    # process's commit counter does not move)
    ticks = Ticks()
    places = PlaceCache(min_age=1.0, max_age=30.0, monotonic=ticks)
    assert await places.get(ctx) == ()
    other = await NodeContext.open(ctx.config)
    try:
        await make_ride(other, alice)
    finally:
        await other.close()
    ticks.now += 29
    assert await places.get(ctx) == ()
    # When max_age has passed, Then the list is read again
    ticks.now += 1
    assert [p.name for p in await places.get(ctx)] == ["Quai du Canal"]


async def test_my_bookings__a_deal_card_changes_when_its_deal_does(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob's booking of alice's ride, his bookings page read twice
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await login(client, "bob")
    first = await (await client.get("/my/deals", headers=FRENCH)).text()
    fragments = client.app[FRAGMENTS]
    rendered = fragments.renders
    assert await (await client.get("/my/deals", headers=FRENCH)).text() == first
    assert fragments.renders == rendered  # the second page reused the card
    assert "Demandée" in first
    # When alice accepts
    await deals.act(ctx, alice.row, deal.id, "accept")
    # Then bob's next page shows the new state (a new card: the key is the deal row itself,
    # and his menu again: the acceptance is a notification, its count changed)
    after = await (await client.get("/my/deals", headers=FRENCH)).text()
    assert "Acceptée" in after
    assert "Demandée" not in after
    assert fragments.renders == rendered + 2


def test_translator__kept_days_and_minutes_still_give_each_moment_its_own_local_text() -> None:
    # Given one node's translators (Paris time), formatting through their kept days/minutes
    i18n = I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2)
    fr, en = i18n.translators["fr"], i18n.translators["en"]
    # When two moments an hour and a half apart straddle local midnight, read twice each
    moments = ["2026-11-26T22:59:00Z", "2026-11-26T23:30:00Z"] * 2
    french = [fr.datetime(m, "short") for m in moments]
    english = [en.time(m) for m in moments]
    # Then each gets its own day and minute in the community's timezone and language
    assert french == ["26/11/2026 23:59", "27/11/2026 00:30"] * 2
    assert english == ["11:59\u202fPM", "12:30\u202fAM"] * 2
    assert fr.date("2026-11-26T23:30:00Z", "medium") == "27 nov. 2026"
    assert (fr.amount("1234.50"), en.amount("1234.50")) == ("1\u202f234,50\xa0G",
                                                            "1,234.50\xa0G")


async def test_wallet__the_kept_chart_shows_the_next_payment(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob's wallet with one payment, read twice (the chart kept after the first)
    await ledger.pay(ctx, alice.row, payee="bob", amount="3.00", memo="tarte")
    await login(client, "bob")
    first = await (await client.get("/wallet", headers=ENGLISH)).text()
    rendered = client.app[FRAGMENTS].renders
    await client.get("/wallet", headers=ENGLISH)
    assert client.app[FRAGMENTS].renders == rendered
    chart = first.split('<figure class="chart">')[1].split("</figure>")[0]
    assert "3.00" in chart
    assert "10.00" not in chart
    # When alice pays him again
    await ledger.pay(ctx, alice.row, payee="bob", amount="7.00", memo="confiture")
    # Then his next wallet page draws a new chart that ends at 10.00
    after = await (await client.get("/wallet", headers=ENGLISH)).text()
    chart = after.split('<figure class="chart">')[1].split("</figure>")[0]
    assert "10.00" in chart
    # (a new chart, the new payment's history line and his menu, whose count of unread
    # notifications changed; the first line is kept)
    assert client.app[FRAGMENTS].renders == rendered + 3


async def test_wallet__a_kept_history_line_is_each_members_own(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given one payment from alice to bob, seen first in bob's wallet (its line kept)
    await ledger.pay(ctx, alice.row, payee="bob", amount="3.00", memo="tarte")
    await login(client, "bob")
    bobs = await (await client.get("/wallet", headers=ENGLISH)).text()
    rendered = client.app[FRAGMENTS].renders
    # When alice opens her wallet
    await login(client, "alice")
    alices = await (await client.get("/wallet", headers=ENGLISH)).text()
    # Then the same entry is a line of her own: money out, to bob (not bob's line, from her)
    assert 'class="amount in">+' in bobs
    assert "from alice" in bobs
    assert 'class="amount out">−' in alices
    assert "to bob" in alices
    assert "from alice" not in alices
    assert client.app[FRAGMENTS].renders > rendered


async def test_navigation_badges__one_read_gives_the_same_counts_as_the_three_it_replaces(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given two messages and a payment for bob (each also a notification)
    listing_id = await make_ride(ctx, alice)
    for text in ("Bonjour", "Encore là ?"):
        await messages.send_message(ctx, alice.row, listing_id=listing_id,
                                    recipient_username="bob", body=text)
    await ledger.pay(ctx, alice.row, payee="bob", amount="2.00")
    # When the navigation counts them in one statement
    badges = await navigation_badges(ctx, bob.row)
    # Then it finds what the three separate counts find
    assert badges.messages == await direct_messages.unread_count(ctx, bob.row) == 2
    assert badges.notifications == await notifications.unread_badge(ctx, bob.row) == 3
    # And the page shows them
    await login(client, "bob")
    page = await (await client.get("/", headers=ENGLISH)).text()
    assert "3 unread notifications" in page
    assert "2 unread messages" in page
