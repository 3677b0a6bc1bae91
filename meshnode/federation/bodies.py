"""Reading request bodies with hard caps, before any parsing.

It lives in the federation layer, below ``web/``, because both the inbox and the JSON API
read bodies this way and imports only point down (README, "Architecture").
"""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import PayloadTooLargeError

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
