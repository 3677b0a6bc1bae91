"""The members' web UI: server-rendered pages (Jinja2, autoescaped), French and English."""

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
    SEARCH_OPTIONS,
    TEMPLATES,
)
from meshnode.web.browser import render
from meshnode.web.cards import CardCache
from meshnode.web.errors import HTML_ERRORS
from meshnode.web.fragments import FragmentCache
from meshnode.web.i18n import I18n
from meshnode.web.pagecache import PAGE_CACHE, PageCache
from meshnode.web.pages.admin import setup_admin_pages
from meshnode.web.pages.alerts import setup_alert_pages
from meshnode.web.pages.auth import setup_auth_pages
from meshnode.web.pages.blocks_admin import setup_block_admin_pages
from meshnode.web.pages.booking import setup_booking_pages
from meshnode.web.pages.calendar import setup_calendar_pages
from meshnode.web.pages.deals import setup_deal_pages
from meshnode.web.pages.forms import CATEGORY_LABELS, KIND_LABELS, STATUS_LABELS, UNIT_LABELS
from meshnode.web.pages.language import setup_language_pages
from meshnode.web.pages.ledger_admin import setup_ledger_admin_pages
from meshnode.web.pages.listings import setup_listing_pages
from meshnode.web.pages.messages import setup_message_pages
from meshnode.web.pages.neighbours import setup_neighbour_pages
from meshnode.web.pages.network_map import setup_network_map_pages
from meshnode.web.pages.notifications import setup_notification_pages
from meshnode.web.pages.peers_admin import setup_peer_admin_pages
from meshnode.web.pages.profiles import setup_profile_pages
from meshnode.web.pages.queue import setup_queue_pages
from meshnode.web.pages.remote_pay import setup_remote_pay_pages
from meshnode.web.pages.trustlines_admin import setup_trustline_admin_pages
from meshnode.web.pages.wallet import setup_wallet_pages
from meshnode.web.search_form import SearchOptions
from meshnode.web.templating import Templates

# A plain path: ``importlib.resources.files`` would import zipfile for a package that is never
# zipped (the templates and catalogues are read from the same directory).
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A friendly page for 4xx/5xx answers to browsers (the JSON API keeps JSON bodies)."""
    return await render(request, "error.html", {"status": status, "message": message},
                        status=status)


def setup_pages(app: web.Application) -> None:
    """Templates, catalogues, static files and every HTML route."""
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
    app.router.add_static("/static", STATIC_DIR, append_version=False)
    setup_listing_pages(app)
    setup_auth_pages(app)
    setup_message_pages(app)
    setup_notification_pages(app)
    setup_profile_pages(app)
    setup_admin_pages(app)
    setup_wallet_pages(app)
    setup_ledger_admin_pages(app)
    setup_calendar_pages(app)  # before the deal pages: /deals/{id}.ics
    setup_deal_pages(app)
    setup_booking_pages(app)
    setup_queue_pages(app)
    setup_peer_admin_pages(app)
    setup_block_admin_pages(app)
    setup_trustline_admin_pages(app)
    setup_remote_pay_pages(app)
    setup_neighbour_pages(app)
    setup_network_map_pages(app)
    setup_language_pages(app)
    setup_alert_pages(app)
