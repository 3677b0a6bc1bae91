"""Member-to-member messages about a listing ("I'm interested"), with unread counts."""

from __future__ import annotations

from meshnode.errors import NotFoundError, PermissionDeniedError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.member_limits import member_limited
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store import messages as q
from meshnode.store.members import MemberRow
from meshnode.store.messages import MessageRow

MAX_BODY = 2000


@member_limited("messages")
async def send_message(
    ctx: NodeContext, sender: MemberRow, *, listing_id: str, recipient_username: str, body: str
) -> int:
    """Send ``body`` to a member about a listing; one of the two must be its author."""
    text = clean_text(body)
    if not 1 <= len(text) <= MAX_BODY:
        raise ValidationError("empty or too long message", {
            "body": Text("1 to %(max)s characters", max=MAX_BODY)})
    listing = await listing_q.get_listing(ctx.store.reader, listing_id)
    if listing is None or listing.hidden:
        raise NotFoundError("no such listing")
    recipient = await member_q.get_member_by_username(ctx.store.reader, recipient_username)
    if recipient is None or not recipient.is_active:
        raise NotFoundError("no such member")
    if recipient.id == sender.id:
        raise ValidationError("you cannot write to yourself", {"body": "choose someone else"})
    if listing.author_id not in (sender.id, recipient.id):
        raise PermissionDeniedError("messages are about a listing of one of the two members")
    async with ctx.store.transaction() as tx:
        message_id = await q.insert_message(
            tx, listing_id=listing_id, sender_id=sender.id, recipient_id=recipient.id,
            body=text, created_at=format_utc(ctx.clock()),
        )
        await notifications.notify(ctx, tx, recipient.id, "message", ref=str(message_id),
                                   url=f"/messages/{listing_id}/{sender.username}",
                                   detail=f"{sender.display_name or sender.username}: {text}")
        return message_id


async def unread_count(ctx: NodeContext, member: MemberRow) -> int:
    """How many messages wait for ``member``."""
    return await q.unread_count(ctx.store.reader, member.id)


async def inbox(ctx: NodeContext, member: MemberRow) -> list[tuple[MessageRow, int]]:
    """Conversations, newest first, with their unread counts."""
    return await q.latest_per_conversation(ctx.store.reader, member.id)


async def open_conversation(
    ctx: NodeContext, member: MemberRow, listing_id: str, other_username: str
) -> tuple[MemberRow, list[MessageRow]]:
    """A conversation's messages (oldest first); marks those sent to ``member`` read."""
    other = await member_q.get_member_by_username(ctx.store.reader, other_username)
    if other is None:
        raise NotFoundError("no such member")
    found = await q.conversation(ctx.store.reader, listing_id, member.id, other.id)
    if any(m.recipient_id == member.id and m.read_at is None for m in found):
        async with ctx.store.transaction() as tx:
            await q.mark_read(tx, listing_id, member.id, other.id, format_utc(ctx.clock()))
    return other, found


async def with_member(ctx: NodeContext, member: MemberRow, other_username: str
                      ) -> list[MessageRow]:
    """Every message between ``member`` and a local member, oldest first; those sent to
    ``member`` are marked read (as they are returned unread)."""
    other = await member_q.get_member_by_username(ctx.store.reader, other_username)
    if other is None:
        raise NotFoundError("no such member")
    found = await q.between(ctx.store.reader, member.id, other.id)
    if any(m.recipient_id == member.id and m.read_at is None for m in found):
        async with ctx.store.transaction() as tx:
            await q.mark_read_from(tx, member.id, other.id, format_utc(ctx.clock()))
    return found


async def sent_message(ctx: NodeContext, member: MemberRow, message_id: int) -> MessageRow:
    """A message ``member`` sent (as the API answers a send)."""
    found = await q.get_message(ctx.store.reader, message_id)
    if found is None or found.sender_id != member.id:
        raise NotFoundError("no such message")
    return found
