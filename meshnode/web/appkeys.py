"""Typed application state keys (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from meshnode.config import Config
from meshnode.services.context import NodeContext
from meshnode.services.ratelimit import LoginThrottle
from meshnode.web.cards import CardCache
from meshnode.web.i18n import I18n

CONFIG = web.AppKey("config", Config)
CONTEXT = web.AppKey("context", NodeContext)

# Members' web UI (web/pages): compiled catalogues and the login throttle.
I18N = web.AppKey("i18n", I18n)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
CARDS = web.AppKey("cards", CardCache)
