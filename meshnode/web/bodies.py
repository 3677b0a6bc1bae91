"""Reading JSON request bodies with size and nesting caps, before any parsing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.federation.bodies import read_capped
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.translatable import Text

MAX_JSON_DEPTH = 32


async def read_json(request: web.Request, cap: int) -> Any:
    """Read and parse a JSON body with size and nesting caps (400/413 on failure)."""
    return loads_capped(await read_capped(request, cap), max_depth=MAX_JSON_DEPTH)


# read_capped lives in federation.bodies (the inbox uses it too); re-exported for web callers.
__all__ = ["MAX_JSON_DEPTH", "read_capped", "read_json"]


def path_id(request: web.Request, name: str, missing: Text) -> int:
    """The row id a route's ``{name}`` names: ASCII digits that fit SQLite's INTEGER, else
    404 ``missing`` (``int()`` alone takes Arabic-Indic digits and ids SQLite cannot bind,
    which were a 500)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise NotFoundError(missing)
    return int(raw)
