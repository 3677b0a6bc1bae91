"""Signature verdicts shown with listings: the check kept per version, read against the
author's keys as known now (``protocol/trust.py``); re-verification of local listings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from meshnode import urls
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.multikey import fingerprint
from meshnode.protocol.proofs import proof_verification_method, verify_proof
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.trust import (
    RULE_LOCAL,
    ListingTrust,
    SignatureCheck,
    SignatureStatus,
    failed,
    verdict,
)
from meshnode.services.context import NodeContext
from meshnode.services.verified import verification_token
from meshnode.store import members as member_q
from meshnode.store import trust as trust_q
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow


def local_check(ctx: NodeContext, author: MemberRow, now: datetime) -> SignatureCheck:
    """The check kept with a version this node just signed with ``author``'s own key."""
    key_id = urls.ed25519_key_id(urls.member_actor(ctx.config.base_url, author.username))
    return SignatureCheck(True, key_id, fingerprint(author.ed25519_public), RULE_LOCAL,
                          format_utc(now))


def verify_with_key(document_text: str, *, key_id: str, public_key: bytes, rule: str,
                    checked_at: str) -> SignatureCheck:
    """Verify a stored signed document's eddsa-jcs-2022 proof with one known key."""
    print_ = fingerprint(public_key)
    try:
        document = json.loads(document_text)
        if proof_verification_method(document) != key_id:
            return failed(rule, checked_at, "the proof names another key", key_id, print_)
        verify_proof(document, public_key=public_key)
    except (ProtocolError, ValueError) as exc:
        return failed(rule, checked_at, str(exc), key_id, print_)
    return SignatureCheck(True, key_id, print_, rule, checked_at)


async def check_local(ctx: NodeContext, row: ListingRow) -> SignatureCheck:
    """Verify a local listing's stored version against its author's key now, and keep it."""
    checked_at = format_utc(ctx.clock())
    member = (await member_q.get_member(ctx.store.reader, row.author_id)
              if row.author_id is not None else None)
    if member is None:
        check = failed(RULE_LOCAL, checked_at, "the author is no longer a member here")
    else:
        key_id = urls.ed25519_key_id(urls.member_actor(ctx.config.base_url, member.username))
        check = verify_with_key(row.signed_object, key_id=key_id,
                                public_key=member.ed25519_public, rule=RULE_LOCAL,
                                checked_at=checked_at)
    await keep_check(ctx, row, check)
    return check


async def keep_check(ctx: NodeContext, row: ListingRow, check: SignatureCheck) -> None:
    """Store ``check`` with the listing's current version."""
    async with ctx.store.transaction() as tx:
        await trust_q.record_check(tx, row.id, row.version, check)


async def signature_verdicts(ctx: NodeContext,
                             rows: Sequence[ListingRow]) -> dict[str, ListingTrust]:
    """Each listing's verdict: two queries for a whole page of listings.

    A remote listing's key counts as changed when the author's cached actor document no
    longer lists the key that verified it, or lists another key under that id.
    """
    reader = ctx.store.reader
    checks = await trust_q.current_checks(reader, [row.id for row in rows])
    remote_authors = sorted({row.author_uri for row in rows if not row.is_local})
    keys = await trust_q.ed25519_keys_of(reader, remote_authors)
    return {row.id: verdict(checks.get(row.id),
                            None if row.is_local else keys.get(row.author_uri))
            for row in rows}


async def _live_remote(ctx: NodeContext, row: ListingRow,
                       check: SignatureCheck) -> SignatureCheck | None:
    """The stored document verified again with the cached key its check names; None if
    that key is no longer cached (the verdict then says the key changed)."""
    key = await trust_q.ed25519_material(ctx.store.reader, check.key_id or "")
    if key is None or key[0] != row.author_uri:
        return None
    return verify_with_key(row.signed_object, key_id=check.key_id or "",
                           public_key=key[1], rule=check.rule, checked_at=check.checked_at)


def _local_failure(ctx: NodeContext, document_text: str, key_id: str,
                   public_key: bytes) -> SignatureCheck | None:
    """``verify_with_key`` for a local listing: None when the document verifies, else the
    failed check. A success is kept (``services/verified.py``: the outcome depends only on
    the exact text and the key), so the same bytes with the same key are not checked twice;
    other bytes are checked afresh (an Ed25519 check with its base58 and JCS work was a
    third of a listing page, issue 17)."""
    token = verification_token(document_text, key_id, public_key)
    if token in ctx.verified:
        return None
    check = verify_with_key(document_text, key_id=key_id, public_key=public_key,
                            rule=RULE_LOCAL, checked_at=format_utc(ctx.clock()))
    if not check.verified:
        return check
    ctx.verified.add(token)
    return None


async def signature_verdict(ctx: NodeContext, row: ListingRow) -> ListingTrust:
    """One listing's verdict, for its page and ``GET /api/v1/listings/{id}``.

    The stored document is verified again (one Ed25519 check) with the key the kept check
    names, so a row altered in the database after its check never shows as verified. A
    local listing stored before checks were kept is checked and the result kept.
    """
    found = (await signature_verdicts(ctx, [row]))[row.id]
    if row.is_local:
        if found.check is None:
            return verdict(await check_local(ctx, row), None)
        author_id = row.author_id
        member = (await ctx.cached(("member", author_id), lambda: member_q.get_member(
            ctx.store.reader, author_id)) if author_id is not None else None)
        if member is None:
            return verdict(None, None)
        failure = _local_failure(ctx, row.signed_object, found.check.key_id or "",
                                 member.ed25519_public)
        return found if failure is None else verdict(failure, None)
    if found.status is SignatureStatus.VERIFIED and found.check is not None:
        live = await _live_remote(ctx, row, found.check)
        if live is not None and not live.verified:
            return verdict(live, None)
    return found
