"""The peering worker: resolves peers an admin added (WebFinger or URL) and follows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import quote, urlsplit

from meshnode.errors import ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.peering import accept_pending_follow, queue_follow
from meshnode.federation.state import Federation
from meshnode.protocol.activities import RemoteActor, check_url, jrd_self_link, parse_acct
from meshnode.protocol.errors import ProtocolError, ValidationError
from meshnode.protocol.peering import next_peer_state
from meshnode.protocol.retry import backoff_seconds
from meshnode.protocol.timefmt import format_utc
from meshnode.store import federation as fq

MAX_RESOLVE_ATTEMPTS = 8


class PeeringWorker:
    """Turns ``resolving`` peers into a queued Follow; ``step()`` handles those due."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def resolve(self, requested: str) -> RemoteActor:
        """The Group actor behind a node URL or a ``handle@host[:port]``."""
        client = self.federation.client
        if requested.startswith(("http://", "https://")):
            parts = urlsplit(requested)
            client.guard.trusted_hosts.add((parts.hostname or "").lower())
            if parts.path in ("", "/"):
                info = await client.get_json(f"{parts.scheme}://{parts.netloc}/nodeinfo/2.1",
                                             accept="application/json")
                meta = info.get("metadata") if isinstance(info, Mapping) else None
                actor = meta.get("communityActor") if isinstance(meta, Mapping) else None
                requested = check_url(actor, "communityActor")
            return await self.federation.directory.fetch_actor(requested)
        name, host = parse_acct(requested)
        client.guard.trusted_hosts.add(host.split(":")[0])
        resource = quote(f"acct:{name}@{host}")
        last: Exception = ValidationError(f"cannot resolve {requested}")
        for scheme in ("https", "http"):
            try:
                jrd = await client.get_json(
                    f"{scheme}://{host}/.well-known/webfinger?resource={resource}",
                    accept="application/jrd+json, application/json")
                return await self.federation.directory.fetch_actor(jrd_self_link(jrd))
            except (FetchError, ProtocolError) as exc:
                last = exc
        raise last

    async def step(self) -> int:
        """Resolve and follow every due peer request; returns how many were handled."""
        ctx = self.federation.ctx
        now = ctx.clock()
        rows = await fq.peers_to_resolve(ctx.store.reader, format_utc(now))
        for row in rows:
            key = row["origin"]
            try:
                actor = await self.resolve(row["requested"])
            except (FetchError, ProtocolError, ServiceError) as exc:
                attempts = row["attempts"] + 1
                retry_at = now + timedelta(seconds=backoff_seconds(attempts, 0.0))
                async with ctx.store.transaction() as tx:
                    await fq.update_peer(
                        tx, key, format_utc(now), attempts=attempts,
                        next_attempt_at=format_utc(retry_at), last_error=str(exc)[:300],
                        out_state=next_peer_state(
                            row["out_state"],
                            "give_up" if attempts >= MAX_RESOLVE_ATTEMPTS else "retry",
                            "worker"))
                continue
            async with ctx.store.transaction() as tx:
                if key != actor.origin:
                    await fq.delete_peer(tx, key)
                if await fq.is_blocked(tx, actor.origin):
                    continue
                await fq.insert_peer(tx, origin=actor.origin, requested=row["requested"],
                                     out_state="none", now=format_utc(now))
                await queue_follow(ctx, tx, actor)
                await accept_pending_follow(ctx, tx, actor)
        if rows:
            self.federation.wake_delivery()
        return len(rows)
