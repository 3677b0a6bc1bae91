"""LAN discovery over mDNS / DNS-SD: advertise this node, browse for others, resolve them.

One zeroconf instance per node (:mod:`meshnode.federation.mdns`), opened and closed in the
app's ``cleanup_ctx`` only when ``discovery.policy`` is not ``off``; with ``off`` zeroconf
is never even imported. Adverts are hints: the
:class:`~meshnode.federation.neighbour_verifier.NeighbourVerifier` makes the node prove it
holds the advertised key before anything else happens.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.federation import peering
from meshnode.federation.neighbour_verifier import NeighbourVerifier, open_verifier_http
from meshnode.federation.state import CONTEXT
from meshnode.federation.tasks import bounded
from meshnode.federation.zeroconf_source import load_zeroconf
from meshnode.protocol.discovery import select_addresses
from meshnode.services import neighbours
from meshnode.services.context import NodeContext

if TYPE_CHECKING:
    from meshnode.federation.mdns import Discovery

log = logging.getLogger(__name__)


def _specific(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def advertised_addresses(interfaces: tuple[str, ...], host: str) -> tuple[str, ...]:
    """Addresses this node announces: configured interfaces, else the bind host, else all."""
    if interfaces:
        return interfaces
    if _specific(host):
        return (host,)
    import ifaddr  # here: zeroconf needs it anyway, a node with discovery off never does

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4]
    return select_addresses([str(address) for address in found]) or ("127.0.0.1",)


async def request_peering(ctx: NodeContext, actor_url: str) -> None:
    """Peer with a verified neighbour: the hand-over from discovery to federation.

    Called by the verifier in policy ``auto`` (or when an admin approves a neighbour under
    ``approve``), only after the neighbour proved it holds the advertised key. It records the
    intent (status ``peering_requested``) and asks federation to follow the neighbour's
    community actor; the neighbour's own ``peering_policy`` decides acceptance. It never
    creates currency trust lines: those stay a deliberate admin decision.
    """
    await neighbours.record_peering_requested(ctx, actor_url)
    try:
        await peering.add_peer(ctx, actor_url)
    except ConflictError:
        log.info("not peering with %s: an admin blocked that node", actor_url)


@dataclass
class DiscoveryRuntime:
    """What the app keeps while discovery runs (tests reach workers through it)."""

    discovery: Discovery
    verifier: NeighbourVerifier


DISCOVERY = web.AppKey("discovery", DiscoveryRuntime)


def discovery_context(
    *, run_workers: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The ``cleanup_ctx`` entry: zeroconf, HTTP session and the verifier loop.

    With ``run_workers=False`` the verifier is not looped: tests call ``verifier.step()``.
    Browsing and resolving always run (they are zeroconf's own event handling).
    """

    async def context(app: web.Application) -> AsyncIterator[None]:
        ctx = app[CONTEXT]
        if ctx.config.discovery_policy == "off":
            yield
            return
        # Imported here, not at the top: zeroconf costs 1.5 MB of RSS from its source (3.7
        # from its Cython build) a node without LAN discovery never needs
        # (scripts/bench_memory.py prints the import costs).
        load_zeroconf()
        from meshnode.federation.mdns import Discovery, open_zeroconf

        addresses = advertised_addresses(ctx.config.discovery_interfaces, ctx.config.host)
        try:
            aiozc = open_zeroconf(addresses)
        except OSError as exc:  # no multicast here: the node still serves, without mDNS
            log.warning("mDNS discovery disabled: cannot bind %s: %s", addresses, exc)
            yield
            return
        wake = asyncio.Event()
        try:
            async with open_verifier_http() as http:
                discovery = Discovery(ctx, aiozc, addresses, on_discovered=wake.set)
                verifier = NeighbourVerifier(ctx, http, request_peering=request_peering)
                app[DISCOVERY] = DiscoveryRuntime(discovery, verifier)
                loop: asyncio.Task[None] | None = None
                try:
                    await discovery.async_start()
                    if run_workers:
                        loop = asyncio.create_task(verifier.run_forever(wake),
                                                   name="neighbour-verifier")
                    yield
                finally:
                    # Also on GeneratorExit: the loop closes this generator itself when the
                    # app was not cleaned up before it ends.
                    await discovery.async_stop(also=(loop,))
        finally:
            # Closes the sockets even when the steps above failed or were cancelled; its own
            # goodbyes (async_unregister_all_services) cover a registration still standing.
            await bounded(aiozc.async_close(), what="mDNS zeroconf close")

    return context
