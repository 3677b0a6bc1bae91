"""Administration of federation: peers (add, approve, remove) and delivery status; the
*Block* button of every row, URL or handle, goes to the block preview (``blocks_admin``).

Same use cases as ``meshnode peer …`` and ``/api/v1/peers`` (``federation.peering``); the
running node's workers do the network part, so every action here only writes rows.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError, NotFoundError
from meshnode.federation import peering
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.reachability import Reachability, explain_error, reachability
from meshnode.protocol.translatable import message_of
from meshnode.services import names, publishing
from meshnode.services.context import NodeContext
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_admin
from meshnode.web.i18n import N_

TARGET_MAX = 300
ACTIONS = {"approve": peering.approve_peer, "remove": peering.remove_peer}
STATUS_LABELS = {"pending": N_("Pending"), "peered": N_("Peered"), "blocked": N_("Blocked")}
DONE_MESSAGES = {
    "add": N_("Peering requested: the node follows it within a minute."),
    "approve": N_("Peer approved."), "remove": N_("Peer removed."),
}
SKEW_MARKERS = ("clock_skew", "clock skew", "clocks is probably wrong")


def is_clock_skew(error: str | None) -> bool:
    """True when an error is a refusal for clock skew (the most common federation failure)."""
    text = (error or "").lower()
    return any(marker in text for marker in SKEW_MARKERS)


def _reachability(peer: peering.PeerStatus | None, queue: dict[str, Any] | None
                  ) -> Reachability:
    return reachability(
        last_delivery=(queue or {}).get("last_done") or (peer.last_delivery if peer else None),
        last_sync=peer.last_sync if peer else None,
        failures=int((queue or {}).get("failing") or 0),
        failing_since=(queue or {}).get("failing_since"),
        next_retry=(queue or {}).get("next_retry") or (peer.next_attempt if peer else None),
        peer_error=bool(peer and peer.last_error),
        paused_until=(queue or {}).get("paused_until"))


def _sentences(*raw: str | None) -> list[str]:
    """One translated-sentence id per error class seen (raw texts stay in the log)."""
    found: list[str] = []
    for text in raw:
        sentence = explain_error(text)
        if sentence and sentence not in found:
            found.append(sentence)
    return found


async def _rows(ctx: NodeContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Peers with their queue, reachability and error sentences; then other hosts."""
    deliveries = {row["host"]: row for row in await publishing.delivery_summary(ctx)}
    peers = await peering.list_peers(ctx)
    parties = await names.communities_by_origin(ctx, [*deliveries, *(p.peer for p in peers)])
    rows: list[dict[str, Any]] = []
    for peer in peers:
        queue = deliveries.pop(peer.peer, None)
        errors_seen = [peer.last_error, queue["last_error"] if queue else None]
        rows.append({"peer": peer, "queue": queue, "party": parties[peer.peer],
                     "reach": _reachability(peer, queue), "errors": _sentences(*errors_seen),
                     "skew": any(is_clock_skew(text) for text in errors_seen)})
    others = [{**q, "party": parties[q["host"]], "reach": _reachability(None, q),
               "errors": _sentences(q["last_error"]), "skew": is_clock_skew(q["last_error"])}
              for q in deliveries.values()]
    return rows, others


async def reachability_by_origin(ctx: NodeContext) -> dict[str, Reachability]:
    """Every peer's reachability by origin (the Neighbours page shows it next to "peered")."""
    rows, _ = await _rows(ctx)
    return {row["peer"].peer: row["reach"] for row in rows}


async def _page(request: web.Request, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    rows, others = await _rows(ctx)
    return await render(request, "admin/peers.html", {
        "rows": rows, "other_hosts": others, "policy": ctx.config.peering_policy,
        "status_labels": STATUS_LABELS, "values": values or {"target": ""},
        "errors": errors or {}, "done": DONE_MESSAGES.get(request.query.get("done", "")),
    }, status=status)


async def peers_page(request: web.Request) -> web.Response:
    """``GET /admin/peers``."""
    await require_admin(request)
    return await _page(request)


async def add_peer(request: web.Request) -> web.StreamResponse:
    """``POST /admin/peers``: peer with a node URL or ``handle@host[:port]``."""
    await require_admin(request)
    form = await read_form(request)
    values = {"target": field(form, "target", TARGET_MAX + 1).strip()}
    if not values["target"] or len(values["target"]) > TARGET_MAX:
        return await _page(request, values=values, status=422, errors={
            "target": N_("Give a node address (https://…) or a handle like name@host.")})
    try:
        await peering.add_peer(request.app[CONTEXT], values["target"])
    except ValidationError as exc:
        return await _page(request, values=values, status=422,
                           errors={"target": message_of(exc)})
    except ConflictError as exc:
        return await _page(request, values=values, status=409,
                           errors={"target": message_of(exc)})
    raise redirect("/admin/peers?done=add")


async def peer_action(request: web.Request) -> web.StreamResponse:
    """``POST /admin/peers/{approve|remove}`` with the ``peer`` key of a row."""
    await require_admin(request)
    form = await read_form(request)
    action = request.match_info["action"]
    try:
        await ACTIONS[action](request.app[CONTEXT], field(form, "peer", TARGET_MAX).strip())
    except (ConflictError, NotFoundError, ValidationError) as exc:
        return await _page(request, errors={"": message_of(exc)}, status=409)
    raise redirect(f"/admin/peers?done={action}")


def setup_peer_admin_pages(app: web.Application) -> None:
    """Register the peers page."""
    app.router.add_get("/admin/peers", peers_page)
    app.router.add_post("/admin/peers", add_peer)
    app.router.add_post("/admin/peers/{action:approve|remove}", peer_action)
