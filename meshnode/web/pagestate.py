"""What the members' pages share, made at start: caches, catalogues, throttle, static files.

The pages themselves are imported on their first request (``web/lazyroutes.py``); what they
share lives in the app from the start, so a page imported later finds it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from meshnode.protocol.listings import CATEGORIES, KINDS, STATUSES
from meshnode.services.places import PlaceCache
from meshnode.services.ratelimit import LoginThrottle
from meshnode.web.appkeys import (
    CARDS,
    CONFIG,
    FRAGMENTS,
    I18N,
    LOGIN_THROTTLE,
    PLACES,
    PUBLIC_MAP,
    SEARCH_OPTIONS,
    TEMPLATES,
    PublicMapCache,
)
from meshnode.web.browser import render
from meshnode.web.cards import CardCache
from meshnode.web.errors import HTML_ERRORS
from meshnode.web.fragments import FragmentCache
from meshnode.web.i18n import I18n
from meshnode.web.pagecache import PAGE_CACHE, PageCache
from meshnode.web.pages.forms import CATEGORY_LABELS, KIND_LABELS, STATUS_LABELS, UNIT_LABELS
from meshnode.web.search_form import SearchOptions
from meshnode.web.templating import Templates

# A plain path: ``importlib.resources.files`` would import zipfile for a package that is never
# zipped (the templates and catalogues are read from the same directory).
STATIC_DIR = Path(__file__).resolve().parent / "static"


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A friendly page for 4xx/5xx answers to browsers (the JSON API keeps JSON bodies)."""
    return await render(request, "error.html", {"status": status, "message": message},
                        status=status)


def setup_page_state(app: web.Application) -> None:
    """Templates, catalogues, caches and static files: what every page finds in the app."""
    config = app[CONFIG]
    app[TEMPLATES] = Templates()  # Jinja2 is imported on the first page (issue 17)
    app[PAGE_CACHE] = PageCache(config.page_cache_seconds)
    app[I18N] = I18n.build(
        default=config.default_locale, timezone=config.timezone,
        symbol=config.currency.symbol, decimals=config.currency.decimals,
    )
    app[LOGIN_THROTTLE] = LoginThrottle()
    app[PLACES] = PlaceCache()
    app[FRAGMENTS] = FragmentCache()
    app[SEARCH_OPTIONS] = SearchOptions({
        "kind": (KINDS, KIND_LABELS), "category": (CATEGORIES, CATEGORY_LABELS),
        "status": (STATUSES, STATUS_LABELS),
    })
    app[CARDS] = CardCache({
        "category_labels": CATEGORY_LABELS, "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS, "unit_labels": UNIT_LABELS,
    })
    app[HTML_ERRORS] = error_page
    app[PUBLIC_MAP] = PublicMapCache()
    app.router.add_static("/static", STATIC_DIR, append_version=False)
