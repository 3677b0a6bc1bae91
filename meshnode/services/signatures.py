"""Checking a stored listing's proof against its author's key, for the "signature verified" mark."""

from __future__ import annotations

import json
from enum import Enum

from meshnode import urls
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.proofs import proof_verification_method, verify_proof
from meshnode.services.context import NodeContext
from meshnode.store import members as member_q
from meshnode.store.listings import ListingRow


class SignatureStatus(Enum):
    """What the page can honestly say about a listing's signature."""

    VERIFIED = "verified"
    INVALID = "invalid"
    UNKNOWN_KEY = "unknown_key"  # remote author whose key we do not hold (federation seam)


async def author_public_key(ctx: NodeContext, row: ListingRow) -> tuple[bytes, str] | None:
    """(raw Ed25519 key, its verification method id) of the listing's author, if known here.

    Local authors only for now; the federation layer will add its remote key cache here.
    """
    if not row.is_local or row.author_id is None:
        return None
    member = await member_q.get_member(ctx.store.reader, row.author_id)
    if member is None:
        return None
    actor = urls.member_actor(ctx.config.base_url, member.username)
    return member.ed25519_public, urls.ed25519_key_id(actor)


async def listing_signature(ctx: NodeContext, row: ListingRow) -> SignatureStatus:
    """Verify the stored signed document (eddsa-jcs-2022) with the author's key."""
    key = await author_public_key(ctx, row)
    if key is None:
        return SignatureStatus.UNKNOWN_KEY
    public_key, method = key
    try:
        document = json.loads(row.signed_object)
        if proof_verification_method(document) != method:
            return SignatureStatus.INVALID
        verify_proof(document, public_key=public_key)
    except (ProtocolError, ValueError):
        return SignatureStatus.INVALID
    return SignatureStatus.VERIFIED
