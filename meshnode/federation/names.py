"""Remote names and keys kept fresh: re-verifying a listing on demand, and a background
worker that re-fetches the actor documents whose names pages show.

Only actors this node already accepted content from (authors of stored listings, peers,
deal parties) are ever fetched here: a stranger cannot make the node fetch a URL.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from datetime import datetime, timedelta

from meshnode.errors import CommunityUnreachableError
from meshnode.federation.http import FetchError
from meshnode.federation.state import Federation
from meshnode.protocol.activities import strip_fragment
from meshnode.protocol.errors import ProtocolError, SignatureError
from meshnode.protocol.proofs import proof_verification_method
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.protocol.trust import RULE_REMOTE, SignatureCheck, failed
from meshnode.services import trust
from meshnode.store import listings as lq
from meshnode.store import trust as trust_q
from meshnode.store.listings import ListingRow

log = logging.getLogger(__name__)
# A re-verification re-fetches the author's actor document at most once a minute, so a
# member pressing the button repeatedly cannot make the node hammer another community.
REFETCH_AFTER = timedelta(seconds=60)
REFRESH_BATCH = 10
BACKFILL_BATCH = 50
UNNAMED_SCAN = 200
FAILED_MAX = 10_000


async def _remote_check(federation: Federation, row: ListingRow, method: str,
                        checked_at: str) -> SignatureCheck | None:
    """A new check with the author's key as published now; None when the author no longer
    lists the key (the earlier check stays, and the verdict says the key changed)."""
    ctx = federation.ctx
    fetched = await trust_q.actor_fetched_at(ctx.store.reader, row.author_uri)
    stale = fetched is None or fetched < format_utc(ctx.clock() - REFETCH_AFTER)
    try:
        key = await federation.directory.key(method, refresh=stale)
    except SignatureError as exc:
        if isinstance(exc.__cause__, FetchError | ProtocolError):
            raise CommunityUnreachableError(Text(
                "the author's community could not be reached; the earlier check stands"
            )) from exc
        return None
    if key.actor_id != row.author_uri or key.kind != "ed25519":
        return failed(RULE_REMOTE, checked_at, "the key is not the author's Ed25519 key", method)
    check = trust.verify_with_key(row.signed_object, key_id=method,
                                  public_key=key.ed25519_raw, rule=RULE_REMOTE,
                                  checked_at=checked_at)
    earlier = (await trust_q.current_checks(ctx.store.reader, [row.id])).get(row.id)
    if (not check.verified and earlier is not None and earlier.verified
            and earlier.fingerprint != check.fingerprint):
        return None  # the same key id now holds another key: a rotation, not an alteration
    return check


async def reverify_listing(federation: Federation, row: ListingRow) -> SignatureCheck:
    """Verify the listing's stored version again, now, and keep the result.

    A remote author's actor document is re-fetched (unless fetched in the last minute), so
    a key the author rotated or withdrew shows; an unreachable author's node raises
    ``CommunityUnreachableError`` and leaves the earlier check in place.
    """
    ctx = federation.ctx
    if row.is_local:
        return await trust.check_local(ctx, row)
    checked_at = format_utc(ctx.clock())
    try:
        method = proof_verification_method(json.loads(row.signed_object))
    except (ProtocolError, ValueError) as exc:
        check = failed(RULE_REMOTE, checked_at, str(exc))
    else:
        if strip_fragment(method) != row.author_uri:
            check = failed(RULE_REMOTE, checked_at, "the proof was not made by the author",
                           method)
        else:
            found = await _remote_check(federation, row, method, checked_at)
            if found is None:
                return await _key_withdrawn(federation, row, method, checked_at)
            check = found
    await trust.keep_check(ctx, row, check)
    return check


async def _key_withdrawn(federation: Federation, row: ListingRow, method: str,
                         checked_at: str) -> SignatureCheck:
    """The author's document no longer lists the key: an earlier successful check is kept
    (it was true when made; the verdict now says the key changed), else a failure is kept."""
    earlier = (await trust_q.current_checks(federation.ctx.store.reader, [row.id])).get(row.id)
    if earlier is not None and earlier.verified and earlier.key_id == method:
        return earlier
    check = failed(RULE_REMOTE, checked_at, "the author no longer lists this key", method)
    await trust.keep_check(federation.ctx, row, check)
    return check


class ActorRefreshWorker:
    """Re-fetches cached actor documents older than ``federation.actor_refresh_hours``.

    ``step()`` refreshes up to one batch, oldest first; a failure is logged and recorded
    (``refresh_error``) and the actor waits a full period before the next try.
    """

    def __init__(self, federation: Federation, batch: int = REFRESH_BATCH) -> None:
        self.federation = federation
        self.batch = batch
        # Unnamed actors whose first fetch failed, and when: tried again a period later.
        self._failed: OrderedDict[str, datetime] = OrderedDict()
        self._backfilled = False

    async def step(self) -> int:
        """Check a batch of listings stored without a kept check, name the people on the
        other side of deals and payments, refresh due actors; return how much was done."""
        done = 0
        if not self._backfilled:  # versions stored from now on get their check on arrival
            done = await self.backfill_checks()
            self._backfilled = done < BACKFILL_BATCH
        return done + await self.name_parties() + await self.refresh_actors()

    async def name_parties(self) -> int:
        """Fetch, once, the actors of deal and payment counterparts on peers' origins."""
        ctx = self.federation.ctx
        now = ctx.clock()
        period = timedelta(hours=ctx.config.actor_refresh_hours)
        candidates = await trust_q.unnamed_actors(ctx.store.reader, UNNAMED_SCAN)
        due = [actor for actor in candidates
               if now - self._failed.get(actor, now - period) >= period][:self.batch]
        for actor_id in due:
            try:
                await self.federation.directory.fetch_actor(actor_id)
            except (FetchError, ProtocolError) as exc:
                log.warning("fetching actor %s failed: %s", actor_id, exc)
                self._failed[actor_id] = now
                self._failed.move_to_end(actor_id)
                while len(self._failed) > FAILED_MAX:
                    self._failed.popitem(last=False)
        return len(due)

    async def backfill_checks(self) -> int:
        """Check listings stored before checks were kept, with keys already cached (no
        network); each result is kept with the listing's current version."""
        ctx = self.federation.ctx
        ids = await trust_q.unchecked_listings(ctx.store.reader, BACKFILL_BATCH)
        for listing_id in ids:
            row = await lq.get_listing(ctx.store.reader, listing_id)
            if row is None:
                continue
            if row.is_local:
                await trust.check_local(ctx, row)
                continue
            method = proof_verification_method(json.loads(row.signed_object))
            key = await trust_q.ed25519_material(ctx.store.reader, method)
            if key is None or key[0] != row.author_uri:
                continue  # the query saw it cached; a refresh just replaced it
            await trust.keep_check(ctx, row, trust.verify_with_key(
                row.signed_object, key_id=method, public_key=key[1], rule=RULE_REMOTE,
                checked_at=format_utc(ctx.clock())))
        return len(ids)

    async def refresh_actors(self) -> int:
        """Refresh one batch of due actors; return how many were tried."""
        ctx = self.federation.ctx
        now = ctx.clock()
        before = format_utc(now - timedelta(hours=ctx.config.actor_refresh_hours))
        due = await trust_q.actors_due_refresh(ctx.store.reader, before, self.batch)
        for actor_id in due:
            try:
                await self.federation.directory.fetch_actor(actor_id)
            except (FetchError, ProtocolError) as exc:
                log.warning("refreshing actor %s failed: %s", actor_id, exc)
                async with ctx.store.transaction() as tx:
                    await trust_q.mark_refresh_failed(tx, actor_id, format_utc(now), str(exc))
        return len(due)
