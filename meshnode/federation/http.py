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
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from meshnode.protocol.errors import MalformedJSONError
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.vocab import ACTIVITY_JSON

FETCH_ACCEPT = f"{ACTIVITY_JSON}, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_DEPTH = 32
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
USER_AGENT = "meshnode/0.1 (+ActivityPub)"
MAX_ETAG = 128  # a peer's ETag is stored to be sent back: longer ones are not kept


class FetchError(Exception):
    """A remote fetch failed (network, status, size, body or a refused address)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# Never contacted, whatever ``allow_private_addresses`` says: link-local (where clouds serve
# instance metadata, 169.254.169.254), "this network", multicast, broadcast, and the two
# well-known metadata addresses outside link-local (Alibaba, AWS over IPv6).
ALWAYS_REFUSED = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "100.100.100.200/32",
    "::/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128",
))
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return address


def address_refusal(address: Address, *, allow_private: bool) -> str | None:
    """Why the node must not contact ``address``, or None when it may."""
    address = _plain(address)
    if any(address in net for net in ALWAYS_REFUSED):
        return f"refusing link-local, multicast or metadata address {address}"
    if not allow_private and not address.is_global:
        return f"refusing private address {address}"
    return None


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass
class UrlGuard:
    """Decides which URLs and addresses the node may contact."""

    allow_private: bool = True
    trusted_hosts: set[str] = field(default_factory=set)

    def refusal(self, address: Address, host: str) -> str | None:
        """Why ``address`` (which ``host`` resolved to) is refused, or None."""
        allow = self.allow_private or host.lower() in self.trusted_hosts
        return address_refusal(address, allow_private=allow)

    async def check(self, url: str) -> None:
        """Raise FetchError for a URL the node must not contact.

        Names are checked again when connecting (``GuardedResolver``), so a name that
        resolves differently the second time (DNS rebinding) is still refused.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"refusing non-http(s) URL {url[:200]!r}")
        host = parts.hostname.lower()
        literal = _literal_address(host)
        if literal is not None:
            if (reason := self.refusal(literal, host)) is not None:
                raise FetchError(reason)
            return
        if self.allow_private or host in self.trusted_hosts:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from exc
        for info in infos:
            if (reason := self.refusal(ipaddress.ip_address(info[4][0]), host)) is not None:
                raise FetchError(f"{reason} for {host}")


class GuardedResolver(AbstractResolver):
    """The client's DNS resolver, keeping only addresses the guard allows (at connect time)."""

    def __init__(self, guard: UrlGuard, inner: AbstractResolver | None = None) -> None:
        self.guard = guard
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        """Resolve ``host``; OSError when every address it has is refused."""
        results = await self.inner.resolve(host, port, family)
        allowed = [result for result in results
                   if self.guard.refusal(ipaddress.ip_address(result["host"]), host) is None]
        if not allowed:
            raise OSError(f"every address of {host} is refused")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self.inner.close()


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


@dataclass(frozen=True)
class Fetched:
    """A GET's JSON document (None when a conditional GET answered 304 Not Modified) and the
    ETag it came with (None when absent or longer than ``MAX_ETAG``: a peer's header)."""

    document: Any
    etag: str | None
    modified: bool = True


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
        return (await self._get(url, accept=accept, etag=None)).document

    async def get_json_if_changed(self, url: str, etag: str | None, *,
                                  accept: str = FETCH_ACCEPT) -> Fetched:
        """A conditional GET (``If-None-Match: etag``, RFC 9110 §13.1.2): a 304 is
        ``Fetched(None, etag, modified=False)``, no body read; FetchError on any failure."""
        return await self._get(url, accept=accept, etag=etag)

    async def _get(self, url: str, *, accept: str, etag: str | None) -> Fetched:
        await self.guard.check(url)
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if etag is not None:
            headers["If-None-Match"] = etag
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False,
                                        timeout=TIMEOUT) as response:
                if response.status == 304 and etag is not None:
                    return Fetched(None, etag, modified=False)
                if response.status != 200:
                    raise FetchError(f"GET {url} answered {response.status}", response.status)
                data = await self._read_capped(response)
                tag = response.headers.get("ETag")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"GET {url} failed: {exc!r}") from exc
        try:
            document = loads_capped(data, max_depth=MAX_DEPTH)
        except (MalformedJSONError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FetchError(f"GET {url}: invalid JSON ({exc})") from exc
        return Fetched(document, tag if tag is not None and len(tag) <= MAX_ETAG else None)

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
