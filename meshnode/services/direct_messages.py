"""Messages between our members and members of other nodes (direct ActivityPub Notes).

Sending stores the message and queues its signed ``Create`` to the recipient's inbox in one
transaction (ARCHITECTURE flow 1); the federation layer resolves the recipient first.
Receiving runs on the inbox worker's transaction once the Note's proof has been checked.
Blocking a node (admin) or a member (by the member) stops messages both ways.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.protocol.activities import origin_of
from meshnode.protocol.direct_messages import (
    MAX_TEXT,
    DirectNote,
    build_direct_note,
    create_activity,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import messages as local_messages
from meshnode.services import names, notifications
from meshnode.services.context import NodeContext
from meshnode.services.member_limits import member_limited
from meshnode.services.publishing import queue_activity
from meshnode.services.signing import sign_as_member
from meshnode.store import direct_messages as q
from meshnode.store import federation as fq
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.direct_messages import DirectMessageRow
from meshnode.store.members import MemberRow
from meshnode.store.messages import MessageRow

RECEIVE_WINDOW = timedelta(hours=1)
MAX_ADDRESS = 300


@dataclass(frozen=True)
class RemoteMember:
    """A member of another node, resolved from its actor document."""

    actor: str
    handle: str  # name@host[:port]
    inbox: str


@dataclass(frozen=True)
class Conversation:
    """One entry of the merged conversation list (local or with another node)."""

    href: str
    other: str  # @username or name@host
    name: str  # display name (remote: from the cached actor document, cleaned)
    title: str
    body: str
    created_at: str
    unread: int
    remote: bool


def parse_address(ctx: NodeContext, value: object, name_of: str = "to"
                  ) -> tuple[str, str | None]:
    """``(username, None)`` for a member here, ``(name, host)`` for another node's member
    (``name@host[:port]``, optionally ``@``- or ``acct:``-prefixed; host lowercased)."""
    refusal = ValidationError(Text("%(field)s: a username or name@host", field=name_of),
                              {name_of: "username or name@host"})
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_ADDRESS:
        raise refusal
    text = value.strip().removeprefix("acct:").lstrip("@")
    name, at, host = text.partition("@")
    if not name or (at and not host):
        raise refusal
    if not at or host.lower() == urlsplit(ctx.config.base_url).netloc.lower():
        return name, None
    return name, host.lower()


def check_text(body: str) -> str:
    """The cleaned message text; ValidationError when empty or too long."""
    text = clean_text(body)
    if not 1 <= len(text) <= MAX_TEXT:
        raise ValidationError("empty or too long message", {
            "text": Text("1 to %(max)s characters", max=MAX_TEXT)})
    return text


async def _refuse_blocked(db: aiosqlite.Connection, member: MemberRow, actor: str) -> None:
    if await fq.is_blocked(db, origin_of(actor)):
        raise PermissionDeniedError(Text("this community does not exchange with that one"))
    if await q.is_blocked(db, member.id, actor):
        raise ConflictError(Text("you blocked this member; unblock them to write"))


@member_limited("messages")
async def send_remote(ctx: NodeContext, sender: MemberRow, *, to: RemoteMember, body: str,
                      listing_id: str | None = None) -> DirectMessageRow:
    """Store a message to a member of another node and queue its signed ``Create``."""
    text = check_text(body)
    if origin_of(to.actor) == origin_of(ctx.config.base_url):
        raise ValidationError(Text("a member of this community: write to them by username"),
                              {"to": Text("a member of this community: write to them by username")})
    await _refuse_blocked(ctx.store.reader, sender, to.actor)
    listing = None
    if listing_id is not None:
        listing = await listing_q.get_listing(ctx.store.reader, listing_id)
        if listing is None or listing.hidden:
            raise NotFoundError("no such listing")
    now = ctx.clock()
    author = urls.member_actor(ctx.config.base_url, sender.username)
    in_reply_to = await q.last_received(ctx.store.reader, sender.id, to.actor)
    note = build_direct_note(
        note_id=f"{author}/notes/{secrets.token_hex(12)}", author=author, recipient=to.actor,
        text=text, published=format_utc(now), in_reply_to=in_reply_to,
        context=listing.object_id if listing is not None else None, recipient_handle=to.handle)
    signed = sign_as_member(ctx, sender, note, now)
    async with ctx.store.transaction() as tx:
        message_id = await q.insert_direct_message(
            tx, member_id=sender.id, remote_actor=to.actor, remote_handle=to.handle,
            direction="out", listing_id=listing.id if listing else None,
            object_id=note["id"], in_reply_to=in_reply_to, body=text,
            created_at=format_utc(now))
        await queue_activity(tx, create_activity(signed), public=False, inboxes=[to.inbox],
                             now=format_utc(now))
    found = (await q.get_direct_message(ctx.store.reader, message_id)
             if message_id is not None else None)
    if found is None:  # a fresh random id does not collide; say so if it ever did
        raise ConflictError("this message id was used before; send it again")
    return found


def local_username(ctx: NodeContext, actor: str) -> str | None:
    """The username behind one of our member actor ids, else None."""
    prefix = urls.member_actor(ctx.config.base_url, "")
    name = actor[len(prefix):]
    return name if actor.startswith(prefix) and name and "/" not in name else None


async def receive_remote(ctx: NodeContext, tx: aiosqlite.Connection, note: DirectNote,
                         handle: str) -> str:
    """Store a verified direct Note for its recipient; returns the inbox outcome."""
    username = local_username(ctx, note.recipient)
    recipient = await member_q.get_member_by_username(tx, username) if username else None
    if recipient is None or not recipient.is_active:
        return "rejected: the recipient is not a member here"
    if await fq.is_blocked(tx, origin_of(note.author)):
        return "refused: blocked community"
    if await q.is_blocked(tx, recipient.id, note.author):
        return "refused: blocked by the recipient"
    now = ctx.clock()
    since = format_utc(now - RECEIVE_WINDOW)
    cap = ctx.config.limits.remote_messages_per_hour
    if cap and await q.received_since(tx, recipient.id, note.author, since) >= cap:
        return "refused: too many messages from this member this hour"
    listing = (await listing_q.get_listing_by_object_id(tx, note.context)
               if note.context else None)
    stored = await q.insert_direct_message(
        tx, member_id=recipient.id, remote_actor=note.author, remote_handle=handle,
        direction="in", listing_id=listing.id if listing else None, object_id=note.id,
        in_reply_to=note.in_reply_to, body=note.text, created_at=format_utc(now))
    if stored is None:
        return "ignored: duplicate"
    name = (await names.remote_parties(ctx, [note.author]))[note.author].name
    await notifications.notify(ctx, tx, recipient.id, "message", ref=f"remote-{stored}",
                               url=f"/messages/with/{handle}", detail=f"{name}: {note.text}")
    return "stored"


async def conversation(ctx: NodeContext, member: MemberRow, actor: str
                       ) -> list[DirectMessageRow]:
    """Messages with a remote actor, oldest first; marks what they sent as read."""
    found = await q.conversation(ctx.store.reader, member.id, actor)
    if any(m.direction == "in" and m.read_at is None for m in found):
        async with ctx.store.transaction() as tx:
            await q.mark_read(tx, member.id, actor, format_utc(ctx.clock()))
    return found


async def known_actor(ctx: NodeContext, member: MemberRow, handle: str) -> str | None:
    """The actor of a handle the member already exchanged messages with, if any."""
    return await q.actor_of_handle(ctx.store.reader, member.id, handle)


async def unread_count(ctx: NodeContext, member: MemberRow) -> int:
    """Unread messages, local and from other nodes."""
    return (await local_messages.unread_count(ctx, member)
            + await q.unread_count(ctx.store.reader, member.id))


def _local_entry(row: MessageRow, unread: int, member: MemberRow) -> Conversation:
    other = row.recipient_username if row.sender_id == member.id else row.sender_username
    return Conversation(href=f"/messages/{row.listing_id}/{other}", other=f"@{other}",
                        name=other, title=row.listing_title, body=row.body,
                        created_at=row.created_at, unread=unread, remote=False)


def _remote_entry(row: DirectMessageRow, unread: int, name: str) -> Conversation:
    return Conversation(href=f"/messages/with/{row.remote_handle}", other=row.remote_handle,
                        name=name, title=row.listing_title or row.remote_handle, body=row.body,
                        created_at=row.created_at, unread=unread, remote=True)


async def conversations(ctx: NodeContext, member: MemberRow) -> list[Conversation]:
    """Local and cross-node conversations in one list, newest first."""
    local = [_local_entry(row, unread, member)
             for row, unread in await local_messages.inbox(ctx, member)]
    latest = await q.latest_per_conversation(ctx.store.reader, member.id)
    parties = await names.remote_parties(ctx, [row.remote_actor for row, _ in latest])
    remote = [_remote_entry(row, unread, parties[row.remote_actor].name)
              for row, unread in latest]
    return sorted(local + remote, key=lambda c: c.created_at, reverse=True)


async def block(ctx: NodeContext, member: MemberRow, actor: str) -> None:
    """The member stops exchanging messages with ``actor`` (both ways)."""
    async with ctx.store.transaction() as tx:
        await q.block(tx, member.id, actor, format_utc(ctx.clock()))


async def unblock(ctx: NodeContext, member: MemberRow, actor: str) -> None:
    """Lift the member's block of ``actor``."""
    async with ctx.store.transaction() as tx:
        await q.unblock(tx, member.id, actor)


async def display_name(ctx: NodeContext, actor: str) -> str:
    """A remote member's display name (cleaned; their handle when none is cached)."""
    return (await names.remote_parties(ctx, [actor]))[actor].name


async def is_blocked(ctx: NodeContext, member: MemberRow, actor: str) -> bool:
    """Whether the member blocked ``actor``."""
    return await q.is_blocked(ctx.store.reader, member.id, actor)
