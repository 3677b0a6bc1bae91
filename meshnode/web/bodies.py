"""Reading request bodies with hard caps, before any parsing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import PayloadTooLargeError
from meshnode.protocol.jsonparse import loads_capped

MAX_JSON_DEPTH = 32
CHUNK = 64 * 1024
# A body already read (within the cap) by a middleware (web/idempotency.py hashes it).
READ_BODY = web.RequestKey("mn_read_body", bytes)


async def read_capped(request: web.Request, cap: int) -> bytes:
    """Read the whole body, refusing (413) anything over ``cap`` bytes without buffering it."""
    if READ_BODY in request:
        body = request[READ_BODY]
        if len(body) > cap:
            raise PayloadTooLargeError(f"request body over the {cap}-byte limit")
        return body
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
    request[READ_BODY] = body = b"".join(chunks)
    return body


async def read_json(request: web.Request, cap: int) -> Any:
    """Read and parse a JSON body with size and nesting caps (400/413 on failure)."""
    return loads_capped(await read_capped(request, cap), max_depth=MAX_JSON_DEPTH)
