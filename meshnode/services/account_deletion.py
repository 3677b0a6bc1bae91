"""Deleting a member's account (RGPD, issue 19; docs/member-data.md).

The request (password and the word DELETE) revokes every session and token and records an
``account_deletions`` row in one transaction; the deletion worker then steps it through
``protocol/account_deletion.DELETION_GRAPH``: listings withdrawn with signed Tombstones sent
to every follower, a ``Delete`` for each message sent to another node and every message
removed here, open deals cancelled or declined (held amounts released), the deliveries given
time to reach neighbours, then the profile emptied and the private keys destroyed. Ledger
entries stay (the journal is append-only and hash-chained; the sum stays zero) and the
account's public key stays so the signatures already given out still verify.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import shutil
from pathlib import Path

from meshnode import urls
from meshnode.errors import ConflictError, PermissionDeniedError
from meshnode.protocol import account_deletion as proto
from meshnode.protocol.deals import TransitionError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import deals
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.services.members import verify_password
from meshnode.services.publishing import queue_activity
from meshnode.store import account_deletions as q
from meshnode.store import members as member_store
from meshnode.store import sessions as session_store
from meshnode.store.account_deletions import DeletionRow
from meshnode.store.members import MemberRow

log = logging.getLogger(__name__)


class StepOutcome(enum.Enum):
    """What one step did: finished its state, did part of it, or waits (for deliveries)."""

    NEXT = "next"
    MORE = "more"
    WAIT = "wait"


NEXT, MORE, WAIT = StepOutcome.NEXT, StepOutcome.MORE, StepOutcome.WAIT
CONFIRM_WORD = "DELETE"
BATCH = 50


async def request_deletion(ctx: NodeContext, member: MemberRow, *, password: object,
                           confirm: object) -> DeletionRow:
    """Start deleting ``member``'s account: 403 and nothing changed for a wrong password,
    422 without ``confirm: "DELETE"``, 409 for the community's last administrator."""
    if confirm != CONFIRM_WORD:
        raise ValidationError("type DELETE to confirm", {"confirm": "type DELETE"})
    if not isinstance(password, str) or not verify_password(member, password):
        raise PermissionDeniedError("wrong password: nothing was deleted")
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        if member.is_admin and await member_store.count_admins(tx) <= 1:
            raise ConflictError("the community needs another administrator before this one"
                                " can delete their account")
        await q.insert_deletion(tx, member_id=member.id, state="listings", now=now,
                                pseudonym=proto.pseudonym(secrets.token_bytes(6)))
        await session_store.revoke_member_sessions(tx, member.id, now)
        await member_store.revoke_tokens(tx, revoked_at=now, token_id=None,
                                         member_id=member.id)
        await member_store.set_disabled(tx, member.id, member.disabled_at or now)
    row = await q.get_deletion(ctx.store.reader, member.id)
    if row is None:  # written just above, in the same transaction
        raise ConflictError("the deletion was not recorded; try again")
    return row


async def step(ctx: NodeContext, limit: int = 5) -> int:
    """One step of every unfinished deletion (the deal loop runs it every few seconds);
    returns how many did something."""
    moved = 0
    for row in await q.open_deletions(ctx.store.reader, limit):
        member = await member_store.get_member(ctx.store.reader, row.member_id)
        if member is None:
            continue
        progress = await STEPS[row.state](ctx, member, row)
        if progress is NEXT:
            async with ctx.store.transaction() as tx:
                await q.set_state(tx, row.member_id, expected=row.state,
                                  state=proto.next_step(row.state), now=format_utc(ctx.clock()))
        moved += progress is not WAIT
    return moved


async def _listings(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    """Withdraw a batch of listings (signed Tombstones to every follower); True when none
    is left."""
    ids = await q.live_listing_ids(ctx.store.reader, member.id, BATCH)
    for listing_id in ids:
        await listing_service.withdraw_listing(ctx, member, listing_id)
    return NEXT if len(ids) < BATCH else MORE


async def _messages(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    """Queue a ``Delete`` for a batch of sent remote messages and remove them; once none is
    left, remove every other message of the member on this node."""
    notes = await q.sent_notes(ctx.store.reader, member.id, BATCH)
    actor = urls.member_actor(ctx.config.base_url, member.username)
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        for note in notes:
            delete = proto.note_delete(note.object_id, actor=actor,
                                       recipient=note.remote_actor, published=now)
            await queue_activity(tx, delete, public=False, now=now,
                                 inboxes=[note.inbox] if note.inbox else [])
        if notes:
            await q.delete_direct_messages(tx, [note.id for note in notes])
        if len(notes) < BATCH:
            await q.delete_messages(tx, member.id)
    return NEXT if len(notes) < BATCH else MORE


async def _deals(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    """Cancel (or decline) every deal still requested or accepted; a deal whose rules refuse
    it (too close to the agreed time) stays with the other party, logged."""
    for deal_id, state, role in await q.open_deals(ctx.store.reader, member.id):
        action = "decline" if (state, role) == ("requested", "author") else "cancel"
        try:
            await deals.act(ctx, member, deal_id, action, reason="account deleted")
        except (ConflictError, TransitionError) as exc:
            log.warning("account deletion: deal %s left as it is: %s", deal_id, exc)
    return NEXT


async def _draining(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    """Wait until what was sent as the member reached every neighbour, or ``DRAIN_LIMIT``
    passed (then it is given up: the key that signs it is about to go)."""
    actor = urls.member_actor(ctx.config.base_url, member.username)
    if not await q.pending_deliveries(ctx.store.reader, actor):
        return NEXT
    if not proto.drain_over(parse_utc(row.requested_at, field="requested_at"), ctx.clock()):
        return WAIT
    async with ctx.store.transaction() as tx:
        await q.drop_pending_deliveries(tx, actor, format_utc(ctx.clock()))
    return NEXT


async def _erase(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    """Empty the profile, destroy the private keys, forget the rest; remove image files."""
    media = await q.listing_media_ids(ctx.store.reader, member.id)
    async with ctx.store.transaction() as tx:
        await q.erase_member(tx, member.id, pseudonym=row.pseudonym,
                             now=format_utc(ctx.clock()))
    for listing_id in media:
        await asyncio.to_thread(_remove_folder, ctx.config.media_dir / listing_id)
    return NEXT


async def _done(ctx: NodeContext, member: MemberRow, row: DeletionRow) -> StepOutcome:
    return WAIT


def _remove_folder(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder)


STEPS = {"listings": _listings, "messages": _messages, "deals": _deals,
         "draining": _draining, "erase": _erase, "done": _done}


async def deletion_of(ctx: NodeContext, member: MemberRow) -> DeletionRow | None:
    """Where the member's account deletion stands (None: never asked)."""
    return await q.get_deletion(ctx.store.reader, member.id)
