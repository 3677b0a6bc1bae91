"""Invitation links: the only way to join. Single use, expiring, revocable."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from meshnode.errors import ConflictError, NotFoundError
from meshnode.keys import generate_identity
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import parse_int
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.members import check_username, hash_password
from meshnode.services.permissions import require_admin
from meshnode.store import invitations as q
from meshnode.store import members as member_q
from meshnode.store.invitations import InvitationRow
from meshnode.store.members import MemberRow

DEFAULT_DAYS = 7
MAX_DAYS = 90
MAX_SECRET = 100


@dataclass(frozen=True)
class NewInvitation:
    """A fresh invitation: ``secret`` is part of the link and shown once."""

    invitation_id: str
    secret: str
    expires_at: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def check_days(value: object) -> int:
    """An invitation's validity in days (a number or a form's text), 1 to ``MAX_DAYS``."""
    try:
        return parse_int(value, "days", low=1, high=MAX_DAYS)
    except ValidationError as exc:
        raise ValidationError("invalid validity", {
            "days": Text("between 1 and %(max)s days", max=MAX_DAYS)}) from exc


async def create_invitation(
    ctx: NodeContext, admin: MemberRow, *, days: int = DEFAULT_DAYS, note: str = ""
) -> NewInvitation:
    """An admin creates a single-use invitation valid for ``days`` days."""
    require_admin(admin, "only administrators can invite")
    check_days(days)
    now = ctx.clock()
    invitation_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    expires = format_utc(now + timedelta(days=days))
    async with ctx.store.transaction() as tx:
        await q.insert_invitation(
            tx, invitation_id=invitation_id, token_hash=_hash(secret), created_by=admin.id,
            note=note.strip()[:200], created_at=format_utc(now), expires_at=expires,
        )
    return NewInvitation(invitation_id=invitation_id, secret=secret, expires_at=expires)


async def usable_invitation(ctx: NodeContext, secret: str) -> InvitationRow:
    """The invitation behind a link, if it can still be used (NotFoundError otherwise)."""
    if not secret or len(secret) > MAX_SECRET:
        raise NotFoundError("this invitation link is not valid")
    row = await q.get_by_hash(ctx.store.reader, _hash(secret))
    if row is None or row.revoked_at is not None:
        raise NotFoundError("this invitation link is not valid")
    if row.used_at is not None:
        raise NotFoundError("this invitation link was already used")
    if row.expires_at <= format_utc(ctx.clock()):
        raise NotFoundError("this invitation link has expired")
    return row


async def redeem(
    ctx: NodeContext, secret: str, *, username: str, password: str, display_name: str = ""
) -> MemberRow:
    """Create the member an invitation was for; the link is consumed in the same transaction."""
    await usable_invitation(ctx, secret)
    errors: dict[str, str] = {}
    try:
        check_username(username)
    except ValidationError as exc:
        errors.update(exc.fields)
    try:
        password_hash = hash_password(password)
    except ValidationError as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationError("please correct the highlighted fields", errors)
    identity = generate_identity()
    sealed_seed, sealed_rsa = ctx.vault.seal_identity(identity)
    now = format_utc(ctx.clock())
    try:
        async with ctx.store.transaction() as tx:
            invitation_id = await q.claim(tx, _hash(secret), now)
            if invitation_id is None:
                raise NotFoundError("this invitation link was already used or has expired")
            member_id = await member_q.insert_member(
                tx, username=username, display_name=display_name.strip()[:80] or username,
                password_hash=password_hash, is_admin=False,
                ed25519_public=identity.ed25519_public, ed25519_sealed=sealed_seed,
                rsa_public_pem=identity.rsa_public_pem, rsa_sealed=sealed_rsa, created_at=now,
            )
            await q.set_used_by(tx, invitation_id, member_id)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(
            Text("username %(name)s is already taken", name=repr(username)),
                {"username": "already taken"}
        ) from exc
    member = await member_q.get_member(ctx.store.reader, member_id)
    assert member is not None
    return member


async def list_invitations(ctx: NodeContext) -> list[InvitationRow]:
    """Recent invitations for the admin page."""
    return await q.list_invitations(ctx.store.reader)


async def revoke_invitation(ctx: NodeContext, admin: MemberRow, invitation_id: str) -> None:
    """An admin cancels an unused invitation."""
    require_admin(admin, "only administrators can revoke invitations")
    async with ctx.store.transaction() as tx:
        if not await q.revoke(tx, invitation_id, format_utc(ctx.clock())):
            raise ConflictError("this invitation is already used or revoked")
