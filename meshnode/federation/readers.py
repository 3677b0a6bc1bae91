"""Which document a follower reads: the signed ``Proposal`` or a Mastodon-style ``Note``.

Decided once, when a Follow is accepted, and kept in ``followers.reader`` (durable, so a
delivery never waits on a NodeInfo fetch). The rule itself is ``protocol.notes.reader_for``;
this module gathers its inputs: our marker and the ``@context`` of the cached actor document,
then the origin's NodeInfo ``software.name`` (https://nodeinfo.diaspora.software/protocol).
A NodeInfo that is missing, oversized (over the client's 1 MiB cap), malformed or on another
origin counts as unreadable: the follower keeps getting Proposals, never an error.

Followers recorded before readers existed (migration 0015 gave them 'proposal' unasked) are
classified once by ``ReaderWorker``, with the same rule and the same guarded fetches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from meshnode.federation.http import FetchError
from meshnode.federation.state import Federation
from meshnode.protocol.activities import RemoteActor, same_origin
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.notes import Reader, context_reads_fep0837, nodeinfo_software, reader_for
from meshnode.protocol.timefmt import format_utc
from meshnode.store import federation as fq

log = logging.getLogger(__name__)
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2."


def nodeinfo_href(links: object, origin: str) -> str | None:
    """The NodeInfo 2.x document URL from ``/.well-known/nodeinfo``, on ``origin`` only."""
    entries = links.get("links") if isinstance(links, Mapping) else None
    if not isinstance(entries, list):
        return None
    for entry in entries[:16]:
        if not isinstance(entry, Mapping):
            continue
        rel, href = entry.get("rel"), entry.get("href")
        if (isinstance(rel, str) and rel.startswith(NODEINFO_SCHEMA) and isinstance(href, str)
                and same_origin(href, origin)):
            return href
    return None


async def software_name(federation: Federation, origin: str) -> str | None:
    """NodeInfo ``software.name`` of ``origin``, or None if it cannot be read."""
    client = federation.client
    try:
        href = nodeinfo_href(await client.get_json(f"{origin}/.well-known/nodeinfo",
                                                   accept="application/json"), origin)
        if href is None:
            return None
        return nodeinfo_software(await client.get_json(href, accept="application/json"))
    except (FetchError, ProtocolError) as exc:
        log.info("nodeinfo of %s unreadable: %s", origin, exc)
        return None


async def _actor_document(federation: Federation, actor_id: str) -> Mapping[str, Any]:
    row = await fq.get_actor_row(federation.ctx.store.reader, actor_id)
    document = json.loads(row["document"]) if row is not None else {}
    return document if isinstance(document, Mapping) else {}


async def classify_reader(federation: Federation, remote: RemoteActor) -> Reader:
    """'proposal' for meshnode nodes, FEP-0837 servers and unknown software, 'note' for
    servers whose NodeInfo names another software (Mastodon...)."""
    if remote.is_meshnode:
        return "proposal"
    if context_reads_fep0837(await _actor_document(federation, remote.id)):
        return "proposal"
    software = await software_name(federation, remote.origin)
    return reader_for(marker=False, context_reads_fep0837=False, software=software)


class ReaderWorker:
    """Classifies, once, the community's followers whose reader was never decided (recorded
    before migration 0015): ``step()`` takes a batch, decides each with ``classify_reader``
    and stamps it, so a Mastodon follower from before gets Notes from then on.

    The actor document comes from the cache (or the actor's own URL), NodeInfo only from the
    follower's own origin; an actor that cannot be read at all keeps 'proposal', the
    historic behaviour, and is not asked again.
    """

    def __init__(self, federation: Federation, batch: int = 8) -> None:
        self.federation = federation
        self.batch = batch

    async def _decide(self, actor_id: str) -> Reader:
        try:
            remote = await self.federation.directory.get_actor(actor_id)
        except (FetchError, ProtocolError) as exc:
            log.info("follower %s unreadable, keeps Proposals: %s", actor_id, exc)
            return "proposal"
        return await classify_reader(self.federation, remote)

    async def step(self) -> int:
        """Classify up to one batch of unclassified followers; return how many."""
        federation = self.federation
        ctx = federation.ctx
        pending = await fq.unclassified_followers(ctx.store.reader, federation.community,
                                                  self.batch)
        for actor_id in pending:
            reader = await self._decide(actor_id)
            async with ctx.store.transaction() as tx:
                await fq.set_follower_reader(tx, federation.community, actor_id,
                                             reader=reader, now=format_utc(ctx.clock()))
            log.info("follower %s classified: reads %s", actor_id, reader)
        return len(pending)
