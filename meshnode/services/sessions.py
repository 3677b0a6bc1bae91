"""Browser sessions: login with a password, server-side session rows, logout, revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from meshnode.errors import AuthenticationError, RateLimitedError
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.services.members import check_login
from meshnode.services.ratelimit import LoginThrottle
from meshnode.store import members as member_q
from meshnode.store import sessions as q
from meshnode.store.members import MemberRow
from meshnode.store.sessions import SessionRow

SESSION_LIFETIME = timedelta(days=30)
MAX_SECRET = 200


@dataclass(frozen=True)
class NewSession:
    """A session just opened: ``secret`` goes into the cookie and is never stored."""

    secret: str
    csrf_token: str
    member: MemberRow


def session_id(secret: str) -> str:
    """The stored id of a session: SHA-256 of the cookie secret (a leaked DB opens nothing)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def open_session(ctx: NodeContext, member: MemberRow) -> NewSession:
    """Create a session for an authenticated member."""
    now = ctx.clock()
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with ctx.store.transaction() as tx:
        await q.insert_session(
            tx, session_id=session_id(secret), member_id=member.id, csrf_token=csrf,
            created_at=format_utc(now), expires_at=format_utc(now + SESSION_LIFETIME),
        )
    return NewSession(secret=secret, csrf_token=csrf, member=member)


async def login(
    ctx: NodeContext, throttle: LoginThrottle, *, username: str, password: str, address: str
) -> NewSession:
    """Check a password and open a session; throttled per (account, address), per address,
    and slowed per account (``services/ratelimit.LoginPolicy``)."""
    now = ctx.clock()
    account = username.strip().lower()[:64]
    wait = throttle.retry_after(account, address, now)
    if wait:
        raise RateLimitedError("too many failed attempts; try again later", retry_after=wait)
    member = await member_q.get_member_by_username(ctx.store.reader, account)
    # check_login runs first and always: an unknown account costs the same Argon2 verify.
    if not check_login(member, password) or member is None:
        throttle.record_failure(account, address, now)
        raise AuthenticationError("wrong username or password")
    throttle.record_success(account, address)
    return await open_session(ctx, member)


async def current_session(ctx: NodeContext, secret: str) -> SessionRow | None:
    """The live session for a cookie secret, or None (expired, revoked, disabled member)."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    key = session_id(secret)
    now = format_utc(ctx.clock())
    # Kept while nothing is committed (a logout, a revocation, a disabled member all commit);
    # a session that has expired since it was read is refused here.
    found = await ctx.cached(("session", key), lambda: q.get_live_session(
        ctx.store.reader, key, now))
    if found is None or not found.member.is_active or found.expires_at <= now:
        return None
    return found


async def logout(ctx: NodeContext, secret: str) -> None:
    """Revoke the session behind a cookie secret."""
    async with ctx.store.transaction() as tx:
        await q.revoke_session(tx, session_id(secret), format_utc(ctx.clock()))


async def revoke_all(ctx: NodeContext, member_id: int, *, keep_secret: str | None = None) -> int:
    """Revoke every session of a member (password change, disabling), keeping one if asked."""
    keep = session_id(keep_secret) if keep_secret else None
    async with ctx.store.transaction() as tx:
        return await q.revoke_member_sessions(tx, member_id, format_utc(ctx.clock()), keep=keep)
