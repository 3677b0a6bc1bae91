"""Deal activities in the inbox: check the FEP-8b32 proof of their actor, then apply.

``Offer``/``Accept``/``Reject``/``Update`` carry the actor's own proof; feedback arrives as
``Create`` of a ``Note`` carrying its author's proof. A forged or altered message fails here
and changes nothing (REFERENCE §3: a proof verifies only with a key the actor's document lists).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiosqlite

from meshnode.federation.keycheck import verify_actor_proof
from meshnode.federation.receipts import prepare_receipt
from meshnode.federation.state import Federation
from meshnode.protocol.activities import same_origin
from meshnode.protocol.deals import deal_activity_kind
from meshnode.protocol.errors import ProofError
from meshnode.services import deal_inbox
from meshnode.services.receipts import is_receipt_update

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]


async def prepare_deal(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """Verify a deal message and return the effect that applies it."""
    kind = deal_activity_kind(act)
    actor = str(act["actor"])
    ctx = federation.ctx
    if kind == "feedback":
        note = act["object"]
        await verify_actor_proof(federation.directory, note, actor)
        if not same_origin(str(note.get("id")), actor):
            raise ProofError("the feedback is not on its author's origin")

        async def feedback(tx: aiosqlite.Connection) -> str:
            return await deal_inbox.receive_feedback(ctx, tx, note, actor)
        return feedback
    await verify_actor_proof(federation.directory, act, actor)
    if kind == "update" and is_receipt_update(act):  # a deal receipt being countersigned
        return await prepare_receipt(federation, act)
    if kind == "offer" and not same_origin(str(act["object"].get("id")), actor):
        raise ProofError("the Agreement is not on the booker's origin")
    receive = {"offer": deal_inbox.receive_offer, "answer": deal_inbox.receive_answer,
               "update": deal_inbox.receive_update}[str(kind)]

    async def effect(tx: aiosqlite.Connection) -> str:
        outcome = await receive(ctx, tx, act)
        if kind in ("answer", "update"):  # a paid deal may now be due: wake the payer
            federation.deals_touched = True  # (after the inbox transaction commits)
        return outcome
    return effect
