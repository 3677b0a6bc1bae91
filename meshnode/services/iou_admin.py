"""What the admin pages show of trust lines beyond ``iou.line_report``: the agreement's proofs."""

from __future__ import annotations

import json

from meshnode.protocol.activities import parse_actor
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.iou import verify_proofs
from meshnode.services import iou
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq
from meshnode.store.iou import LineRow

PROOF_STATES = ("unsigned", "verified", "ours_only", "theirs_only", "invalid")


async def _peer_keys(ctx: NodeContext, line: LineRow) -> dict[str, bytes]:
    if not line.peer_actor:
        return {}
    row = await fq.get_actor_row(ctx.store.reader, line.peer_actor)
    if row is None:
        return {}
    try:
        return dict(parse_actor(json.loads(row["document"]),
                                fetched_from=line.peer_actor).ed25519_keys)
    except (ProtocolError, ValueError):
        return {}


async def agreement_proof(ctx: NodeContext, line: LineRow) -> str:
    """Proof status of a line's agreement, re-verified now (one of ``PROOF_STATES``).

    ``verified``: both nodes' proofs verify; ``ours_only`` / ``theirs_only``: a valid proof by
    one side only (an offer not yet countersigned); ``invalid``: a proof does not verify or is
    by an unknown key; ``unsigned``: no agreement yet.
    """
    if not line.agreement:
        return "unsigned"
    ours = iou.node_key_id(ctx)
    keys = await _peer_keys(ctx, line)
    keys[ours] = ctx.identity.ed25519_public
    try:
        methods = verify_proofs(json.loads(line.agreement), keys)
    except (ProtocolError, ValueError):
        return "invalid"
    theirs = methods - {ours}
    if ours in methods and theirs:
        return "verified"
    return "ours_only" if ours in methods else "theirs_only"
