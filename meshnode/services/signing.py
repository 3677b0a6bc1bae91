"""Signing documents as a member or as the node: the one place a private key is unsealed
for an FEP-8b32 proof (https://w3id.org/fep/8b32)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meshnode import urls
from meshnode.protocol.iou import cosign
from meshnode.protocol.proofs import create_proof
from meshnode.services.context import NodeContext
from meshnode.services.members import member_identity
from meshnode.store.members import MemberRow


def member_key_id(ctx: NodeContext, username: str) -> str:
    """verificationMethod of a member's Ed25519 key."""
    return urls.ed25519_key_id(urls.member_actor(ctx.config.base_url, username))


def sign_as_member(ctx: NodeContext, member: MemberRow, document: Mapping[str, Any],
                   now: datetime) -> dict[str, Any]:
    """Add the member's FEP-8b32 proof (their Ed25519 key) to a document."""
    return create_proof(document, seed=member_identity(ctx, member).ed25519_seed,
                        verification_method=member_key_id(ctx, member.username), created=now)


def cosign_as_member(ctx: NodeContext, member: MemberRow, document: Mapping[str, Any],
                     now: datetime) -> dict[str, Any]:
    """Add the member's proof beside those already on a document (a deal receipt is signed
    by both parties and both nodes, ``protocol/receipts.py``)."""
    return cosign(document, seed=member_identity(ctx, member).ed25519_seed,
                  verification_method=member_key_id(ctx, member.username), created=now)


def community_actor(ctx: NodeContext) -> str:
    """Our community's Group actor (the node's own identity)."""
    return urls.community_actor(ctx.config.base_url, ctx.config.handle)


def node_key_id(ctx: NodeContext) -> str:
    """verificationMethod of the node's own Ed25519 key."""
    return urls.ed25519_key_id(community_actor(ctx))


def sign_as_node(ctx: NodeContext, document: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Add the node's FEP-8b32 proof (the Group actor's Ed25519 key) to a document."""
    return create_proof(document, seed=ctx.identity.ed25519_seed,
                        verification_method=node_key_id(ctx), created=now)


def cosign_as_node(ctx: NodeContext, document: Mapping[str, Any],
                   now: datetime) -> dict[str, Any]:
    """Add the node's proof beside those already on a document (a trust-line agreement is
    signed by both nodes, REFERENCE §6)."""
    return cosign(document, seed=ctx.identity.ed25519_seed,
                  verification_method=node_key_id(ctx), created=now)
