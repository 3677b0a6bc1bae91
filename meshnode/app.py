"""The application factory: ``create_app(config)`` builds the node's aiohttp application.

Resources (the store with the node's keys; later the HTTP client session and zeroconf) are
opened and closed in ``cleanup_ctx``; nothing happens at import time. Routes come from the
generated table ``web/routes_table.py``; their modules are imported on first use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web

from meshnode.config import Config
from meshnode.federation.discovery import discovery_context
from meshnode.federation.mail import mail_context
from meshnode.federation.runtime import federation_context
from meshnode.services import capacity
from meshnode.services.context import NodeContext, utc_now
from meshnode.services.listings import sweep_orphan_media
from meshnode.services.memory import trim_context
from meshnode.web.appkeys import CONFIG, CONTEXT
from meshnode.web.connections import CONNECTIONS, ConnectionGuard, connection_middleware
from meshnode.web.errors import STORAGE_HEALTH, error_middleware
from meshnode.web.idempotency import IDEMPOTENCY, IdempotencyState, idempotency_middleware
from meshnode.web.idle import idle_sweep_context
from meshnode.web.lazyroutes import register_routes
from meshnode.web.mail import renderer_for
from meshnode.web.pagecache import page_cache_middleware
from meshnode.web.pagestate import setup_page_state
from meshnode.web.routes_table import ROUTES
from meshnode.web.security import security_headers_middleware

log = logging.getLogger(__name__)

# Multipart image uploads are capped per part; this only bounds aiohttp's own buffering.
UPLOAD_OVERHEAD = 256 * 1024


def create_app(
    config: Config, *, clock: Callable[[], datetime] = utc_now, run_workers: bool = True
) -> web.Application:
    """Build the node's web application for ``config`` (the only way an app is made).

    ``run_workers=False`` leaves the federation workers to the caller (tests call
    their ``step()``).
    """
    app = web.Application(
        middlewares=[connection_middleware, security_headers_middleware, error_middleware,
                     idempotency_middleware, page_cache_middleware],
        client_max_size=max(config.max_body_bytes, config.max_image_bytes) + UPLOAD_OVERHEAD,
    )
    app[CONFIG] = config
    app[CONNECTIONS] = ConnectionGuard(config)
    app[IDEMPOTENCY] = IdempotencyState()

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        ctx = await NodeContext.open(config, clock=clock)
        app[CONTEXT] = ctx
        app[STORAGE_HEALTH] = ctx.store.health
        try:
            if removed := await sweep_orphan_media(ctx):
                log.warning("removed %d media files no listing uses (an upload cut short)",
                            removed)
            if published := await capacity.publish_missing(ctx):
                log.info("published what is left of %d listings to peers", published)
            yield
        finally:  # also when the loop closes this generator (GeneratorExit): else the
            await ctx.close()  # store's threads outlive the loop and the process never exits

    app.cleanup_ctx.append(node_context)
    app.cleanup_ctx.append(federation_context(run_workers=run_workers))
    app.cleanup_ctx.append(discovery_context(run_workers=run_workers))
    app.cleanup_ctx.append(mail_context(renderer_for, run_workers=run_workers))
    app.cleanup_ctx.append(idle_sweep_context(run_workers=run_workers))
    app.cleanup_ctx.append(trim_context(run_workers=run_workers))  # last: all is open
    setup_page_state(app)
    # Every route, its module imported on its first request (web/lazyroutes.py, issue 17).
    register_routes(app, ROUTES)
    return app
