"""E-mail notifications: verified addresses, per-member choices, and the mail outbox.

Nothing here talks SMTP: mails are rows written on the transaction of their cause (a
notification, a verification request, the daily digest) and sent by the mail worker
(``federation/mail.py``). Without ``[email]`` in config.toml no row is ever written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiosqlite

from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.mail import parse_address
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.store import email as q
from meshnode.store import notifications as nq
from meshnode.store.email import MailRow
from meshnode.store.members import MemberRow
from meshnode.store.notifications import NotificationRow

TOKEN_LIFETIME = timedelta(hours=48)
RESEND_AFTER = timedelta(minutes=10)
NO_EMAIL = "this community does not send e-mail"
WAIT_RESEND = "a verification mail was sent a few minutes ago; check your inbox or wait"
NO_ADDRESS = "add an e-mail address first"


@dataclass(frozen=True)
class MailText:
    """A mail's subject and plain-text body, in the member's language."""

    subject: str
    body: str


@dataclass(frozen=True)
class EmailSettings:
    """What the member chose, and whether this community sends mail at all."""

    available: bool
    address: str | None = None
    verified: bool = False
    enabled: bool = True
    digest: bool = False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_link(ctx: NodeContext, token: str) -> str:
    """The link a verification mail carries."""
    return f"{ctx.config.base_url}/email/verify/{token}"


async def email_settings(ctx: NodeContext, member: MemberRow) -> EmailSettings:
    """The member's address and choices."""
    row = await q.get_email(ctx.store.reader, member.id)
    if row is None:
        return EmailSettings(available=ctx.config.email is not None)
    return EmailSettings(available=ctx.config.email is not None, address=row.address,
                         verified=row.verified_at is not None, enabled=row.enabled,
                         digest=row.digest)


async def set_address(ctx: NodeContext, member: MemberRow, address: object) -> EmailSettings:
    """Record an address and mail it a verification link (nothing else goes to it before)."""
    if ctx.config.email is None:
        raise ConflictError(NO_EMAIL)
    wanted = parse_address(address)
    now = ctx.clock()
    token = secrets.token_urlsafe(32)
    async with ctx.store.transaction() as tx:
        row = await q.get_email(tx, member.id)
        if row is not None and row.token_expires_at is not None and format_utc(
                now + TOKEN_LIFETIME - RESEND_AFTER) < row.token_expires_at:
            raise ConflictError(WAIT_RESEND)
        await q.set_address(tx, member_id=member.id, address=wanted,
                            token_hash=_token_hash(token),
                            token_expires_at=format_utc(now + TOKEN_LIFETIME), now=format_utc(now))
        await q.queue_mail(tx, member_id=member.id, kind="verify", address=wanted,
                           payload=json.dumps({"link": verify_link(ctx, token)}),
                           now=format_utc(now))
    return await email_settings(ctx, member)


async def verify_address(ctx: NodeContext, token: str) -> None:
    """Confirm the address a verification link was sent to (NotFoundError if unknown/old)."""
    if not 20 <= len(token) <= 100:
        raise NotFoundError("this verification link is unknown or expired")
    async with ctx.store.transaction() as tx:
        if await q.verify(tx, _token_hash(token), format_utc(ctx.clock())) is None:
            raise NotFoundError("this verification link is unknown or expired")


async def set_choices(ctx: NodeContext, member: MemberRow, *, enabled: bool,
                      digest: bool) -> EmailSettings:
    """Turn mail on/off and choose one mail per notification or a daily digest."""
    async with ctx.store.transaction() as tx:
        if await q.get_email(tx, member.id) is None:
            raise ConflictError(NO_ADDRESS)
        await q.set_choices(tx, member.id, enabled=enabled, digest=digest)
    return await email_settings(ctx, member)


async def remove_address(ctx: NodeContext, member: MemberRow) -> EmailSettings:
    """Forget the member's address; nothing more is sent to it."""
    async with ctx.store.transaction() as tx:
        await q.remove_address(tx, member.id)
    return await email_settings(ctx, member)


async def queue_notification(ctx: NodeContext, tx: aiosqlite.Connection, member_id: int,
                             item_id: int) -> None:
    """On the notification's transaction: queue its mail if the member wants one now."""
    if ctx.config.email is not None:
        await q.queue_if_immediate(tx, member_id=member_id, item_id=item_id,
                                   now=format_utc(ctx.clock()))


async def queue_digests(ctx: NodeContext) -> int:
    """Once a day from ``digest_hour`` (community time): one mail of unread items per
    digest subscriber who has new ones. Returns the mails queued."""
    if ctx.config.email is None:
        return 0
    now = ctx.clock()
    local = now.astimezone(ZoneInfo(ctx.config.timezone))
    if local.hour < ctx.config.email.digest_hour:
        return 0
    today = local.date().isoformat()
    queued = 0
    for row in await q.digest_members(ctx.store.reader, today):
        ids = await q.unread_since(ctx.store.reader, row.member_id, row.last_digest_item)
        async with ctx.store.transaction() as tx:
            if ids:
                await q.queue_mail(tx, member_id=row.member_id, kind="digest",
                                   address=row.address, payload=json.dumps(ids),
                                   now=format_utc(now))
                queued += 1
            await q.mark_digest(tx, row.member_id, today=today,
                                last_item=max(ids, default=0))
    return queued


async def due_mails(ctx: NodeContext) -> list[MailRow]:
    """Mails the worker should try now."""
    return await q.due_mails(ctx.store.reader, format_utc(ctx.clock()))


async def mail_items(ctx: NodeContext, mail: MailRow) -> list[NotificationRow]:
    """The notifications a notification or digest mail reports (still the member's own)."""
    ids = json.loads(mail.payload) if mail.kind != "verify" else []
    return await nq.by_ids(ctx.store.reader, mail.member_id, [int(i) for i in ids])


async def record_sent(ctx: NodeContext, mail: MailRow) -> None:
    """The SMTP server accepted the mail."""
    async with ctx.store.transaction() as tx:
        await q.mark_sent(tx, mail.id, format_utc(ctx.clock()))


async def record_failure(ctx: NodeContext, mail: MailRow, *, error: str,
                         delay: float | None) -> None:
    """A failed attempt: retried after ``delay`` seconds, or given up (None)."""
    retry_at = None if delay is None else format_utc(ctx.clock() + timedelta(seconds=delay))
    async with ctx.store.transaction() as tx:
        await q.mark_failed(tx, mail.id, error=error, retry_at=retry_at)
