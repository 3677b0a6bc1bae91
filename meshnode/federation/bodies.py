"""Reading request bodies with hard caps, before any parsing.

It lives in the federation layer, below ``web/``, because both the inbox and the JSON API
read bodies this way and imports only point down (README, "Architecture").
"""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import PayloadTooLargeError

CHUNK = 64 * 1024
# A body already read (within the cap) by a middleware (web/idempotency.py hashes it).
READ_BODY = web.RequestKey("mn_read_body", bytes)


async def read_capped(request: web.Request, cap: int) -> bytes:
    """Read the whole body, refusing (413) anything over ``cap`` bytes without buffering it.

    Read once per request: a second call (the handler after a middleware) gets the same bytes.
    """
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
        if request.content.at_eof():  # no second read just to learn the body ended
            break
    request[READ_BODY] = body = b"".join(chunks)
    return body
