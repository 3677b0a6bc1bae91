"""Typed application state keys (aiohttp ``web.AppKey``).

``CONTEXT`` is defined in ``federation.state`` (both layers read it) and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from meshnode.config import Config
from meshnode.federation.state import CONTEXT
from meshnode.services.places import PlaceCache
from meshnode.services.ratelimit import LoginThrottle
from meshnode.web.cards import CardCache
from meshnode.web.fragments import FragmentCache
from meshnode.web.i18n import I18n
from meshnode.web.search_form import SearchOptions
from meshnode.web.templating import Templates

if TYPE_CHECKING:
    from meshnode.services.network_map import NetworkMap

CONFIG = web.AppKey("config", Config)

# Members' web UI (web/pages): compiled catalogues and the login throttle.
I18N = web.AppKey("i18n", I18n)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
CARDS = web.AppKey("cards", CardCache)
# The search form's known places, read again only after a commit (services/places.py).
PLACES = web.AppKey("places", PlaceCache)
# Deal cards and wallet lines, keyed by what they show (web/fragments.py).
FRAGMENTS = web.AppKey("fragments", FragmentCache)
# The search form's option lists per language (web/pages/search_form.py).
SEARCH_OPTIONS = web.AppKey("search_options", SearchOptions)
# The pages' Jinja2 environment, made on the first render (web/templating.py).
TEMPLATES = web.AppKey("templates", Templates)

PUBLIC_MAP_SECONDS = 60.0  # the public map is rebuilt at most this often


@dataclass
class PublicMapCache:
    """The last public map built and when (event-loop time): anonymous visitors cannot make
    the node run the map's queries more than once a minute (web/pages/network_map.py)."""

    built_at: float = -PUBLIC_MAP_SECONDS
    data: NetworkMap | None = None


PUBLIC_MAP = web.AppKey("public_network_map", PublicMapCache)

__all__ = ["CARDS", "CONFIG", "CONTEXT", "FRAGMENTS", "I18N", "LOGIN_THROTTLE", "PLACES",
           "PUBLIC_MAP", "PUBLIC_MAP_SECONDS", "SEARCH_OPTIONS", "TEMPLATES", "PublicMapCache"]
