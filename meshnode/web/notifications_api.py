"""JSON API of the notification centre under ``/api/v1/notifications``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.mail import parse_address
from meshnode.services import alerts
from meshnode.services import email as email_service
from meshnode.services import notifications as service
from meshnode.store.listings import ListingRow
from meshnode.store.notifications import NotificationRow
from meshnode.web.alerts_api import match_listing_json
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import read_json

READ_FIELDS = frozenset({"ids"})
PREFERENCE_FIELDS = frozenset({"types"})


def notification_json(row: NotificationRow, base_url: str, decimals: int,
                      listing: dict[str, Any] | None = None) -> dict[str, Any]:
    """One item: its type, when, whether read, and what it points to (a ``match`` carries
    ``listing``: ``{id, title, url, origin, kind, category}``)."""
    return {
        **({"listing": listing} if row.type == "match" else {}),
        "amount": None if row.amount is None else format_amount(row.amount, decimals=decimals),
        "id": row.id, "type": row.type, "created_at": row.created_at,
        "read": row.read_at is not None, "read_at": row.read_at, "ref": row.ref,
        "url": f"{base_url}{row.target_url}" if row.target_url else None,
        "detail": row.detail,
    }


def _listing(found: Mapping[str, ListingRow], ref: str) -> dict[str, Any] | None:
    row = found.get(ref)
    return None if row is None else match_listing_json(row)


def parse_ids(value: object) -> list[int] | None:
    """``ids`` of a mark-read request: a list of item ids, or absent/None for all."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > service.MAX_IDS or not all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value):
        raise ValidationError("ids must be a list of item ids", {
            "ids": f"a list of at most {service.MAX_IDS} positive integers"})
    return list(value)


def parse_types(value: object) -> frozenset[str]:
    """A list of type names, each known (ValidationError names the unknown ones)."""
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValidationError("types must be a list of names", {"types": ", ".join(service.TYPES)})
    unknown = [t for t in value if t not in service.TYPES]
    if unknown:
        raise ValidationError("unknown notification types", {
            "types": f"unknown: {', '.join(sorted(unknown))[:200]}"})
    return frozenset(value)


def _positive_int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise ValidationError(f"{name} must be a positive integer", {name: "positive integer"})
    return int(raw)


async def _object_body(request: web.Request, allowed: frozenset[str]) -> Mapping[str, Any]:
    data = await read_json(request, request.app[CONTEXT].config.max_body_bytes)
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    unknown = {name: "unknown field" for name in data if name not in allowed}
    if unknown:
        raise ValidationError("unknown fields", unknown)
    return data


async def list_notifications(request: web.Request) -> web.Response:
    """``GET /api/v1/notifications?before=&limit=&unread=1``: newest first, with the count."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    unread_flag = request.query.get("unread", "0")
    if unread_flag not in ("0", "1", "true", "false"):
        raise ValidationError("unread must be 1 or 0", {"unread": "1 or 0"})
    limit = _positive_int(request.query, "limit", service.PAGE) or service.PAGE
    if limit > service.MAX_PAGE:
        raise ValidationError("limit out of range", {"limit": f"1 to {service.MAX_PAGE}"})
    rows = await service.list_notifications(
        ctx, member, before=_positive_int(request.query, "before", None), limit=limit,
        unread_only=unread_flag in ("1", "true"))
    matched = await alerts.listings_of(ctx, [row.ref for row in rows if row.type == "match"])
    return web.json_response({
        "items": [notification_json(row, ctx.config.base_url, ctx.config.currency.decimals,
                                    _listing(matched, row.ref)) for row in rows],
        "unread": await service.unread_count(ctx, member),
        "next": rows[-1].id if len(rows) == limit else None,
    })


async def post_read(request: web.Request) -> web.Response:
    """``POST /api/v1/notifications/read`` ``{"ids": [...]}`` (no ``ids``: all of them)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await _object_body(request, READ_FIELDS) if request.can_read_body else {}
    marked = await service.mark_read(ctx, member, parse_ids(data.get("ids")))
    return web.json_response({"marked": marked,
                              "unread": await service.unread_count(ctx, member)})


def _preferences_json(prefs: service.Preferences) -> dict[str, Any]:
    return {"types": sorted(prefs.enabled), "available": list(service.TYPES)}


async def get_preferences(request: web.Request) -> web.Response:
    """``GET /api/v1/notifications/preferences``: the enabled types."""
    member = await api_member(request)
    prefs = await service.preferences(request.app[CONTEXT], member)
    return web.json_response(_preferences_json(prefs))


async def put_preferences(request: web.Request) -> web.Response:
    """``PUT /api/v1/notifications/preferences`` ``{"types": [...]}``: only these stay on."""
    member = await api_member(request)
    data = await _object_body(request, PREFERENCE_FIELDS)
    types = parse_types(data.get("types"))
    prefs = await service.set_preferences(request.app[CONTEXT], member, types)
    return web.json_response(_preferences_json(prefs))


EMAIL_FIELDS = frozenset({"address", "enabled", "digest"})


def email_json(settings: email_service.EmailSettings) -> dict[str, Any]:
    """``GET /api/v1/notifications/email`` body."""
    return {"available": settings.available, "address": settings.address,
            "verified": settings.verified, "enabled": settings.enabled,
            "digest": settings.digest}


def _flag(data: Mapping[str, Any], name: str, current: bool) -> bool:
    value = data.get(name, current)
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false", {name: "true or false"})
    return value


async def get_email(request: web.Request) -> web.Response:
    """``GET /api/v1/notifications/email``: address, verified, e-mail on/off, digest."""
    member = await api_member(request)
    return web.json_response(email_json(
        await email_service.email_settings(request.app[CONTEXT], member)))


async def put_email(request: web.Request) -> web.Response:
    """``PUT /api/v1/notifications/email`` ``{address?, enabled?, digest?}``: a new address
    is mailed a verification link; nothing else is sent to it before it is opened."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await _object_body(request, EMAIL_FIELDS)
    current = await email_service.email_settings(ctx, member)
    enabled = _flag(data, "enabled", current.enabled)
    digest = _flag(data, "digest", current.digest)
    if "address" in data:
        wanted = parse_address(data["address"])  # null too is refused: DELETE forgets it
        if wanted != current.address:
            current = await email_service.set_address(ctx, member, wanted)
    if (enabled, digest) != (current.enabled, current.digest):
        current = await email_service.set_choices(ctx, member, enabled=enabled, digest=digest)
    return web.json_response(email_json(current))


async def delete_email(request: web.Request) -> web.Response:
    """``DELETE /api/v1/notifications/email``: forget the address."""
    member = await api_member(request)
    return web.json_response(email_json(
        await email_service.remove_address(request.app[CONTEXT], member)))


def setup_notification_routes(app: web.Application) -> None:
    """Register the notification centre's ``/api/v1`` routes."""
    app.router.add_get("/api/v1/notifications", list_notifications)
    app.router.add_post("/api/v1/notifications/read", post_read)
    app.router.add_get("/api/v1/notifications/preferences", get_preferences)
    app.router.add_put("/api/v1/notifications/preferences", put_preferences)
    app.router.add_get("/api/v1/notifications/email", get_email)
    app.router.add_put("/api/v1/notifications/email", put_email)
    app.router.add_delete("/api/v1/notifications/email", delete_email)
