"""Alert pages: "Mes alertes" (list, create, delete), the search page's "Créer une alerte
pour cette recherche", renewal and republication of a listing, and an offer's matches."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.protocol.alerts import FIELDS, MAX_RADIUS_KM
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import KINDS
from meshnode.services import alerts as service
from meshnode.services import listings as listing_service
from meshnode.services import places as places_service
from meshnode.services.context import NodeContext
from meshnode.store.listings import ListingRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_member
from meshnode.web.pages.forms import form_choices
from meshnode.web.pages.refill import refusal_errors
from meshnode.web.pages.wallet import money

FORM_FIELDS = (*sorted(FIELDS), "price")
RETURN_TO = ("/my/listings", "/notifications")


def _same_format(near: str) -> str:
    """A place's ``lat,lon`` written as stored alerts write it (5 decimals)."""
    lat, _, lon = near.partition(",")
    return f"{float(lat):.5f},{float(lon):.5f}"


def _alert_input(form: dict[str, str]) -> dict[str, str]:
    """The search form's words as a saved search: "Free" is a price limit of 0."""
    data = {name: form[name] for name in FIELDS if form.get(name)}
    if form.get("price") == "free" and "max_price" not in data:
        data["max_price"] = "0"
    return data


async def _page(request: web.Request, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> web.Response:
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    places = await places_service.known_places(ctx)
    return await render(request, "my_alerts.html", {
        "alerts": await service.list_alerts(ctx, member), "max_alerts": service.MAX_ALERTS,
        "values": values or {}, "errors": errors or {}, "kinds": KINDS,
        "places": places, "place_names": {_same_format(p.near): p.name for p in places},
        "money": money(request),
        "saved": request.query.get("saved", ""), "max_radius": MAX_RADIUS_KM,
        **form_choices(),
    }, status=status)


async def my_alerts(request: web.Request) -> web.Response:
    """``GET /my/alerts``: the member's saved searches, and a form to add one."""
    return await _page(request)


async def create_alert(request: web.Request) -> web.StreamResponse:
    """``POST /my/alerts``: save a search (from this page or the search page's button); on
    a refusal the form comes back filled in, each message by its field."""
    member = await require_member(request)
    form = await read_form(request)
    values = {name: field(form, name, 300) for name in FORM_FIELDS}
    try:
        await service.create_alert(request.app[CONTEXT], member, _alert_input(values))
    except ValidationError as exc:
        errors = refusal_errors(exc, (*FIELDS, "alerts"))
        return await _page(request, values=values, errors=errors, status=422)
    raise redirect("/my/alerts?saved=1")


async def delete_alert(request: web.Request) -> web.StreamResponse:
    """``POST /my/alerts/{id}/delete`` (404 for another member's alert)."""
    member = await require_member(request)
    await read_form(request)
    raw = request.match_info["alert_id"]
    alert_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
    await service.delete_alert(request.app[CONTEXT], member, alert_id)
    raise redirect("/my/alerts?saved=deleted")


async def renew(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/renew``: the one-click renewal (from the expiry notification,
    "Mes annonces" or the listing), also "Republish" for an expired listing."""
    member = await require_member(request)
    form = await read_form(request)
    listing_id = request.match_info["listing_id"]
    try:
        await listing_service.renew_listing(request.app[CONTEXT], member, listing_id)
    except ConflictError as exc:
        raise web.HTTPConflict(reason="this listing can no longer be renewed") from exc
    back = field(form, "next", 100)
    raise redirect(f"{back}?renewed={listing_id}" if back in RETURN_TO
                   else f"/listings/{listing_id}?renewed=1")


async def author_matches(ctx: NodeContext, row: ListingRow, is_author: bool
                         ) -> list[ListingRow]:
    """What the author of a listing sees on its page: the requests and swaps, here and
    from neighbours, that want this offer (or the offers this request wants)."""
    if not is_author or row.status != "active":
        return []
    return await service.matches_of(ctx, row)


def expired_split(items: list[dict[str, Any]], now: str) -> tuple[list[dict[str, Any]],
                                                                  list[dict[str, Any]]]:
    """Cards of "Mes annonces" split into (still running, expired)."""
    running = [i for i in items if not _expired(i["row"], now)]
    return running, [i for i in items if _expired(i["row"], now)]


def _expired(row: ListingRow, now: str) -> bool:
    return row.expires_at is not None and row.expires_at <= now


def setup_alert_pages(app: web.Application) -> None:
    """Register the alert pages."""
    app.router.add_get("/my/alerts", my_alerts)
    app.router.add_post("/my/alerts", create_alert)
    app.router.add_post("/my/alerts/{alert_id}/delete", delete_alert)
    app.router.add_post("/listings/{listing_id}/renew", renew)
