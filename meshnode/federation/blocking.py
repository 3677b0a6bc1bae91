"""Blocking a whole node, explicitly: preview first, then apply on confirmation, reversible.

The preview (``services/node_blocks.preview``) changes nothing. Applying blocks the origin
at the door and drops what was waiting for it (``peering.block_peer``, listings kept but
hidden), then ends the deals and freezes the line; the notices of those two (the deal's
cancel Update, the line's freeze) are queued after the block so the other node still hears
of them. Unblocking lifts the door's block, shows the listings again and unfreezes the line;
peering again is a separate, explicit step (``meshnode peer add``).
"""

from __future__ import annotations

from typing import Any

from meshnode.errors import ConflictError, NotFoundError
from meshnode.federation import peering
from meshnode.protocol.activities import origin_of, parse_acct
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import node_blocks
from meshnode.services.context import NodeContext
from meshnode.services.node_blocks import BlockPreview
from meshnode.services.permissions import require_admin
from meshnode.store import federation as fq
from meshnode.store.members import MemberRow


def origin_from(ctx: NodeContext, text: str) -> str:
    """The origin a node URL names; our own is refused."""
    try:
        origin = origin_of(text.strip())
    except ValidationError as exc:
        raise ValidationError(Text("give a node URL"), {"peer": Text("a node URL")}) from exc
    if origin == origin_of(ctx.config.base_url):
        raise ValidationError(Text("this is our own node"), {"peer": Text("another node")})
    return origin


async def block_key(ctx: NodeContext, text: str) -> str:
    """The peer a block names: a node URL's origin, or for a handle (``name@host``, the
    ``acct:`` key of a peer row not resolved yet) the peer row it matches, else its
    ``acct:`` key, as ``peering.block_peer`` keys it."""
    text = text.strip()
    if text.startswith(("http://", "https://")) or "@" not in text:
        return origin_from(ctx, text)
    try:
        name, host = parse_acct(text)
    except ValidationError as exc:
        raise ValidationError(Text("give a node URL or a handle like name@host"),
                              {"peer": Text("a node URL or name@host")}) from exc
    if origin_of(ctx.config.base_url) in (f"http://{host}", f"https://{host}"):
        raise ValidationError(Text("this is our own node"), {"peer": Text("another node")})
    try:
        return await peering.find_peer(ctx, f"acct:{name}@{host}")
    except NotFoundError:
        return f"acct:{name}@{host}"


async def preview_block(ctx: NodeContext, admin: MemberRow, text: str) -> BlockPreview:
    """What blocking the node would do."""
    require_admin(admin, "only administrators block communities")
    return await node_blocks.preview(ctx, await block_key(ctx, text))


async def block_node(ctx: NodeContext, admin: MemberRow | None, text: str, *,
                     confirm: object) -> BlockPreview:
    """Block the node and apply the effects the preview listed (``confirm`` must be true)."""
    require_admin(admin, "only administrators block communities")
    origin = await block_key(ctx, text)
    if confirm is not True:
        raise ValidationError(Text("look at the preview, then confirm"),
                              {"confirm": Text("true, after reading the preview")})
    await peering.block_peer(ctx, origin)
    return await node_blocks.apply_effects(ctx, admin, origin)


async def unblock_node(ctx: NodeContext, admin: MemberRow, text: str) -> dict[str, Any]:
    """Lift a block: the door opens again, listings show, the line is unfrozen."""
    require_admin(admin, "only administrators block communities")
    origin = await block_key(ctx, text)
    async with ctx.store.transaction() as tx:
        peer = await fq.get_peer(tx, origin)
        if peer is None:
            raise NotFoundError(Text("no such peer"))
        if not peer["blocked"]:
            raise ConflictError(Text("this community is not blocked"))
        await fq.update_peer(tx, origin, format_utc(ctx.clock()), blocked=0)
    return await node_blocks.undo_effects(ctx, admin, origin)
