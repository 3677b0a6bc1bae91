"""N real meshnode apps in one process, over a simulated transport and a shared virtual clock.

Each node is the real ``create_app`` (store on SQLite files under a tmpfs directory, real
services, inbox, relay, catch-up and IOU code), served on its own 127.0.0.1 port with its
background loops off. The one thing replaced is the federation client's HTTP hop:
``SimClient`` wraps the node's real ``FederationClient``. A POST (every delivery) first meets
the simulated network: a node offline or on the other side of a partition, or a lost message,
is a ``FetchError`` (what a timeout gives the real code), so retries, backoff and catch-up are
the real ones. A message that gets through is answered 202 at once and put in flight: it
reaches the receiver's real inbox door (signature, time window, quota) over real HTTP after a
seeded log-normal latency (``Latency``), when ``scripts/sim_scheduler.py`` delivers it. GETs
(key fetches, catch-up pages) are answered at once, in zero virtual time. The network counts
every message and byte and notes when each listing version first reached each node.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import socket
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.federation.http import FederationClient, Fetched, FetchError, PostResult
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
        self._exact: tuple[datetime, float] | None = None

    def __call__(self) -> datetime:
        return self.now

    def set_seconds(self, seconds: float) -> None:
        """Move to ``seconds`` after START; ``seconds()`` then gives back exactly that float
        (a datetime keeps microseconds: a wake-up at 4383.7873660000005 read back as
        4383.787366 was never reached, and the scheduler spun on it)."""
        self.now = START + timedelta(seconds=seconds)
        self._exact = (self.now, seconds)

    def seconds(self) -> float:
        """Virtual seconds since START."""
        if self._exact is not None and self._exact[0] == self.now:
            return self._exact[1]
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


Z95 = statistics.NormalDist().inv_cdf(0.95)
TAIL = 1e-6  # quantiles drawn are kept within [TAIL, 1 - TAIL]: latency has bounds


def unit(*parts: object) -> float:
    """A seeded uniform number in [0, 1) from ``parts`` (the same parts, the same number)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Latency:
    """One-way latency of a message: log-normal with the given median and 95th percentile.

    Each link has its own median (the global one times a seeded log-normal factor: some
    links are near, some far, ``link_spread`` of the spread), and each message on it draws
    the rest. The draw hashes the seed, the link and ``key`` (the simulator passes the
    link's message
    count), so a run is reproducible.
    """

    median_ms: float = 50.0
    p95_ms: float = 200.0
    seed: int = 0
    link_spread: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.median_ms <= self.p95_ms:
            raise ValueError("latency needs 0 < median <= p95")

    @property
    def sigma(self) -> float:
        """The log-normal's sigma: ln(p95 / median) / z(0.95)."""
        return math.log(self.p95_ms / self.median_ms) / Z95

    def bounds(self) -> tuple[float, float]:
        """The least and greatest latency in seconds a message can draw."""
        z = statistics.NormalDist().inv_cdf(1 - TAIL)
        return (self.median_ms * math.exp(-z * self.sigma) / 1000,
                self.median_ms * math.exp(z * self.sigma) / 1000)

    def seconds(self, src: int, dst: int, key: bytes) -> float:
        """Latency of the message ``key`` (its body) from ``src`` to ``dst``, in seconds."""
        normal = statistics.NormalDist()
        link = normal.inv_cdf(min(max(unit(self.seed, "link", *sorted((src, dst))), TAIL),
                                  1 - TAIL))
        own = normal.inv_cdf(min(max(unit(self.seed, src, dst,
                                          hashlib.sha256(key).hexdigest()), TAIL), 1 - TAIL))
        # the two parts add up to one normal of variance 1: the spread is the one asked for
        spread = math.sqrt(self.link_spread)
        z = spread * link + math.sqrt(1 - self.link_spread) * own
        return self.median_ms * math.exp(z * self.sigma) / 1000


@dataclass
class Message:
    """A POST in flight: sent at ``sent``, it reaches ``dst``'s inbox at ``due``."""

    src: int
    dst: int
    url: str
    body: bytes
    headers: dict[str, str]
    sent: float
    due: float
    client: SimClient
    key: bytes  # what its latency was drawn from


@dataclass
class Traffic:
    """What crossed the simulated network."""

    posts: int = 0
    gets: int = 0
    post_bytes: int = 0
    catchup_bytes: int = 0
    lost: int = 0
    refused: int = 0
    lost_in_flight: int = 0  # the receiver went offline or was cut off while it flew
    rejected: int = 0  # answered >= 300 by the receiver's door
    not_modified: int = 0  # conditional GETs answered 304 (a peer's unchanged following)
    per_listing: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (object id, node index) -> virtual seconds of first arrival, by push or catch-up
    arrival: dict[tuple[str, int], float] = field(default_factory=dict)
    # (object id, version stamp) -> first seen anywhere; (id, stamp, node) -> first arrival
    version_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    version_arrival: dict[tuple[str, str, int], float] = field(default_factory=dict)


class SimNet:
    """The simulated network: who can reach whom, loss, and the counters."""

    def __init__(self, clock: SimClock, *, loss: float, seed: int,
                 latency: Latency | None = None) -> None:
        self.clock = clock
        self.latency = latency or Latency(seed=seed)
        self.in_flight: list[Message] = []  # sent since the scheduler last took them
        self.loss = loss
        self.seed = seed
        self.by_origin: dict[str, int] = {}
        self.offline: set[int] = set()
        self.cut: set[int] | None = None  # one side of an active partition
        self.cut_was: set[int] = set()
        self.watched: int | None = None  # a node back from offline: bytes it took to catch up
        self.watched_bytes = 0
        self.traffic = Traffic()
        self._link_counts: dict[tuple[int, int], int] = defaultdict(int)
        self._sent: dict[tuple[int, int], int] = defaultdict(int)

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

    def send(self, client: SimClient, dst: int, url: str, body: bytes,
             headers: dict[str, str]) -> None:
        """Put a POST in flight: it arrives after its latency."""
        now = self.clock.seconds()
        # keyed by the link's message count, not the body: bodies carry the random ports
        self._sent[(client.index, dst)] += 1
        key = str(self._sent[(client.index, dst)]).encode()
        due = now + self.latency.seconds(client.index, dst, key)
        self.in_flight.append(Message(client.index, dst, url, body, headers, now, due, client,
                                      key))

    async def deliver(self, message: Message) -> int | None:
        """The real HTTP POST of a message now due; its status (None: lost in flight)."""
        if not self.reachable(message.src, message.dst):
            self.traffic.lost_in_flight += 1
            return None
        result = await message.client.real_post(message.url, message.body, message.headers)
        traffic = self.traffic
        traffic.posts += 1
        traffic.post_bytes += len(message.body)
        if message.dst == self.watched:
            self.watched_bytes += len(message.body)
        if result.status >= 300:
            traffic.rejected += 1
        activity = json.loads(message.body)
        if isinstance(activity, dict) and activity.get("type") in LISTING_TYPES:
            oid = object_id(activity)
            if oid is not None and "/listings/" in oid:
                traffic.per_listing[oid] += 1
                if result.status < 300:
                    self.arrived(activity, message.dst, message.sent)
        return result.status

    def arrived(self, activity: Mapping[str, Any], node: int, sent: float | None = None) -> None:
        """Note that a listing version (sent at ``sent``, default now) reached ``node`` now."""
        oid = object_id(activity)
        if oid is None or "/listings/" not in oid:
            return
        now = self.clock.seconds()
        obj = activity.get("object")
        stamp = str(obj.get("updated") or obj.get("published") or obj.get("type")) \
            if isinstance(obj, Mapping) else str(activity.get("type"))
        self.traffic.arrival.setdefault((oid, node), now)
        self.traffic.version_seen.setdefault((oid, stamp), now if sent is None else sent)
        self.traffic.version_arrival.setdefault((oid, stamp, node), now)


class SimClient(FederationClient):
    """A node's federation client with the simulated network in front of the real hop."""

    def __init__(self, inner: FederationClient, net: SimNet, index: int) -> None:
        super().__init__(inner.session, inner.guard)
        self.net = net
        self.index = index

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """Put the POST in flight (202 at once); the scheduler delivers it after its latency.

        What the network refuses (offline, partition, loss) fails now, as a timeout would.
        The receiver's own answer is counted when it arrives (``Traffic.rejected``).
        """
        dst = self.net.gate(self.index, url)
        self.net.send(self, dst, url, body, headers)
        return PostResult(202, None)

    async def real_post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """The real HTTP POST on loopback (the message's arrival)."""
        return await super().post(url, body, headers)

    async def get_json_if_changed(self, url: str, etag: str | None, **kwargs: Any) -> Fetched:
        """A conditional GET through the simulated network (``following``, for the map)."""
        self.net.gate(self.index, url)
        fetched = await super().get_json_if_changed(url, etag, **kwargs)
        self.net.traffic.gets += 1
        self.net.traffic.not_modified += not fetched.modified
        return fetched

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


def shuffled(items: list[int], seed: int) -> list[int]:
    """A seeded shuffle (partitions, offline picks)."""
    copy = list(items)
    random.Random(seed).shuffle(copy)
    return copy
