"""Every route of the node, as written by each area's ``setup_*`` function.

``create_app`` does not call this at start: it registers the same routes from the generated
``web/routes_table.py`` with lazy handlers (``web/lazyroutes.py``), so a page or API module is
imported on its first request. This module is what ``scripts/update_routes.py`` records and
what ``tests/web/test_lazy_routes.py`` compares the table with: keep the order (aiohttp
matches routes in the order they were added).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from meshnode.config import Config
from meshnode.federation.actors import setup_federation_routes
from meshnode.federation.iou import setup_iou_federation_routes
from meshnode.web.alerts_api import setup_alert_routes
from meshnode.web.api import setup_api_routes
from meshnode.web.appkeys import CONFIG
from meshnode.web.blocklists_api import setup_blocklist_routes
from meshnode.web.deals_api import setup_deal_routes
from meshnode.web.discovery_api import setup_discovery_routes
from meshnode.web.feed import setup_feed_routes
from meshnode.web.iou_api import setup_iou_routes
from meshnode.web.lazyroutes import RouteEntry, record_routes
from meshnode.web.ledger_api import setup_ledger_routes
from meshnode.web.member_data_routes import setup_member_data_routes
from meshnode.web.messages_api import setup_message_routes
from meshnode.web.moderation_api import setup_moderation_routes
from meshnode.web.notifications_api import setup_notification_routes
from meshnode.web.pages.admin import setup_admin_pages
from meshnode.web.pages.alerts import setup_alert_pages
from meshnode.web.pages.auth import setup_auth_pages
from meshnode.web.pages.blocks_admin import setup_block_admin_pages
from meshnode.web.pages.booking import setup_booking_pages
from meshnode.web.pages.calendar import setup_calendar_pages
from meshnode.web.pages.deals import setup_deal_pages
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
from meshnode.web.pagestate import setup_page_state
from meshnode.web.peers_api import setup_peer_routes
from meshnode.web.public import setup_public_routes
from meshnode.web.queue_api import setup_queue_routes
from meshnode.web.receipts_routes import setup_receipt_routes
from meshnode.web.trust_routes import setup_trust_routes

TABLE_PATH = Path(__file__).resolve().parent / "routes_table.py"


def setup_page_routes(app: web.Application) -> None:
    """Every HTML page's routes."""
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


def setup_routes(app: web.Application) -> None:
    """Every route of the node (pages, API, federation), in the order aiohttp matches them."""
    setup_page_routes(app)
    setup_public_routes(app)
    setup_api_routes(app)
    setup_trust_routes(app)
    setup_ledger_routes(app)
    setup_message_routes(app)
    setup_moderation_routes(app)
    setup_blocklist_routes(app)
    setup_notification_routes(app)
    setup_alert_routes(app)
    setup_feed_routes(app)
    setup_deal_routes(app)
    setup_queue_routes(app)
    setup_receipt_routes(app)
    setup_member_data_routes(app)
    setup_federation_routes(app)
    setup_peer_routes(app)
    setup_discovery_routes(app)
    setup_iou_routes(app)
    setup_iou_federation_routes(app)


def current_table() -> list[RouteEntry]:
    """The route table the ``setup_*`` functions make now (on a throwaway app)."""
    app = web.Application()
    app[CONFIG] = Config(data_dir=Path("unused"), name="routes", handle="routes",
                         public_url="http://127.0.0.1")
    setup_page_state(app)
    return record_routes(app, setup_routes)
