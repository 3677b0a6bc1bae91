"""Typed application state keys (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from meshnode.config import Config
from meshnode.services.context import NodeContext

CONFIG = web.AppKey("config", Config)
CONTEXT = web.AppKey("context", NodeContext)
