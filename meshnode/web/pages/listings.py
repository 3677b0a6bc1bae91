"""Listing pages: home, search, a listing, post/edit, status changes, photos, my listings."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.web_request import FileField
from markupsafe import Markup

from meshnode.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaError,
)
from meshnode.protocol.capacity import Remaining
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import CATEGORIES, STATUSES, draft_to_input
from meshnode.protocol.text import render_markdown_subset
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import message_of
from meshnode.services import accounts, capacity, names, trust
from meshnode.services import deals as deal_service
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.services.notifications import EXPIRY_WARNING
from meshnode.store.listings import ListingRow, SearchFilters
from meshnode.store.members import MemberRow
from meshnode.web.api import search_filters
from meshnode.web.appkeys import CONTEXT, FRAGMENTS, PLACES, SEARCH_OPTIONS, TEMPLATES
from meshnode.web.browser import (
    current_member,
    field,
    read_form,
    redirect,
    render,
    require_member,
    translator,
)
from meshnode.web.pages.alerts import author_matches, expired_split
from meshnode.web.pages.deals import booking_context
from meshnode.web.pages.forms import (
    DETAIL_FIELDS,
    UNIT_LABELS,
    empty_values,
    form_choices,
    input_from_values,
    values_from_form,
    values_from_input,
)
from meshnode.web.pages.refill import FormState

HOME_SIZE = 20
PAGE_SIZE = 20
SEARCH_KEYS = ("q", "kind", "category", "price", "status", "near", "radius_km")


def _tz(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONTEXT].config.timezone)


async def card_context(ctx: NodeContext, rows: list[ListingRow],
                       taken: dict[str, dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """What a listing card shows, with the author and community by name (``Camille ·
    camille@canal.example``), never a URL, and what is left of it ("2 places restantes sur
    3", "Complet"). The details are parsed only when a card is rendered (``web/cards.py``).
    ``taken``: the page's deals when read with its rows (``SearchPage.taken``)."""
    parties = await names.listing_parties(ctx, rows)
    left = await capacity.remaining_for(ctx, rows, taken)
    return [{"row": row, "author": parties[row.id].author,
             "community": parties[row.id].community, "remaining": left.get(row.id)}
            for row in rows]


async def home(request: web.Request) -> web.Response:
    """``GET /``: newest active listings and category shortcuts.

    Remote listings arrive in the same table (``is_local=0``, ``origin``), so they appear here
    with their community of origin once federation stores them.
    """
    ctx = request.app[CONTEXT]
    settings = await accounts.get_settings(ctx)
    return await render(request, "home.html", {
        "listings": await home_cards(ctx), "about": settings.about, **form_choices(),
    })


async def home_cards(ctx: NodeContext) -> list[dict[str, Any]]:
    """The home page's newest listings as cards: the same for every visitor, kept while
    nothing is committed and the clock shows the same second (listings expire)."""

    async def load() -> list[dict[str, Any]]:
        page = await listing_service.search_listings(
            ctx, SearchFilters(status="active", limit=HOME_SIZE))
        return await card_context(ctx, page.items, page.taken)

    return await ctx.cached(("home_cards",), load, stamp=ctx.clock(), view=True)


async def search(request: web.Request) -> web.Response:
    """``GET /search``: full text plus filters, newest first, with a "next page" link."""
    ctx = request.app[CONTEXT]
    query = {k: request.query.get(k, "")[:300] for k in (*SEARCH_KEYS, "cursor")}
    params = {k: v for k, v in query.items() if v}
    params["limit"] = str(PAGE_SIZE)
    errors: dict[str, str] = {}
    rows: list[ListingRow] = []
    taken: dict[str, dict[str, int]] = {}
    next_link = None
    try:
        page = await listing_service.search_listings(ctx, search_filters(params))
        rows, taken = page.items, page.taken
        if page.next_cursor:
            keep = {k: query[k] for k in SEARCH_KEYS if query[k]}
            next_link = "/search?" + urlencode({**keep, "cursor": page.next_cursor})
    except ValidationError as exc:
        errors = exc.fields or {"q": message_of(exc)}
    searched = any(query[k] for k in SEARCH_KEYS)
    places = request.app[PLACES]
    filters = request.app[SEARCH_OPTIONS].filters(
        request.app[TEMPLATES].env, translator(request, await current_member(request)), query,
        errors, await places.get(ctx), places.version)
    return await render(request, "search.html", {
        "query": query, "listings": await card_context(ctx, rows, taken), "errors": errors,
        "next_link": next_link, "searched": searched, "search_filters": filters,
    }, status=400 if errors else 200)


async def _visible_listing(request: web.Request, member: MemberRow | None) -> ListingRow:
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    if view.row.hidden and not (member and member.is_admin):
        raise NotFoundError("this listing is not available")
    return view.row


async def listing_page(request: web.Request, *, notice: str | None = None,
                       status: int = 200, booking_form: FormState | None = None
                       ) -> web.Response:
    """``GET /listings/{id}`` for browsers: every field, photos, author, origin, signature.

    ``booking_form`` refills the booking form after a refusal, its messages by the fields."""
    ctx = request.app[CONTEXT]
    member = await current_member(request)
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    row = view.row
    if row.hidden and not (member and member.is_admin):
        raise NotFoundError("this listing is not available")
    is_author = member is not None and row.is_local and row.author_id == member.id
    # The page's reads, independent of each other, wait together for the reader thread: one
    # trip through its queue instead of one per read, so every listing's page makes about as
    # many trips as any other (issue 17: 2 to 9 of them, and under load each trip is a turn
    # of the whole event loop: the pages with more trips made the p95).
    signature, parties, booking, remaining, matches = await asyncio.gather(
        trust.signature_verdict(ctx, row), names.listing_parties(ctx, [row]),
        booking_context(request, row, is_author=is_author), capacity.remaining_of(ctx, row),
        _match_cards(ctx, row, is_author))
    if remaining is not None and remaining.full:
        booking["bookable"] = False  # "Complet": no booking form
    return await render(request, "listing.html", {
        **booking, "remaining": remaining, "row": row, "images": view.images,
        "remaining_html": _remaining_html(request, member, row, remaining),
        "details": json.loads(row.details),
        # Our renderer escapes everything and emits only <p>, <br>, <strong>, <em>, <ul>, <li>.
        "description_html": Markup(render_markdown_subset(row.description)),  # noqa: S704
        "signature": signature.status.value, "check": signature.check,
        "author": parties[row.id].author, "origin_community": parties[row.id].community,
        "is_author": is_author, "notice": notice, "booking_form": booking_form or FormState(),
        "matches": matches,
        "fields": DETAIL_FIELDS.get(row.category, ()),
        "base_url": ctx.config.base_url, **form_choices(),
    }, status=status)


def _remaining_html(request: web.Request, member: MemberRow | None, row: ListingRow,
                    remaining: Remaining | None) -> Markup:
    """"2 places restantes sur 3", "Complet": from the fragment cache, keyed by all it shows
    (the language, the capacity, what is left, a group buy's wording), since importing the
    macro with context ran ``_capacity.html`` again on every page that shows one (issue 17)."""
    if remaining is None:
        return Markup("")
    tr = translator(request, member)
    group_buy = row.category == "group-buy"
    return request.app[FRAGMENTS].render(
        request.app[TEMPLATES].env, "_remaining_fragment.html",
        (tr.lang, remaining.capacity, remaining.left, group_buy), lambda: {
            "_": tr.gettext, "ngettext": tr.ngettext, "fmt": tr, "rem": remaining,
            "unit_labels": UNIT_LABELS, "group_buy": group_buy})


async def _match_cards(ctx: NodeContext, row: ListingRow, is_author: bool
                       ) -> list[dict[str, Any]]:
    return await card_context(ctx, await author_matches(ctx, row, is_author))


async def choose_category(request: web.Request) -> web.Response:
    """``GET /post``: pick a category, then the form adapts to it (works without JavaScript)."""
    await require_member(request)
    category = request.query.get("category", "")
    if category not in CATEGORIES:
        return await render(request, "post_choose.html", form_choices())
    return await _form_page(request, category, empty_values(category), {}, None)


async def _form_page(
    request: web.Request, category: str, values: dict[str, str], errors: dict[str, str],
    row: ListingRow | None, *, status: int = 200,
) -> web.Response:
    return await render(request, "listing_form.html", {
        "category": category, "values": values, "errors": errors, "row": row,
        "fields": DETAIL_FIELDS[category], **form_choices(),
    }, status=status)


def _form_errors(exc: ValidationError) -> dict[str, str]:
    return exc.fields or {"": message_of(exc)}


async def create_listing(request: web.Request) -> web.StreamResponse:
    """``POST /post``: validate everything first; on error the form comes back refilled."""
    member = await require_member(request)
    form = await read_form(request)
    category = field(form, "category")
    if category not in CATEGORIES:
        raise web.HTTPBadRequest(reason="unknown category")
    values = values_from_form(form, category)
    data = input_from_values(values, category, _tz(request))
    try:
        view = await listing_service.create_listing(request.app[CONTEXT], member, data)
    except ValidationError as exc:
        return await _form_page(request, category, values, _form_errors(exc), None, status=422)
    raise redirect(f"/listings/{view.row.id}")


async def _own(request: web.Request, member: MemberRow) -> ListingRow:
    row = await _visible_listing(request, member)
    if not row.is_local or row.author_id != member.id:
        raise web.HTTPForbidden(reason="only the author can change this listing")
    return row


async def edit_form(request: web.Request) -> web.Response:
    """``GET /listings/{id}/edit``."""
    member = await require_member(request)
    row = await _own(request, member)
    if row.status == "withdrawn":
        raise ConflictError("this listing was withdrawn and can no longer change")
    draft = listing_service.draft_from_row(row, request.app[CONTEXT].config.currency.decimals)
    decimals = request.app[CONTEXT].config.currency.decimals
    values = values_from_input(draft_to_input(draft, decimals=decimals), _tz(request))
    return await _form_page(request, row.category, values, {}, row)


async def edit_listing(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/edit``: a new signed version, or the form with its errors."""
    member = await require_member(request)
    form = await read_form(request)
    row = await _own(request, member)
    values = values_from_form(form, row.category)
    data = input_from_values(values, row.category, _tz(request))
    data.pop("category")
    data["details"] = {spec.name: data["details"].get(spec.name)
                       for spec in DETAIL_FIELDS[row.category]}
    try:
        await listing_service.update_listing(request.app[CONTEXT], member, row.id, data)
    except ValidationError as exc:
        return await _form_page(request, row.category, values, _form_errors(exc), row,
                                status=422)
    raise redirect(f"/listings/{row.id}")


async def change_status(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/status``: reserved, done, or active again."""
    member = await require_member(request)
    form = await read_form(request)
    row = await _own(request, member)
    status = field(form, "status")
    if status not in ("active", "reserved", "done"):
        raise web.HTTPBadRequest(reason="unknown status")
    await listing_service.update_listing(request.app[CONTEXT], member, row.id,
                                         {"status": status})
    raise redirect(f"/listings/{row.id}")


async def withdraw(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/withdraw``."""
    member = await require_member(request)
    await read_form(request)
    row = await _own(request, member)
    await listing_service.withdraw_listing(request.app[CONTEXT], member, row.id)
    raise redirect("/my/listings")


async def add_photo(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/photos`` (multipart): re-encoded, then a new signed version."""
    member = await require_member(request)
    form = await read_form(request)
    row = await _own(request, member)
    upload = form.get("photo")
    if not isinstance(upload, FileField):
        raise web.HTTPBadRequest(reason="choose a photo")
    ctx = request.app[CONTEXT]
    try:
        async with ctx.images.admit():  # bounds the uploads held in memory at once (503)
            data = upload.file.read(ctx.config.max_image_bytes + 1)
            await listing_service.add_image(ctx, member, row.id, data,
                                            alt=field(form, "alt", 200))
    except (PayloadTooLargeError, UnsupportedMediaError) as exc:
        raise web.HTTPBadRequest(reason=message_of(exc)) from exc
    raise redirect(f"/listings/{row.id}/edit")


async def remove_photo(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/photos/{image_id}/delete``."""
    member = await require_member(request)
    await read_form(request)
    row = await _own(request, member)
    await listing_service.remove_image(request.app[CONTEXT], member, row.id,
                                       request.match_info["image_id"])
    raise redirect(f"/listings/{row.id}/edit")


async def my_listings(request: web.Request) -> web.Response:
    """``GET /my/listings``: the member's listings in every status, each with the booking
    requests waiting for an answer."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    groups = []
    ids: list[str] = []
    now = ctx.clock()
    expired: list[dict[str, Any]] = []  # issue 18: "Expirées", each with "Republier"
    for status in STATUSES:
        page = await listing_service.search_listings(
            ctx, SearchFilters(author_id=member.id, status=status, include_hidden=True,
                               include_expired=True, limit=100)
        )
        if page.items:
            cards, gone = expired_split(await card_context(ctx, page.items, page.taken),
                                        format_utc(now))
            expired += gone
            groups += [(status, cards)] if cards else []
            ids += [row.id for row in page.items]
    pending = await deal_service.pending_requests(ctx, ids)
    return await render(request, "my_listings.html", {
        "groups": groups, "pending": pending, "expired": expired, **form_choices(),
        "renew_before": format_utc(now + EXPIRY_WARNING),
        "renewed": request.query.get("renewed", "")})


def setup_listing_pages(app: web.Application) -> None:
    """Register the listing pages (``/listings/{id}`` itself is negotiated in web/public.py)."""
    app.router.add_get("/", home)
    app.router.add_get("/search", search)
    app.router.add_get("/post", choose_category)
    app.router.add_post("/post", create_listing)
    app.router.add_get("/listings/{listing_id}/edit", edit_form)
    app.router.add_post("/listings/{listing_id}/edit", edit_listing)
    app.router.add_post("/listings/{listing_id}/status", change_status)
    app.router.add_post("/listings/{listing_id}/withdraw", withdraw)
    app.router.add_post("/listings/{listing_id}/photos", add_photo)
    app.router.add_post("/listings/{listing_id}/photos/{image_id}/delete", remove_photo)
    app.router.add_get("/my/listings", my_listings)
