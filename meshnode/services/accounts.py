"""What members change about themselves (profile, password) and admins about members."""

from __future__ import annotations

from dataclasses import dataclass

from meshnode.config import LOCALES
from meshnode.errors import ConflictError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import parse_int, parse_optional_int
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import message_of
from meshnode.services.context import NodeContext
from meshnode.services.members import get_member, hash_password, verify_password
from meshnode.services.permissions import require_admin
from meshnode.store import members as q
from meshnode.store import sessions as session_q
from meshnode.store import settings as settings_q
from meshnode.store.members import MemberRow

MAX_BIO = 1000
MAX_NAME = 80
MAX_ABOUT = 2000


async def update_profile(
    ctx: NodeContext, member: MemberRow, *, display_name: str, bio: str, locale: str
) -> MemberRow:
    """Change display name, bio and preferred language ("" = follow the browser)."""
    name, about = clean_text(display_name), clean_text(bio)
    errors: dict[str, str] = {}
    if not 1 <= len(name) <= MAX_NAME:
        errors["display_name"] = f"between 1 and {MAX_NAME} characters"
    if len(about) > MAX_BIO:
        errors["bio"] = f"at most {MAX_BIO} characters"
    if locale and locale not in LOCALES:
        errors["locale"] = "unknown language"
    if errors:
        raise ValidationError("please correct the highlighted fields", errors)
    async with ctx.store.transaction() as tx:
        await q.update_profile(tx, member.id, display_name=name, bio=about, locale=locale or None)
    return await get_member(ctx, member.username)


async def change_password(
    ctx: NodeContext, member: MemberRow, *, current: str, new: str, keep_session: str
) -> int:
    """Replace the password and revoke every other session; returns how many were revoked."""
    if not verify_password(member, current):
        raise ValidationError("wrong current password", {"current": "wrong password"})
    try:
        password_hash = hash_password(new)
    except ValidationError as exc:
        raise ValidationError(message_of(exc), {"new": "at least 8 characters"}) from exc
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        await q.set_password_hash(tx, member.id, password_hash)
        return await session_q.revoke_member_sessions(tx, member.id, now, keep=keep_session)


@dataclass(frozen=True)
class MemberChange:
    """An admin action on a member."""

    disabled: bool | None = None
    admin: bool | None = None


async def admin_change_member(
    ctx: NodeContext, admin: MemberRow, username: str, change: MemberChange
) -> MemberRow:
    """Disable/enable or promote/demote a member (never the last active admin)."""
    require_admin(admin, "only administrators can manage members")
    target = await get_member(ctx, username)
    losing_admin = target.is_admin and target.is_active and (
        change.disabled is True or change.admin is False
    )
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        if losing_admin and await q.count_admins(tx) <= 1:
            raise ConflictError("the community needs at least one active administrator")
        if change.disabled is not None:
            await q.set_disabled(tx, target.id, now if change.disabled else None)
            if change.disabled:
                await session_q.revoke_member_sessions(tx, target.id, now)
        if change.admin is not None:
            await q.set_admin(tx, target.id, change.admin)
    return await get_member(ctx, username)


@dataclass(frozen=True)
class CommunitySettings:
    """Settings admins edit on the web (on top of config.toml)."""

    about: str = ""
    invite_days: int = 7


async def get_settings(ctx: NodeContext) -> CommunitySettings:
    """The current community settings (kept until anything is committed: the home page
    shows them to every visitor)."""
    raw = await ctx.cached(("community_settings",),
                           lambda: settings_q.get_all(ctx.store.reader))
    days = raw.get("invite_days", "7")
    return CommunitySettings(about=raw.get("about", ""),
                             invite_days=parse_optional_int(days, "invite_days", low=1, high=90,
                                                            default=7))


async def save_settings(
    ctx: NodeContext, admin: MemberRow, *, about: str, invite_days: str
) -> CommunitySettings:
    """Validate and store community settings."""
    require_admin(admin, "only administrators can change settings")
    text = clean_text(about)
    errors: dict[str, str] = {}
    if len(text) > MAX_ABOUT:
        errors["about"] = f"at most {MAX_ABOUT} characters"
    days = None
    try:
        days = parse_int(invite_days, "invite_days", low=1, high=90)
    except ValidationError:
        errors["invite_days"] = "between 1 and 90 days"
    if errors or days is None:
        raise ValidationError("please correct the highlighted fields", errors)
    async with ctx.store.transaction() as tx:
        await settings_q.put(tx, "about", text)
        await settings_q.put(tx, "invite_days", str(days))
    return await get_settings(ctx)
