"""``POST /listings/{id}/book``: a booking, a slot or a group-buy pledge from the listing page.

A refused request comes back as the listing page with the booking form refilled and the
message next to the field (``pages/refill.py``), never a bare error page.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from meshnode.services import deals as deal_service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, require_member
from meshnode.web.pages.forms import _local_datetime
from meshnode.web.pages.listings import listing_page
from meshnode.web.pages.refill import REFUSALS, refused

BOOK_FIELDS = ("quantity", "from", "to", "message")


def booking_values(form: Any) -> dict[str, str]:
    """What the member typed in the booking form, as shown back on a refusal."""
    values = {name: field(form, name, 40).strip() for name in ("quantity", "from", "to")}
    values["message"] = field(form, "message", 1000)
    return values


def booking_input(values: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    """Form text -> the booking input the deal service validates."""
    data: dict[str, Any] = {"message": values["message"]}
    if values["quantity"]:
        data["quantity"] = values["quantity"].replace(",", ".").replace(" ", "")
    for name in ("from", "to"):
        if values[name]:
            data[name] = _local_datetime(values[name], tz)
    return data


async def book(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/book``: quantity or slot, and a message."""
    member = await require_member(request)
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    values = booking_values(form)
    data = booking_input(values, ZoneInfo(ctx.config.timezone))
    try:
        deal = await deal_service.book(ctx, member, request.match_info["listing_id"], data)
    except REFUSALS as exc:
        state = refused(exc, values, BOOK_FIELDS)
        return await listing_page(request, booking_form=state, status=state.status)
    raise redirect(f"/deals/{deal.id}")


def setup_booking_pages(app: web.Application) -> None:
    """Register the booking form's target."""
    app.router.add_post("/listings/{listing_id}/book", book)
