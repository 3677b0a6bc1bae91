"""The HTTP floor of ingest: aiohttp alone, with a handler that reads the body and answers 202.

Run by ``bench_federation.py --ingest`` as ``python -m scripts.http_floor PORT`` and sent the
same signed requests as the node, from the same client: the CPU this process spends per
request is what aiohttp's request handling, the event loop and the sockets cost with none
of the node's work (no middleware, no checks, no database). It is part of the node's
overhead that no change to the node's own code can remove (issue 17's ingest budget).
"""

from __future__ import annotations

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    """Read the whole body, as the inbox does, and answer 202."""
    await request.read()
    return web.Response(status=202)


async def healthz(_request: web.Request) -> web.Response:
    """Answer 200 once serving (``tests.nodeproc.wait_healthy``)."""
    return web.Response(text="ok")


def main(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until terminated (no access log, as the node runs)."""
    app = web.Application()
    app.router.add_post("/inbox", accept)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
