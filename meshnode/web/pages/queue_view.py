"""What a lent item's page shows of its waiting list (used by the booking context)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.services import queue as queue_service
from meshnode.store.listings import ListingRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import current_member


async def queue_context(request: web.Request, row: ListingRow, *, is_author: bool
                        ) -> dict[str, Any]:
    """``queue``: the signed-in member's place in a lent item's queue (None: no queue shown).
    ``min_reputation``: the lender's minimum, shown next to the booking form."""
    context: dict[str, Any] = {"queue": None,
                               "min_reputation": queue_service.min_reputation(row)}
    member = await current_member(request)
    if member is None or row.category != "lend" or row.kind != "offer":
        return context
    if not row.is_local and row.status not in queue_service.OPEN_STATUSES:
        return context
    found = await queue_service.status_of(request.app[CONTEXT], member, row)
    # another community's item: only its node knows whether it is out, so the form is shown
    if is_author or found.remote or found.item_out or found.length or found.state:
        context["queue"] = found
    return context
