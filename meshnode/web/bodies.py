"""Reading JSON request bodies with size and nesting caps, before any parsing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.federation.bodies import read_capped
from meshnode.protocol.jsonparse import loads_capped

MAX_JSON_DEPTH = 32


async def read_json(request: web.Request, cap: int) -> Any:
    """Read and parse a JSON body with size and nesting caps (400/413 on failure)."""
    return loads_capped(await read_capped(request, cap), max_depth=MAX_JSON_DEPTH)


# read_capped lives in federation.bodies (the inbox uses it too); re-exported for web callers.
__all__ = ["MAX_JSON_DEPTH", "read_capped", "read_json"]
