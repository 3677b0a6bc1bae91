"""Remote actors and their keys: a cache table, and a guarded fetch from the actor's own id.

A key authenticates an actor only if the actor document, fetched from the actor's id
(whose ``id`` equals that URL), lists the key (REFERENCE §2); a key document's ``owner``
alone proves nothing.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import nacl.signing

from meshnode.errors import RateLimitedError
from meshnode.federation.http import FederationClient, FetchError
from meshnode.protocol.activities import (
    RemoteActor,
    check_url,
    origin_of,
    parse_actor,
    strip_fragment,
)
from meshnode.protocol.errors import ProtocolError, SignatureError
from meshnode.protocol.httpsig import VerifyingKey, load_public_pem
from meshnode.protocol.multikey import fingerprint
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq

log = logging.getLogger(__name__)
KEY_CACHE_SIZE = 1024
REFRESH_INTERVAL = 60.0  # seconds: a key or actor is re-fetched at most once a minute
BUDGET_ORIGINS = 4096  # origins whose fetch budget or last log line are remembered
KEY_UNVERIFIABLE = "cannot verify the signing key (its actor could not be fetched or checked)"


class FetchBudget:
    """Key fetches the inbox may make for each origin: a token bucket per origin.

    Each origin may make ``per_hour`` fetches an hour, up to ``burst`` at once; the buckets
    live in memory (bounded), a restart refills them. Times are unix seconds from the caller.
    """

    def __init__(self, per_hour: int, burst: int = 20) -> None:
        self.rate = per_hour / 3600.0
        self.burst = float(min(burst, per_hour))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, origin: str, now: float) -> float:
        """Spend one fetch for ``origin``: 0 when allowed, else seconds until one is."""
        tokens, then = self._buckets.get(origin, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self._buckets[origin] = (tokens - 1, now)
        self._buckets.move_to_end(origin)
        while len(self._buckets) > BUDGET_ORIGINS:
            self._buckets.popitem(last=False)
        return 0.0


class StrangerFetchBudget(FetchBudget):
    """Key fetches for origins that are not peers: per origin, and for all of them together.

    The per-origin bucket is spent first, so an origin over its own budget cannot drain the
    shared one; peers use a plain ``FetchBudget`` and are never starved by strangers.
    """

    def __init__(self, per_hour: int, total_per_hour: int, burst: int = 20) -> None:
        super().__init__(per_hour, burst)
        self._total = FetchBudget(total_per_hour, burst=5 * burst)

    def take(self, origin: str, now: float) -> float:
        """Spend one fetch for ``origin`` and one from the shared budget (0 when allowed)."""
        wait = super().take(origin, now)
        return wait or self._total.take("", now)


class Throttle:
    """At most one event per name every ``interval`` seconds (bounded memory)."""

    def __init__(self, interval: float, size: int = BUDGET_ORIGINS) -> None:
        self.interval = interval
        self.size = size
        self._last: OrderedDict[str, float] = OrderedDict()

    def allow(self, name: str, now: float) -> bool:
        """True (and remembered) if ``name`` had no event in the last ``interval`` seconds."""
        last = self._last.get(name)
        if last is not None and now - last < self.interval:
            return False
        self._last[name] = now
        self._last.move_to_end(name)
        while len(self._last) > self.size:
            self._last.popitem(last=False)
        return True


@dataclass(frozen=True)
class ActorKey:
    """A verified key: the actor it belongs to, its kind and its raw material."""

    actor_id: str
    kind: str
    material: str

    @cached_property
    def public_key(self) -> VerifyingKey:
        """The key ready to verify with, parsed once per cached key."""
        return self.verifying_key()

    def verifying_key(self) -> VerifyingKey:
        """The key ready to verify with: PyNaCl for Ed25519, ``cryptography`` for RSA."""
        if self.kind == "rsa":
            return load_public_pem(self.material)
        return nacl.signing.VerifyKey(bytes.fromhex(self.material))

    @property
    def ed25519_raw(self) -> bytes:
        """Raw Ed25519 public key (Multikey entries only)."""
        if self.kind != "ed25519":
            raise SignatureError("not an Ed25519 Multikey")
        return bytes.fromhex(self.material)

    @cached_property
    def fingerprint(self) -> str:
        """The Ed25519 key's fingerprint (``protocol.multikey.fingerprint``), computed once
        per cached key rather than once per listing it verifies."""
        return fingerprint(self.ed25519_raw)


class ActorDirectory:
    """Looks up remote actors and keys, from the cache first, fetching when needed."""

    def __init__(self, ctx: NodeContext, client: FederationClient) -> None:
        self.ctx = ctx
        self.client = client
        # Keys proven by their actor's document, in memory to spare the inbox a database
        # round trip per request; bounded, and a refresh (key rotation) replaces the entry.
        self._keys: OrderedDict[str, ActorKey] = OrderedDict()
        self._refreshes = Throttle(REFRESH_INTERVAL)  # per key id / actor id
        self._failure_logs = Throttle(REFRESH_INTERVAL)  # one log line per origin a minute

    def _now(self) -> float:
        return self.ctx.clock().timestamp()

    def may_refresh(self, name: str) -> bool:
        """True at most once a minute per key or actor id: a bad signature cannot make the
        node re-fetch a key in a loop."""
        return self._refreshes.allow(name, self._now())

    def _remember(self, key_id: str, key: ActorKey) -> ActorKey:
        self._keys[key_id] = key
        self._keys.move_to_end(key_id)
        while len(self._keys) > KEY_CACHE_SIZE:
            self._keys.popitem(last=False)
        return key

    async def fetch_actor(self, actor_id: str) -> RemoteActor:
        """Fetch, check and cache an actor document; FetchError or ProtocolError on failure."""
        check_url(actor_id, "actor")
        document = await self.client.get_json(actor_id)
        actor = parse_actor(document, fetched_from=actor_id)
        async with self.ctx.store.transaction() as tx:
            await fq.save_actor(tx, actor, json.dumps(document), format_utc(self.ctx.clock()))
        return actor

    async def get_actor(self, actor_id: str, *, refresh: bool = False) -> RemoteActor:
        """A remote actor from the cache, or fetched (``refresh``: at most once a minute)."""
        if not refresh or not self.may_refresh(actor_id):
            row = await fq.get_actor_row(self.ctx.store.reader, actor_id)
            if row is not None:
                return parse_actor(json.loads(row["document"]), fetched_from=actor_id)
        return await self.fetch_actor(actor_id)

    async def _owner_of(self, key_id: str) -> str:
        """Actor claimed for a key id: the part before ``#``, or the key document's owner."""
        if "#" in key_id:
            return strip_fragment(key_id)
        document = await self.client.get_json(key_id)
        if isinstance(document, Mapping):
            if "inbox" in document:
                return key_id
            owner = document.get("owner") or document.get("controller")
            if isinstance(owner, str):
                return owner
        raise SignatureError(f"cannot tell which actor key {key_id!r} belongs to")

    async def key(self, key_id: str, *, refresh: bool = False,
                  budget: FetchBudget | None = None) -> ActorKey:
        """The key ``key_id`` and its actor, proven by the actor's own document.

        ``refresh`` re-fetches it (key rotation), at most once a minute per key. A fetch
        spends one of ``budget``'s tokens for the key's origin (RateLimitedError when none
        is left). Why a fetch failed is logged, never told to the requester.
        """
        if refresh and self.may_refresh(key_id):
            self._keys.pop(key_id, None)
        elif (cached := self._keys.get(key_id)) is not None:
            return cached
        else:
            row = await fq.get_key(self.ctx.store.reader, key_id)
            if row is not None:
                return self._remember(key_id, ActorKey(row["actor_id"], row["kind"],
                                                       row["material"]))
        if budget is not None and (wait := budget.take(origin_of(key_id), self._now())):
            raise RateLimitedError("too many unknown keys from your origin; retry later",
                                   retry_after=int(wait) + 1)
        try:
            actor = await self.fetch_actor(await self._owner_of(key_id))
        except (FetchError, ProtocolError) as exc:
            self._log_failure(key_id, exc)
            raise SignatureError(KEY_UNVERIFIABLE) from exc
        if key_id in actor.rsa_keys:
            return self._remember(key_id, ActorKey(actor.id, "rsa", actor.rsa_keys[key_id]))
        if key_id in actor.ed25519_keys:
            material = actor.ed25519_keys[key_id].hex()
            return self._remember(key_id, ActorKey(actor.id, "ed25519", material))
        raise SignatureError(f"actor {actor.id!r} does not list key {key_id!r}")

    def _log_failure(self, key_id: str, exc: Exception) -> None:
        try:
            origin = origin_of(key_id)
        except ProtocolError:
            origin = key_id[:100]
        if self._failure_logs.allow(origin, self._now()):
            log.warning("cannot fetch key %.200s: %.300s", key_id, exc)
