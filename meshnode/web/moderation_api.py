"""Reports in the JSON API: a member reports a listing (ours or another node's), admins read
the queue and decide (see docs/moderation.md)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from meshnode.federation import blocking
from meshnode.federation.flags import inbox_of
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text
from meshnode.services import flags, moderation
from meshnode.store.reports import ReportRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin, api_member
from meshnode.web.bodies import path_id, read_json

MAX_BODY = 8 * 1024


def report_json(report: ReportRow) -> dict[str, Any]:
    """A report as the API shows it; the reporter is left out when the report is
    anonymous (``reporter`` a local username, ``reporter_actor`` a remote one)."""
    hidden = report.anonymous
    return {
        "id": report.id,
        "direction": report.direction,
        "listing": None if report.listing_id is None else {
            "id": report.listing_id, "title": report.listing_title,
            "hidden": report.listing_hidden, "origin": report.listing_origin},
        "reason": report.category,
        "comment": report.reason,
        "anonymous": report.anonymous,
        "reporter": None if hidden else report.reporter_username,
        "reporter_actor": None if hidden or report.direction != "in" else report.remote_actor,
        "community": report.remote_community,
        "objects": json.loads(report.objects),
        "unknown_object": report.unknown_object,
        "flag": report.flag_id,
        "created_at": report.created_at,
        "status": "open" if report.resolved_at is None else "decided",
        "resolution": report.resolution,
        "resolved_at": report.resolved_at,
    }


async def body_of(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (capped; 422 for anything else)."""
    body = await read_json(request, MAX_BODY)
    if not isinstance(body, dict):
        raise ValidationError(Text("send a JSON object"), {})
    return body


async def post_report(request: web.Request) -> web.Response:
    """``POST /api/v1/listings/{id}/reports`` ``{reason, comment, anonymous}``."""
    member = await api_member(request)
    body = await body_of(request)
    federation = request.app[FEDERATION]
    report = await flags.file_report(
        request.app[CONTEXT], member, request.match_info["listing_id"],
        reason=body.get("reason"), comment=body.get("comment"),
        anonymous=body.get("anonymous", False), inbox_of=inbox_of(federation))
    if report.direction == "out":
        federation.wake_delivery()
    return web.json_response(report_json(report), status=201)


async def get_reports(request: web.Request) -> web.Response:
    """``GET /api/v1/reports`` (admin): open reports, newest first (``all=1``: every one)."""
    await api_admin(request)
    rows = await moderation.list_reports(request.app[CONTEXT],
                                         open_only=request.query.get("all") != "1")
    return web.json_response({"items": [report_json(row) for row in rows]})


async def post_decision(request: web.Request) -> web.Response:
    """``POST /api/v1/reports/{id}/decision`` ``{decision: removed | dismissed}`` (admin)."""
    admin = await api_admin(request)
    body = await body_of(request)
    report_id = path_id(request, "report_id", Text("no such report"))
    report = await moderation.decide_report(request.app[CONTEXT], admin, report_id,
                                            str(body.get("decision")))
    request.app[FEDERATION].wake_delivery()
    return web.json_response(report_json(report))


def peer_of(body: dict[str, Any]) -> str:
    """The ``peer`` field: a node URL."""
    value = body.get("peer")
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationError(Text("give a node URL"), {"peer": Text("a node URL")})
    return value


async def post_block_preview(request: web.Request) -> web.Response:
    """``POST /api/v1/blocks/preview {peer}`` (admin): what blocking it would do."""
    admin = await api_admin(request)
    body = await body_of(request)
    found = await blocking.preview_block(request.app[CONTEXT], admin, peer_of(body))
    return web.json_response(found.to_json())


async def post_block(request: web.Request) -> web.Response:
    """``POST /api/v1/blocks {peer, confirm: true}`` (admin): block it and apply the
    effects the preview listed; the answer says what was done."""
    admin = await api_admin(request)
    body = await body_of(request)
    done = await blocking.block_node(request.app[CONTEXT], admin, peer_of(body),
                                     confirm=body.get("confirm"))
    request.app[FEDERATION].wake_delivery()
    return web.json_response(done.to_json())


async def post_unblock(request: web.Request) -> web.Response:
    """``POST /api/v1/blocks/undo {peer}`` (admin): lift the block."""
    admin = await api_admin(request)
    body = await body_of(request)
    done = await blocking.unblock_node(request.app[CONTEXT], admin, peer_of(body))
    request.app[FEDERATION].wake_delivery()
    return web.json_response(done)


def setup_moderation_routes(app: web.Application) -> None:
    """Register the reports and node-block routes."""
    app.router.add_post("/api/v1/blocks/preview", post_block_preview)
    app.router.add_post("/api/v1/blocks", post_block)
    app.router.add_post("/api/v1/blocks/undo", post_unblock)
    app.router.add_post("/api/v1/listings/{listing_id}/reports", post_report)
    app.router.add_get("/api/v1/reports", get_reports)
    app.router.add_post("/api/v1/reports/{report_id}/decision", post_decision)
