"""Reports across nodes at the federation edge: where a Flag goes, and what arrives.

The Flag's HTTP signature was checked at the door (key owner = actor); here the worker reads
the sender's actor document from the directory (cached by that check) for its type (a
Person reported openly, else the community reported anonymously) and its inbox (where the
answer goes), then hands the checked Flag to ``services/flags.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiosqlite

from meshnode.federation.state import Federation
from meshnode.protocol.flags import is_flag_answer, parse_flag, parse_flag_answer
from meshnode.services import flags as service
from meshnode.services.flags import InboxOf
from meshnode.store.listings import ListingRow

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]


def inbox_of(federation: Federation) -> InboxOf:
    """Where a report on a remote listing goes: its author's node's (shared) inbox, from the
    author's actor document (cached when the listing's proof was checked)."""
    async def find(listing: ListingRow) -> str:
        actor = await federation.directory.get_actor(listing.author_uri)
        return actor.delivery_inbox
    return find


async def prepare_flag(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """The effect of a Flag (queue it for our moderators) or of an answer to ours."""
    ctx = federation.ctx
    actor = str(act["actor"])
    if is_flag_answer(act):
        answer = parse_flag_answer(act)

        async def answered(tx: aiosqlite.Connection) -> str:
            return await service.receive_answer(ctx, tx, answer, actor)
        return answered
    flag = parse_flag(act)
    sender = await federation.directory.get_actor(flag.actor)

    async def received(tx: aiosqlite.Connection) -> str:
        return await service.receive_flag(ctx, tx, flag, from_person=sender.type == "Person",
                                          reply_inbox=sender.delivery_inbox)
    return received
