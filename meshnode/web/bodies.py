"""Reading JSON request bodies with size and nesting caps, before any parsing."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.federation.bodies import read_capped
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.translatable import Text
from meshnode.services.reputation import MAX_BUNDLE_BYTES

MAX_JSON_DEPTH = 32
# Routes whose own body limit is above the node's ``max_body_bytes`` (their handler reads
# with the same constant): middlewares that read a body first use it (``route_body_limit``).
ROUTE_BODY_LIMITS: Mapping[str, int] = MappingProxyType({
    "/api/v1/me/receipts/import": MAX_BUNDLE_BYTES,
})


async def read_json(request: web.Request, cap: int) -> Any:
    """Read and parse a JSON body with size and nesting caps (400/413 on failure)."""
    return loads_capped(await read_capped(request, cap), max_depth=MAX_JSON_DEPTH)


def route_body_limit(request: web.Request, default: int) -> int:
    """The body limit of the route ``request`` matched: its own from ``ROUTE_BODY_LIMITS``,
    else ``default`` (the node's ``max_body_bytes``). A middleware reading the body before
    the handler uses it, so it never refuses (413) what the route itself accepts; the
    handler still applies its own limit to the bytes read."""
    resource = request.match_info.route.resource
    return ROUTE_BODY_LIMITS.get(resource.canonical if resource else "", default)


# read_capped lives in federation.bodies (the inbox uses it too); re-exported for web callers.
__all__ = ["MAX_JSON_DEPTH", "read_capped", "read_json", "route_body_limit"]


def path_id(request: web.Request, name: str, missing: Text) -> int:
    """The row id a route's ``{name}`` names: ASCII digits that fit SQLite's INTEGER, else
    404 ``missing`` (``int()`` alone takes Arabic-Indic digits and ids SQLite cannot bind,
    which were a 500)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise NotFoundError(missing)
    return int(raw)
