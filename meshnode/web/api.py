"""JSON API ``/api/v1``: members' own data and listings (see docs/api.md)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, web

from meshnode import urls
from meshnode.errors import NotFoundError, PayloadTooLargeError
from meshnode.protocol.capacity import Remaining
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import CATEGORIES, KINDS, STATUSES
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.protocol.parsing import parse_decimal, parse_optional_int
from meshnode.protocol.trust import ListingTrust
from meshnode.protocol.trust import verdict as kept_verdict
from meshnode.services import capacity, names, trust
from meshnode.services import listings as listing_service
from meshnode.services import members as member_service
from meshnode.services.context import NodeContext
from meshnode.services.listings import ListingView
from meshnode.services.names import ListingParties
from meshnode.store.listings import SearchFilters
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin, api_member
from meshnode.web.bodies import read_json

MAX_PAGE = 100
MAX_RADIUS_KM = 500.0


def member_json(member: MemberRow, base_url: str) -> dict[str, Any]:
    """Public description of a member (no secrets, no password hash)."""
    actor = urls.member_actor(base_url, member.username)
    return {
        "username": member.username,
        "display_name": member.display_name,
        "is_admin": member.is_admin,
        "actor": actor,
        "created_at": member.created_at,
        "public_keys": {
            "ed25519_multikey": ed25519_public_to_multikey(member.ed25519_public),
            "rsa_pem": member.rsa_public_pem,
        },
    }


def capacity_json(remaining: Remaining | None) -> dict[str, Any]:
    """``remaining`` (what is left: an integer count, or a decimal quantity as text) and
    ``capacity`` ``{remaining, total, unit, full}``; both null for a listing without one."""
    if remaining is None:
        return {"remaining": None, "capacity": None}
    data = remaining.to_json()
    return {"remaining": data["remaining"], "capacity": data}


def listing_json(view: ListingView, base_url: str, parties: ListingParties | None = None,
                 signature: ListingTrust | None = None,
                 remaining: Remaining | None = None) -> dict[str, Any]:
    """API representation of a listing, including its signed FEP-0837 object.

    ``author`` and ``community`` are ``{name, handle, actor}`` (``author.username`` is kept
    for local authors); ``signature`` is ``{verified, checked_at, key, ...}``; ``remaining``
    and ``capacity`` say what is left of it (services/capacity.py).
    """
    row = view.row
    author = {"username": row.author_username, "actor": row.author_uri,
              **(parties.author.to_json() if parties else {})}
    return {
        "id": row.id,
        "url": row.object_id,
        "author": author,
        "community": parties.community.to_json() if parties else None,
        "signature": signature.to_json() if signature else None,
        "origin": row.origin,
        "local": row.is_local,
        "kind": row.kind,
        "category": row.category,
        "status": row.status,
        "title": row.title,
        "description": row.description,
        "price": {"mode": row.price_mode, "amount": row.price_amount, "period": row.price_period},
        "location": {"name": row.location_name, "lat": row.lat, "lon": row.lon},
        "details": json.loads(row.details),
        "expires_at": row.expires_at,
        "published_at": row.published_at,
        "updated_at": row.updated_at,
        "version": row.version,
        "images": [
            {"id": i.id, "url": urls.media_url(base_url, row.id, i.filename),
             "media_type": i.media_type, "width": i.width, "height": i.height, "alt": i.alt}
            for i in view.images
        ],
        **capacity_json(remaining),
        "signed_object": view.signed_object,
    }


async def listings_json(ctx: NodeContext, views: list[ListingView]) -> list[dict[str, Any]]:
    """Several listings as the API shows them, names and signature verdicts included."""
    rows = [view.row for view in views]
    parties = await names.listing_parties(ctx, rows)
    verdicts = await trust.signature_verdicts(ctx, rows)
    left = await capacity.remaining_for(ctx, rows)
    return [listing_json(view, ctx.config.base_url, parties[view.row.id],
                         verdicts[view.row.id], left.get(view.row.id)) for view in views]


async def one_listing_json(ctx: NodeContext, view: ListingView) -> dict[str, Any]:
    """One listing as the API shows it; its stored document is verified again with the key
    its kept check names (as on its page)."""
    parties = await names.listing_parties(ctx, [view.row])
    verdict = await trust.signature_verdict(ctx, view.row)
    return listing_json(view, ctx.config.base_url, parties[view.row.id], verdict,
                        await capacity.remaining_of(ctx, view.row))


async def get_me(request: web.Request) -> web.Response:
    """``GET /api/v1/me``: the caller's member record."""
    member = await api_member(request)
    return web.json_response(member_json(member, request.app[CONTEXT].config.base_url))


async def _admin(request: web.Request) -> MemberRow:
    return await api_admin(request)


async def list_members(request: web.Request) -> web.Response:
    """``GET /api/v1/members`` (admin): every member."""
    await _admin(request)
    ctx = request.app[CONTEXT]
    rows = await member_service.list_members(ctx)
    items = [
        {**member_json(row, ctx.config.base_url), "active": row.is_active} for row in rows
    ]
    return web.json_response({"items": items})


async def create_member(request: web.Request) -> web.Response:
    """``POST /api/v1/members`` (admin): add a member with fresh keys (409 if taken)."""
    await _admin(request)
    ctx = request.app[CONTEXT]
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, dict) or not isinstance(data.get("username"), str):
        raise ValidationError("username is required", {"username": "required"})
    password = data.get("password")
    if not isinstance(password, str):
        raise ValidationError("password is required", {"password": "at least 8 characters"})
    member = await member_service.add_member(
        ctx, username=data["username"], password=password, is_admin=data.get("admin") is True,
        display_name=str(data.get("display_name", "")),
    )
    return web.json_response(member_json(member, ctx.config.base_url), status=201)


async def create_listing(request: web.Request) -> web.Response:
    """``POST /api/v1/listings``: publish a signed listing (201)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await read_json(request, ctx.config.max_body_bytes)
    view = await listing_service.create_listing(ctx, member, data)
    # The verdict kept at signing, not a second Ed25519 check of the proof this request has
    # just made (a third of the answer's CPU; issue 17 publishing at 300/s); GET re-checks.
    # Names, verdict and what is left come from what this request knows, not from three
    # more reads (tests/web/test_api_publish_answer.py: the same as GET shows).
    parties = ListingParties(names.local_member(ctx, member.username, member.display_name),
                             names.our_community(ctx))
    body = listing_json(view, ctx.config.base_url, parties, kept_verdict(view.check, None),
                        view.remaining)
    location = f"/api/v1/listings/{view.row.id}"
    return web.json_response(body, status=201, headers={"Location": location})


def _choice(query: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name) or None
    if value is not None and value not in allowed:
        message = f"{name} must be one of {', '.join(allowed)}"
        raise ValidationError(message, {name: "unknown value"})
    return value


def _near(query: dict[str, str]) -> tuple[tuple[float, float] | None, float]:
    raw = query.get("near")
    try:
        radius = float(parse_decimal(query.get("radius_km", "10"), "radius_km", max_digits=4,
                                     places=3))
    except ValidationError as exc:
        raise ValidationError("radius_km must be a number", {"radius_km": "a number"}) from exc
    if not 0 < radius <= MAX_RADIUS_KM:
        raise ValidationError("radius_km out of range", {"radius_km": f"0-{MAX_RADIUS_KM:g}"})
    if not raw:
        return None, radius
    try:
        lat_text, lon_text = raw.split(",")
        lat, lon = (float(parse_decimal(text, "near", max_digits=3, places=8))
                    for text in (lat_text, lon_text))
    except (ValueError, ValidationError) as exc:  # ValueError: not two parts
        raise ValidationError("near must be lat,lon", {"near": "e.g. 45.76,4.83"}) from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationError("near out of range", {"near": "latitude/longitude out of range"})
    return (lat, lon), radius


def search_filters(query: dict[str, str]) -> SearchFilters:
    """Validate search query parameters (shared with the HTML search page)."""
    limit = parse_optional_int(query.get("limit"), "limit", low=1, high=MAX_PAGE, default=20)
    cursor = None
    if query.get("cursor"):
        try:
            cursor = listing_service.decode_cursor(query["cursor"])
        except ValidationError as exc:
            raise ValidationError("invalid cursor", {"cursor": "use next_cursor as given"}) from exc
    near, radius = _near(query)
    text = query.get("q", "")
    if len(text) > 200:
        raise ValidationError("search text too long", {"q": "at most 200 characters"})
    return SearchFilters(
        text=text or None,
        kind=_choice(query, "kind", KINDS),
        category=_choice(query, "category", CATEGORIES),
        status=_choice(query, "status", STATUSES),
        price=_choice(query, "price", ("free", "paid")),
        near=near,
        radius_km=radius,
        limit=limit,
        cursor=cursor,
    )


async def search_listings(request: web.Request) -> web.Response:
    """``GET /api/v1/listings``: search, newest first, with a cursor for the next page."""
    await api_member(request)
    ctx = request.app[CONTEXT]
    page = await listing_service.search_listings(ctx, search_filters(dict(request.query)))
    items = await listings_json(ctx, [ListingView(row=row, images=[]) for row in page.items])
    return web.json_response({"items": items, "next_cursor": page.next_cursor})


async def get_listing(request: web.Request) -> web.Response:
    """``GET /api/v1/listings/{id}``."""
    await api_member(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    if view.row.hidden:
        raise NotFoundError("this listing was hidden by a moderator")
    return web.json_response(await one_listing_json(ctx, view))


async def patch_listing(request: web.Request) -> web.Response:
    """``PATCH /api/v1/listings/{id}``: edit (a new signed version)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    patch = await read_json(request, ctx.config.max_body_bytes)
    listing_id = request.match_info["listing_id"]
    view = await listing_service.update_listing(ctx, member, listing_id, patch)
    return web.json_response(await one_listing_json(ctx, view))


async def delete_listing(request: web.Request) -> web.Response:
    """``DELETE /api/v1/listings/{id}``: withdraw (the signed object becomes a Tombstone)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.withdraw_listing(ctx, member, request.match_info["listing_id"])
    return web.json_response(await one_listing_json(ctx, view))


async def _read_image_part(request: web.Request, cap: int) -> tuple[bytes, str]:
    if not request.content_type.startswith("multipart/"):
        raise ValidationError("send the image as multipart/form-data", {"image": "required"})
    declared = request.content_length
    if declared is not None and declared > cap + 64 * 1024:
        raise PayloadTooLargeError(f"image larger than {cap} bytes")
    reader = await request.multipart()
    data: bytes | None = None
    alt = ""
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "alt":
            alt = (await part.read(decode=True))[:1000].decode("utf-8", "replace")
        elif part.name == "image" and data is None:
            data = await _read_part_capped(part, cap)
    if data is None:
        raise ValidationError("no 'image' field in the upload", {"image": "required"})
    return data, alt


async def _read_part_capped(part: BodyPartReader, cap: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await part.read_chunk(64 * 1024):
        total += len(chunk)
        if total > cap:
            raise PayloadTooLargeError(f"image larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def add_image(request: web.Request) -> web.Response:
    """``POST /api/v1/listings/{id}/images`` (multipart field ``image``, optional ``alt``)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    listing_id = request.match_info["listing_id"]
    current = await listing_service.get_listing(ctx, listing_id)
    if current.row.author_id == member.id and len(current.images) >= ctx.config.max_images:
        raise PayloadTooLargeError(f"a listing has at most {ctx.config.max_images} images")
    async with ctx.images.admit():  # bounds the uploads held in memory at once (503)
        data, alt = await _read_image_part(request, ctx.config.max_image_bytes)
        view = await listing_service.add_image(ctx, member, listing_id, data, alt=alt)
    return web.json_response(await one_listing_json(ctx, view), status=201)


async def delete_image(request: web.Request) -> web.Response:
    """``DELETE /api/v1/listings/{id}/images/{image_id}``."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.remove_image(
        ctx, member, request.match_info["listing_id"], request.match_info["image_id"]
    )
    return web.json_response(await one_listing_json(ctx, view))


def setup_api_routes(app: web.Application) -> None:
    """Register the ``/api/v1`` routes."""
    app.router.add_get("/api/v1/me", get_me)
    app.router.add_get("/api/v1/members", list_members)
    app.router.add_post("/api/v1/members", create_member)
    app.router.add_post("/api/v1/listings", create_listing)
    app.router.add_get("/api/v1/listings", search_listings)
    app.router.add_get("/api/v1/listings/{listing_id}", get_listing)
    app.router.add_patch("/api/v1/listings/{listing_id}", patch_listing)
    app.router.add_delete("/api/v1/listings/{listing_id}", delete_listing)
    app.router.add_post("/api/v1/listings/{listing_id}/images", add_image)
    app.router.add_delete("/api/v1/listings/{listing_id}/images/{image_id}", delete_image)
