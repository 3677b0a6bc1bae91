"""Members, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshnode.config import ConfigError, validate_handle
from meshnode.errors import AuthenticationError, ConflictError, NotFoundError
from meshnode.keys import Identity, generate_identity
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, message_of
from meshnode.services.context import NodeContext
from meshnode.store import members as q
from meshnode.store.members import MemberRow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

TOKEN_PREFIX = "mn_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# OWASP's Argon2id minimum (19 MiB, 2 passes): safe on a 512 MB Raspberry Pi Zero 2.
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 2, 19 * 1024, 1
# Checked instead of a real hash when the username is unknown, disabled or has no password,
# so a failed login costs one Argon2 verify whatever the account (issue 12: 49 ms for a real
# account against 4 ms for an unknown one told attackers which usernames exist). The hash of
# a random, forgotten password, made with these parameters (a test checks them).
# (S105: the hash of a password nobody knows, not a secret.)
DUMMY_PASSWORD_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$K7Vx4QWP2wMosUoN+hQTdw$"  # noqa: S105
    "OF3pu+49dvvYRYbwnQghzJICfbl261BaY3YIEyME4Gg"
)


@dataclass(frozen=True)
class NewToken:
    """A freshly created API token: ``secret`` is shown once and never stored."""

    token_id: str
    secret: str


def password_hasher() -> PasswordHasher:
    """The Argon2id hasher. argon2 (and its C library) is imported on the first password set
    or checked: an idle node does not hold it (issue 17)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_PARALLELISM)


def _matches(stored: str, password: str) -> bool:
    """Whether ``password`` matches the Argon2 hash ``stored`` (False for a malformed hash)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return password_hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(secret: str) -> bytes:
    """SHA-256 of a bearer token: tokens are long random strings, so no slow hash is needed."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def check_username(username: str) -> str:
    """Validate a username with the same rule as handles."""
    try:
        return validate_handle(username)
    except ConfigError as exc:
        fields = {"username": "1-30 lowercase letters, digits or _"}
        raise ValidationError(message_of(exc), fields) from exc


def check_password(password: str) -> str:
    """Enforce the password length rules (no composition rules: length is what matters)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            "password must be 8 characters or more", {"password": "at least 8 characters"}
        )
    return password


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return password_hasher().hash(check_password(password))


def verify_password(member: MemberRow, password: str) -> bool:
    """True if ``password`` matches the member's stored hash."""
    if member.password_hash is None or len(password) > MAX_PASSWORD:
        return False
    return _matches(member.password_hash, password)


def check_login(member: MemberRow | None, password: str) -> bool:
    """True only for an active member with this password; always runs one Argon2 verify.

    Unknown, disabled and password-less accounts are verified against
    ``DUMMY_PASSWORD_HASH`` so that the answer takes as long as for a real account.
    """
    stored = member.password_hash if member is not None and member.is_active else None
    matched = _matches(stored or DUMMY_PASSWORD_HASH, password[:MAX_PASSWORD])
    return matched and stored is not None and len(password) <= MAX_PASSWORD


async def add_member(
    ctx: NodeContext,
    *,
    username: str,
    password: str | None,
    is_admin: bool = False,
    display_name: str = "",
) -> MemberRow:
    """Create a member with fresh Ed25519 and RSA keys; 409 if the username is taken."""
    check_username(username)
    password_hash = hash_password(password) if password is not None else None
    identity = generate_identity()
    sealed_seed, sealed_rsa = ctx.vault.seal_identity(identity)
    try:
        async with ctx.store.transaction() as tx:
            member_id = await q.insert_member(
                tx,
                username=username,
                display_name=display_name.strip()[:80] or username,
                password_hash=password_hash,
                is_admin=is_admin,
                ed25519_public=identity.ed25519_public,
                ed25519_sealed=sealed_seed,
                rsa_public_pem=identity.rsa_public_pem,
                rsa_sealed=sealed_rsa,
                created_at=format_utc(ctx.clock()),
            )
    except sqlite3.IntegrityError as exc:
        raise ConflictError(
            Text("username %(name)s is already taken", name=repr(username)),
                {"username": "already taken"}
        ) from exc
    member = await q.get_member(ctx.store.reader, member_id)
    assert member is not None
    return member


async def get_member(ctx: NodeContext, username: str) -> MemberRow:
    """The member with this username, or NotFoundError."""
    member = await q.get_member_by_username(ctx.store.reader, username)
    if member is None:
        raise NotFoundError(f"no member named {username!r}")
    return member


async def list_members(ctx: NodeContext) -> list[MemberRow]:
    """Every member, oldest first."""
    return await q.list_members(ctx.store.reader)


async def set_disabled(ctx: NodeContext, username: str, *, disabled: bool) -> MemberRow:
    """Disable a member (their tokens stop working at once) or enable them again."""
    member = await get_member(ctx, username)
    async with ctx.store.transaction() as tx:
        await q.set_disabled(tx, member.id, format_utc(ctx.clock()) if disabled else None)
    return await get_member(ctx, username)


def member_identity(ctx: NodeContext, member: MemberRow) -> Identity:
    """Unseal a member's private keys (only for signing; never logged or returned)."""
    return ctx.vault.open_identity(
        member.ed25519_sealed, member.rsa_sealed, member.rsa_public_pem
    )


async def create_token(ctx: NodeContext, username: str, *, label: str = "") -> NewToken:
    """Create a bearer token for a member; only its hash is stored."""
    member = await get_member(ctx, username)
    if not member.is_active:
        raise ConflictError(Text("member %(name)s is disabled", name=repr(username)))
    token_id = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    async with ctx.store.transaction() as tx:
        await q.insert_token(
            tx,
            token_id=token_id,
            member_id=member.id,
            token_hash=hash_token(secret),
            label=label[:80],
            created_at=format_utc(ctx.clock()),
        )
    return NewToken(token_id=token_id, secret=secret)


async def revoke_tokens(
    ctx: NodeContext, *, token_id: str | None = None, username: str | None = None
) -> int:
    """Revoke one token (by id) or every token of a member; returns how many."""
    member_id = (await get_member(ctx, username)).id if username is not None else None
    if token_id is None and member_id is None:
        raise ValidationError("give a token id or a username")
    async with ctx.store.transaction() as tx:
        return await q.revoke_tokens(
            tx, revoked_at=format_utc(ctx.clock()), token_id=token_id, member_id=member_id
        )


async def authenticate_token(ctx: NodeContext, secret: str) -> MemberRow:
    """The active member owning this bearer token, or AuthenticationError."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise AuthenticationError("invalid API token")
    member = await q.member_for_token_hash(ctx.store.reader, hash_token(secret))
    if member is None:
        raise AuthenticationError("invalid or revoked API token")
    if not member.is_active:
        raise AuthenticationError("this member account is disabled")
    return member
