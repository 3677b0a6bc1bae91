"""Waiting-list messages in the inbox (``protocol/queue_wire.py``): check the FEP-8b32 proof
of their actor and read them, then apply on the inbox worker's transaction.

A ``Join``/``Leave`` speaks for its actor only (the place it moves is the actor's own); an
answer or ``Update`` of a place must come from the lender's origin and is applied only if
its actor is the listing's author (``services/queue_guest.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiosqlite

from meshnode.federation.keycheck import verify_actor_proof
from meshnode.federation.state import Federation
from meshnode.protocol import queue_wire as wire
from meshnode.protocol.activities import same_origin
from meshnode.protocol.errors import ProofError
from meshnode.services import queue_guest, queue_host

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]


async def prepare_queue(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """Verify a waiting-list message and return the effect that applies it."""
    kind = wire.queue_activity_kind(act)
    actor = str(act["actor"])
    ctx = federation.ctx
    await verify_actor_proof(federation.directory, act, actor)
    if kind in ("join", "leave"):
        request = wire.parse_join(act)
        receive = queue_host.receive_join if kind == "join" else queue_host.receive_leave

        async def member_effect(tx: aiosqlite.Connection) -> str:
            return await receive(ctx, tx, request)
        return member_effect
    told = wire.parse_place(act)
    if not same_origin(told.place_id, actor):
        raise ProofError("the place is not on the lender's origin")

    async def lender_effect(tx: aiosqlite.Connection) -> str:
        return await queue_guest.receive_place(ctx, tx, told, actor)
    return lender_effect
