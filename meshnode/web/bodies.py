"""Reading request bodies with hard caps, before any parsing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import PayloadTooLargeError
from meshnode.protocol.jsonparse import loads_capped

MAX_JSON_DEPTH = 32
CHUNK = 64 * 1024


async def read_capped(request: web.Request, cap: int) -> bytes:
    """Read the whole body, refusing (413) anything over ``cap`` bytes without buffering it."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise PayloadTooLargeError(f"request body over the {cap}-byte limit")
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.read(CHUNK):
        total += len(chunk)
        if total > cap:
            raise PayloadTooLargeError(f"request body over the {cap}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, cap: int) -> Any:
    """Read and parse a JSON body with size and nesting caps (400/413 on failure)."""
    return loads_capped(await read_capped(request, cap), max_depth=MAX_JSON_DEPTH)
