"""Remote actors and their keys: a cache table, and a guarded fetch from the actor's own id.

A key authenticates an actor only if the actor document, fetched from the actor's id
(whose ``id`` equals that URL), lists the key (REFERENCE §2); a key document's ``owner``
alone proves nothing.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import nacl.signing

from meshnode.federation.http import FederationClient, FetchError
from meshnode.protocol.activities import RemoteActor, check_url, parse_actor, strip_fragment
from meshnode.protocol.errors import ProtocolError, SignatureError
from meshnode.protocol.httpsig import VerifyingKey, load_public_pem
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq

KEY_CACHE_SIZE = 1024


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


class ActorDirectory:
    """Looks up remote actors and keys, from the cache first, fetching when needed."""

    def __init__(self, ctx: NodeContext, client: FederationClient) -> None:
        self.ctx = ctx
        self.client = client
        # Keys proven by their actor's document, in memory to spare the inbox a database
        # round trip per request; bounded, and a refresh (key rotation) replaces the entry.
        self._keys: OrderedDict[str, ActorKey] = OrderedDict()

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
        """A remote actor from the cache, or fetched."""
        if not refresh:
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

    async def key(self, key_id: str, *, refresh: bool = False) -> ActorKey:
        """The key ``key_id`` and its actor, proven by the actor's own document."""
        if refresh:
            self._keys.pop(key_id, None)
        elif (cached := self._keys.get(key_id)) is not None:
            return cached
        else:
            row = await fq.get_key(self.ctx.store.reader, key_id)
            if row is not None:
                return self._remember(key_id, ActorKey(row["actor_id"], row["kind"],
                                                       row["material"]))
        try:
            actor = await self.fetch_actor(await self._owner_of(key_id))
        except (FetchError, ProtocolError) as exc:
            raise SignatureError(f"cannot fetch the actor of key {key_id!r}: {exc}") from exc
        if key_id in actor.rsa_keys:
            return self._remember(key_id, ActorKey(actor.id, "rsa", actor.rsa_keys[key_id]))
        if key_id in actor.ed25519_keys:
            material = actor.ed25519_keys[key_id].hex()
            return self._remember(key_id, ActorKey(actor.id, "ed25519", material))
        raise SignatureError(f"actor {actor.id!r} does not list key {key_id!r}")
