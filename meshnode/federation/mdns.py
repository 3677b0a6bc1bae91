"""mDNS / DNS-SD on zeroconf: this node's advert, the browser and the resolvers.

Imported only when ``discovery.policy`` is not ``off`` (:mod:`meshnode.federation.discovery`
opens it in the app's ``cleanup_ctx``): python-zeroconf is about 4 MB of resident memory
that a node without LAN discovery does not need. Adverts are hints: a resolved advert is
parsed strictly (:mod:`meshnode.protocol.discovery`) and recorded as ``discovered``.

Flood resistance: browser callbacks only put instance names into a bounded, deduplicated
queue (:class:`ResolutionQueue`); a fixed number of resolver tasks drain it, each
resolution first taking a token from a :class:`~meshnode.protocol.discovery.TokenBucket`,
and the neighbour table itself is capped (:data:`MAX_NEIGHBOURS`). So hundreds of bogus
adverts cost bounded memory, bounded mDNS queries and bounded database rows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from meshnode import urls
from meshnode.federation.tasks import bounded, cancel_and_wait
from meshnode.protocol.discovery import (
    SERVICE_TYPE,
    Advert,
    AdvertError,
    TokenBucket,
    build_txt,
    instance_name,
    parse_advert,
    select_addresses,
    short_fingerprint,
)
from meshnode.protocol.errors import ProtocolError
from meshnode.services import neighbours
from meshnode.services.context import NodeContext
from meshnode.services.neighbours import SeenAdvert

log = logging.getLogger(__name__)

RESOLVE_QUEUE_MAX = 256  # names waiting for resolution; more are dropped (and counted)
RESOLVE_WORKERS = 2
RESOLVE_RATE = 20.0  # resolutions per second, sustained
RESOLVE_BURST = 20
RESOLVE_TIMEOUT_MS = 1500
MAX_NEIGHBOURS = 256  # rows in the neighbour table; adverts beyond that are ignored
MAX_ADDRESSES = 8


@dataclass
class DiscoveryStats:
    """Counters exposed for tests, the benchmark and (later) the admin page."""

    events: int = 0
    queued: int = 0
    dropped: int = 0
    resolved: int = 0
    queries: int = 0  # resolutions that had to query the network (rate-limited)
    unresolved: int = 0
    bad_adverts: int = 0
    ignored_self: int = 0
    table_full: int = 0
    goodbyes: int = 0


class ResolutionQueue:
    """Instance names awaiting resolution: bounded, deduplicated, FIFO.

    ``put`` is called from zeroconf's browser callback, so it never blocks or awaits; a
    name already waiting is not queued twice (an advert repeated 100 times costs one
    resolution), and when ``maxsize`` names wait, new ones are dropped.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._names: OrderedDict[str, ServiceStateChange] = OrderedDict()
        self._ready = asyncio.Event()
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._names)

    def put(self, name: str, change: ServiceStateChange) -> bool:
        """Queue ``name``; the latest change wins. False when the queue is full."""
        if name in self._names:
            self._names[name] = change
            return True
        if len(self._names) >= self.maxsize:
            return False
        self._names[name] = change
        self.high_water = max(self.high_water, len(self._names))
        self._ready.set()
        return True

    async def get(self) -> tuple[str, ServiceStateChange]:
        """Wait for and remove the oldest name."""
        while not self._names:
            self._ready.clear()
            await self._ready.wait()
        return self._names.popitem(last=False)


def open_zeroconf(addresses: tuple[str, ...]) -> AsyncZeroconf:
    """An AsyncZeroconf bound to ``addresses`` (works on 127.0.0.1 for single-host tests)."""
    version = (
        IPVersion.V4Only
        if all(ipaddress.ip_address(a).version == 4 for a in addresses)
        else IPVersion.All
    )
    return AsyncZeroconf(interfaces=list(addresses), ip_version=version)


class Discovery:
    """This node's advert, browser and resolvers (one per app, on one AsyncZeroconf)."""

    def __init__(
        self,
        ctx: NodeContext,
        aiozc: AsyncZeroconf,
        addresses: tuple[str, ...],
        *,
        on_discovered: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.aiozc = aiozc
        self.addresses = addresses
        self.port = ctx.config.port
        self.stats = DiscoveryStats()
        self.queue = ResolutionQueue(RESOLVE_QUEUE_MAX)
        self.registered_name: str | None = None
        self._on_discovered = on_discovered
        self._monotonic = monotonic
        self._bucket = TokenBucket(RESOLVE_RATE, RESOLVE_BURST, monotonic())
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._registered: asyncio.Task[None] | None = None

    @property
    def advert(self) -> Advert:
        """What this node announces about itself."""
        config = self.ctx.config
        actor = urls.community_actor(config.base_url, config.handle)
        path = actor.removeprefix(config.base_url)
        return Advert(self.ctx.identity.ed25519_public, path, config.name)

    @property
    def own_origins(self) -> frozenset[str]:
        """Origins a challenge to this node may name: advertised addresses and the public URL."""
        host_origins = {
            f"http://{f'[{a}]' if ':' in a else a}:{self.port}" for a in self.addresses
        }
        return frozenset({*host_origins, self.ctx.config.base_url})

    async def async_start(self) -> None:
        """Start browsing and resolving; registration (probing takes ~1 s) runs alongside."""
        self._tasks = [
            asyncio.create_task(self._resolve_forever(), name=f"mdns-resolver-{i}")
            for i in range(RESOLVE_WORKERS)
        ]
        self._registered = asyncio.create_task(self._async_register(), name="mdns-register")
        self._browser = AsyncServiceBrowser(
            self.aiozc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_state_change]
        )

    async def _async_register(self) -> None:
        advert = self.advert
        fp = short_fingerprint(advert.public_key).replace("-", "").lower()
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{instance_name(advert.community_name, advert.public_key)}.{SERVICE_TYPE}",
            port=self.port,
            properties=build_txt(advert),
            server=f"meshnode-{fp}.local.",
            addresses=[ipaddress.ip_address(a).packed for a in self.addresses],
        )
        announced = await self.aiozc.async_register_service(info, allow_name_change=True)
        self._info = info
        # A conflict renames us ("… (ABCD-EFGH)-2"): remember the name actually registered.
        self.registered_name = info.name
        # zeroconf sends the announcements from a task of its own: awaiting it here makes it
        # ours, so cancelling this task at shutdown cancels it too instead of leaking it.
        await announced

    async def async_wait_registered(self) -> str:
        """Wait until our service is registered and announced; returns the registered name."""
        if self._registered is not None:
            await asyncio.shield(self._registered)
        assert self.registered_name is not None
        return self.registered_name

    async def async_stop(self, *, also: tuple[asyncio.Task[None] | None, ...] = ()) -> None:
        """Stop browsing, cancel and await our tasks (and ``also``), then say goodbye.

        Each task is cancelled and awaited once, with a bound; cancellation of the caller
        propagates (the zeroconf close that follows in ``discovery_context`` still sends the
        goodbyes of whatever stays registered).
        """
        try:
            if self._browser is not None:
                await bounded(self._browser.async_cancel(), what="mDNS browser cancel")
        finally:
            tasks, self._tasks = [*self._tasks, self._registered, *also], []
            self._registered = None
            await cancel_and_wait(tasks, what="mDNS discovery")
        if self._info is not None:
            info, self._info = self._info, None
            goodbye = await self.aiozc.async_unregister_service(info)
            await bounded(goodbye, what="mDNS goodbye")

    def _on_service_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        # Runs in the event loop from zeroconf's browser: never block or await here.
        self.stats.events += 1
        if name == self.registered_name:
            self.stats.ignored_self += 1
            return
        if self.queue.put(name, state_change):
            self.stats.queued += 1
        else:
            self.stats.dropped += 1

    async def _resolve_forever(self) -> None:
        while True:
            name, change = await self.queue.get()
            try:
                await self.async_handle(name, change)
            except (ProtocolError, OSError) as exc:  # keep resolving the others
                log.warning("mDNS: %s: %s", name[:80], exc)

    async def _async_take_token(self) -> None:
        delay = self._bucket.reserve_at(self._monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    async def async_handle(self, name: str, change: ServiceStateChange) -> None:
        """Process one browser event: a goodbye, or resolve and record the advert."""
        if change is ServiceStateChange.Removed:
            self.stats.goodbyes += 1
            await neighbours.record_goodbye(self.ctx, name)
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        # Records usually arrive with the PTR (RFC 6763 §12), so most resolutions are cache
        # reads; only those that must query the network spend a token.
        if not info.load_from_cache(self.aiozc.zeroconf):
            await self._async_take_token()
            self.stats.queries += 1
            if not await info.async_request(self.aiozc.zeroconf, RESOLVE_TIMEOUT_MS):
                self.stats.unresolved += 1
                return
        self.stats.resolved += 1
        seen = self._seen(name, info)
        if seen is None:
            return
        if await neighbours.record_advert(self.ctx, seen, max_neighbours=MAX_NEIGHBOURS) is None:
            self.stats.table_full += 1
            return
        self._on_discovered()

    def _seen(self, name: str, info: AsyncServiceInfo) -> SeenAdvert | None:
        try:
            advert = parse_advert(info.text or b"")
        except AdvertError as exc:
            self.stats.bad_adverts += 1
            log.info("mDNS: ignoring %s: %s", name[:80], exc)
            return None
        if advert.public_key == self.ctx.identity.ed25519_public:
            self.stats.ignored_self += 1
            return None
        addresses = select_addresses(info.parsed_scoped_addresses())[:MAX_ADDRESSES]
        if not addresses or info.port is None or not 0 < info.port < 65536:
            self.stats.bad_adverts += 1
            return None
        return SeenAdvert(name, advert, addresses, info.port)
