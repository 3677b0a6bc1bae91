"""The guarded HTTP client: every outgoing fetch and POST goes through here.

Only http(s), short timeouts, capped response sizes, no redirects (an actor's ``id`` must
equal the URL it was fetched from anyway). Private and loopback addresses: community
nodes live on LANs (a Raspberry Pi at 192.168.x.y), so a fresh node allows them
(``federation.allow_private_addresses = true``); an admin who exposes a node to the public
internet can turn that off, and then only hosts of peers an admin added are allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from meshnode.protocol.errors import MalformedJSONError
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.vocab import ACTIVITY_JSON

FETCH_ACCEPT = f"{ACTIVITY_JSON}, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_DEPTH = 32
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
USER_AGENT = "meshnode/0.1 (+ActivityPub)"


class FetchError(Exception):
    """A remote fetch failed (network, status, size, body or a refused address)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class UrlGuard:
    """Decides which URLs the node may contact."""

    allow_private: bool = True
    trusted_hosts: set[str] = field(default_factory=set)

    async def check(self, url: str) -> None:
        """Raise FetchError for a URL the node must not contact."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"refusing non-http(s) URL {url[:200]!r}")
        host = parts.hostname.lower()
        if self.allow_private or host in self.trusted_hosts:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise FetchError(f"refusing private address {address} for {host}")


def error_problem(raw: bytes) -> str | None:
    """``code: message`` of a meshnode-style JSON error body, for the admin's delivery status."""
    try:
        data = json.loads(raw[:8192])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return None
    message = data.get("message")
    text = f"{data['error']}: {message}" if isinstance(message, str) else data["error"]
    return text[:250]


@dataclass(frozen=True)
class PostResult:
    """Status and the headers a delivery cares about."""

    status: int
    retry_after: str | None
    problem: str | None = None  # "code: message" of a JSON error body (e.g. clock_skew)


class FederationClient:
    """One pooled aiohttp session, opened in the app's ``cleanup_ctx``."""

    def __init__(self, session: aiohttp.ClientSession, guard: UrlGuard) -> None:
        self.session = session
        self.guard = guard

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > MAX_RESPONSE_BYTES:
            raise FetchError(f"response over {MAX_RESPONSE_BYTES} bytes")
        data = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > MAX_RESPONSE_BYTES:
                raise FetchError(f"response over {MAX_RESPONSE_BYTES} bytes")
        return bytes(data)

    async def get_json(self, url: str, *, accept: str = FETCH_ACCEPT) -> Any:
        """GET a JSON document with caps; FetchError on any failure."""
        await self.guard.check(url)
        try:
            async with self.session.get(
                url, headers={"Accept": accept, "User-Agent": USER_AGENT},
                allow_redirects=False, timeout=TIMEOUT,
            ) as response:
                if response.status != 200:
                    raise FetchError(f"GET {url} answered {response.status}", response.status)
                data = await self._read_capped(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"GET {url} failed: {exc!r}") from exc
        try:
            return loads_capped(data, max_depth=MAX_DEPTH)
        except (MalformedJSONError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FetchError(f"GET {url}: invalid JSON ({exc})") from exc

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """POST a signed body; network errors raise FetchError (status None)."""
        await self.guard.check(url)
        try:
            async with self.session.post(
                url, data=body, headers={**headers, "User-Agent": USER_AGENT},
                allow_redirects=False, timeout=TIMEOUT,
            ) as response:
                raw = await response.content.read(64 * 1024)
                return PostResult(response.status, response.headers.get("Retry-After"),
                                  error_problem(raw) if response.status >= 400 else None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"POST {url} failed: {exc!r}") from exc
