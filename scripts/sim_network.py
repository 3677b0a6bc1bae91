"""N real meshnode apps in one process, over a simulated transport and a shared virtual clock.

Each node is the real ``create_app`` (store on SQLite files under a tmpfs directory, real
services, inbox, relay, catch-up and IOU code), served on its own 127.0.0.1 port with its
background loops off. The one thing replaced is the federation client's HTTP hop:
``SimClient`` wraps the node's real ``FederationClient`` and, before each request, applies the
simulated network: a node offline or on the other side of a partition, or a lost message,
is a ``FetchError`` (what a timeout gives the real code), so retries, backoff and catch-up
are the real ones. It counts every message and byte and notes when each listing version
first reached each node.

Time: one shared virtual clock. A round steps every online node's workers once (the
``Workers.step_all`` tests use); a round in which anything happened costs ``tick`` virtual
seconds (the one-hop latency, quantised), an idle round jumps to the next scheduled event
or at most ``idle_jump`` seconds on, so retries and the 30-minute catch-up fire on time
without simulating every idle second.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.federation.http import FederationClient, FetchError, PostResult
from meshnode.federation.runtime import WORKERS, Workers
from meshnode.federation.state import FEDERATION, Federation
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT

START = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
LISTING_TYPES = ("Create", "Update", "Announce", "Delete")


class SimClock:
    """The one virtual clock every node reads (``create_app(clock=...)``)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        """Virtual seconds since START."""
        return (self.now - START).total_seconds()


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def object_id(activity: Mapping[str, Any]) -> str | None:
    """The listing id a listing activity carries (embedded object or bare id)."""
    obj = activity.get("object")
    if isinstance(obj, Mapping):
        value = obj.get("id")
        return value if isinstance(value, str) else None
    return obj if isinstance(obj, str) else None


@dataclass
class Traffic:
    """What crossed the simulated network."""

    posts: int = 0
    gets: int = 0
    post_bytes: int = 0
    catchup_bytes: int = 0
    lost: int = 0
    refused: int = 0
    per_listing: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (object id, node index) -> virtual seconds of first arrival, by push or catch-up
    arrival: dict[tuple[str, int], float] = field(default_factory=dict)
    # (object id, version stamp) -> first seen anywhere; (id, stamp, node) -> first arrival
    version_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    version_arrival: dict[tuple[str, str, int], float] = field(default_factory=dict)


class SimNet:
    """The simulated network: who can reach whom, loss, and the counters."""

    def __init__(self, clock: SimClock, *, loss: float, seed: int) -> None:
        self.clock = clock
        self.loss = loss
        self.seed = seed
        self.by_origin: dict[str, int] = {}
        self.offline: set[int] = set()
        self.cut: set[int] | None = None  # one side of an active partition
        self.cut_was: set[int] = set()
        self.watched: int | None = None  # a node back from offline: bytes it took to catch up
        self.watched_bytes = 0
        self.traffic = Traffic()
        self.hop_seconds = 0.5
        self._link_counts: dict[tuple[int, int], int] = defaultdict(int)

    def reachable(self, src: int, dst: int) -> bool:
        """False when ``dst`` is offline or across the partition from ``src``."""
        if dst in self.offline or src in self.offline:
            return False
        return self.cut is None or ((src in self.cut) == (dst in self.cut))

    def lost(self, src: int, dst: int) -> bool:
        """Whether this message is lost: deterministic per link and message number."""
        if self.loss <= 0:
            return False
        key = (src, dst)
        self._link_counts[key] += 1
        digest = hashlib.sha256(f"{self.seed}:{src}:{dst}:{self._link_counts[key]}".encode())
        return int.from_bytes(digest.digest()[:8], "big") / 2**64 < self.loss

    def gate(self, src: int, url: str) -> int:
        """The destination index, or FetchError as the real client would raise it."""
        dst = self.by_origin.get(origin(url))
        if dst is None:
            raise FetchError(f"simulated network: unknown host {url[:80]}")
        if not self.reachable(src, dst):
            self.traffic.refused += 1
            raise FetchError(f"simulated network: {url[:80]} unreachable")
        if self.lost(src, dst):
            self.traffic.lost += 1
            raise FetchError(f"simulated network: message to {url[:80]} lost")
        return dst

    def arrived(self, activity: Mapping[str, Any], node: int) -> None:
        """Note that a listing version reached ``node`` now."""
        oid = object_id(activity)
        if oid is None or "/listings/" not in oid:
            return
        now = self.clock.seconds() + self.hop_seconds  # received one hop after sending
        obj = activity.get("object")
        stamp = str(obj.get("updated") or obj.get("published") or obj.get("type")) \
            if isinstance(obj, Mapping) else str(activity.get("type"))
        self.traffic.arrival.setdefault((oid, node), now)
        self.traffic.version_seen.setdefault((oid, stamp), now - self.hop_seconds)
        self.traffic.version_arrival.setdefault((oid, stamp, node), now)


class SimClient(FederationClient):
    """A node's federation client with the simulated network in front of the real hop."""

    def __init__(self, inner: FederationClient, net: SimNet, index: int) -> None:
        super().__init__(inner.session, inner.guard)
        self.net = net
        self.index = index

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """POST through the simulated network; counts messages per listing."""
        dst = self.net.gate(self.index, url)
        result = await super().post(url, body, headers)
        traffic = self.net.traffic
        traffic.posts += 1
        traffic.post_bytes += len(body)
        if dst == self.net.watched:
            self.net.watched_bytes += len(body)
        activity = json.loads(body)
        if isinstance(activity, dict) and activity.get("type") in LISTING_TYPES:
            oid = object_id(activity)
            if oid is not None and "/listings/" in oid:
                traffic.per_listing[oid] += 1
                if result.status < 300:
                    self.net.arrived(activity, dst)
        return result

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET through the simulated network; outbox pages count as catch-up bytes."""
        self.net.gate(self.index, url)
        document = await super().get_json(url, **kwargs)
        self.net.traffic.gets += 1
        if "?after=" in url and isinstance(document, Mapping):
            size = len(json.dumps(document))
            self.net.traffic.catchup_bytes += size
            if self.index == self.net.watched:
                self.net.watched_bytes += size
            full = "summary=1" not in url  # summaries carry ids, not listings
            for item in document.get("orderedItems") or ():
                if full and isinstance(item, Mapping):
                    self.net.arrived(item, self.index)
        return document


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # kept bound: no race with another process for the port
    return sock


@dataclass
class SimNode:
    """One real node in the simulation."""

    index: int
    config: Config
    runner: web.AppRunner

    @property
    def ctx(self) -> NodeContext:
        return self.runner.app[CONTEXT]

    @property
    def fed(self) -> Federation:
        return self.runner.app[FEDERATION]

    @property
    def workers(self) -> Workers:
        return self.runner.app[WORKERS]

    @property
    def url(self) -> str:
        return self.config.base_url


async def start_node(index: int, root: Path, clock: SimClock, net: SimNet) -> SimNode:
    """Create, start and wire one node (its client replaced by ``SimClient``)."""
    sock = _bound_socket()
    port = int(sock.getsockname()[1])
    handle = f"n{index}"
    config = init_node(Config(data_dir=root / handle, name=f"Community {index}", handle=handle,
                              public_url=f"http://127.0.0.1:{port}", port=port,
                              discovery_policy="off", synchronous="normal"))
    runner = web.AppRunner(create_app(config, clock=clock, run_workers=False),
                           access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    node = SimNode(index, config, runner)
    fed = node.fed
    client = SimClient(fed.client, net, index)
    fed.client = client
    fed.directory.client = client
    net.by_origin[origin(config.base_url)] = index
    return node


Event = tuple[float, int, Callable[[], Awaitable[None]]]


@dataclass
class Scheduler:
    """Virtual-time rounds over every online node."""

    clock: SimClock
    net: SimNet
    nodes: list[SimNode]
    tick: float = 0.5
    idle_jump: float = 60.0
    events: list[Event] = field(default_factory=list)
    rounds: int = 0
    _order: int = 0

    def at(self, when: float, action: Callable[[], Awaitable[None]]) -> None:
        """Schedule ``action`` at virtual second ``when``."""
        self._order += 1
        self.events.append((when, self._order, action))
        self.events.sort(key=lambda event: (event[0], event[1]))

    async def round(self) -> int:
        """Fire due events, then step every online node once; returns the work done."""
        now = self.clock.seconds()
        while self.events and self.events[0][0] <= now:
            _, _, action = self.events.pop(0)
            await action()
        online = [node for node in self.nodes if node.index not in self.net.offline]
        done = 0
        for node in online:  # what arrived last round is processed first...
            w = node.workers
            done += await w.peering.step() + await w.iou.step() + await w.inbox.step()
            done += await w.sync.step() + await w.deals.step()
        for node in online:  # ...then sent: each hop costs one round (``tick``)
            done += await node.workers.delivery.step()
        self.rounds += 1
        return done

    async def run_until(self, end: float) -> None:
        """Run rounds until virtual second ``end``."""
        while self.clock.seconds() < end:
            busy = await self.round()
            now = self.clock.seconds()
            if busy:
                step = self.tick
            else:
                upcoming = self.events[0][0] if self.events else end
                step = max(self.tick, min(upcoming - now, self.idle_jump, end - now))
            self.clock.now += timedelta(seconds=step)

    async def settle(self, limit: int = 200) -> None:
        """Run busy rounds until nothing moves (set-up: peering), a tick each."""
        for _ in range(limit):
            if not await self.round():
                return
            self.clock.now += timedelta(seconds=self.tick)
        raise RuntimeError("the simulated network did not settle")


def shuffled(items: list[int], seed: int) -> list[int]:
    """A seeded shuffle (partitions, offline picks)."""
    copy = list(items)
    random.Random(seed).shuffle(copy)
    return copy
