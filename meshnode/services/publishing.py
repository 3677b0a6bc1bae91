"""Queue outgoing activities: the outbox log row and one delivery row per inbox.

Called inside the caller's write transaction, so a listing change and the deliveries that
announce it commit together or not at all (ARCHITECTURE flow 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.protocol.activities import listing_activity, origin_of
from meshnode.protocol.canonical import compact_json
from meshnode.protocol.notes import (
    NoteSettings,
    build_note,
    note_activity,
    note_id_for,
    note_tombstone,
)
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.vocab import KNOWN_CONTEXTS
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq
from meshnode.store import outbox as oq
from meshnode.store.new_listings import Outgoing

# Built once (json.dumps with options builds an encoder per call); it keeps no state.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(document: Mapping[str, Any]) -> str:
    """Compact JSON as sent on the wire (by orjson when that provably writes the same:
    ``protocol.canonical.compact_json``)."""
    text = compact_json(document, KNOWN_CONTEXTS)
    return text if text is not None else _ENCODER.encode(document)


# Stands for an activity's object while the rest of it is encoded: a private-use string
# none of an Announce's own fields (our ids, audience, time) can contain.
_SPLICE = "\ue000object\ue000"
_SPLICE_JSON = json.dumps(_SPLICE, ensure_ascii=False)


def around_object(document: Mapping[str, Any], key: str) -> tuple[str, str]:
    """``dumps(document)`` cut where ``document[key]``'s JSON goes: the text before it and
    the text after it, so ``before + dumps(document[key]) + after == dumps(document)`` (a
    relayed Announce is logged without its object, which is the listing's stored text:
    ``store.outbox.BODY`` puts it back in between)."""
    head, found, tail = dumps({**document, key: _SPLICE}).partition(_SPLICE_JSON)
    if not found:
        raise AssertionError("the splice mark was not encoded")  # pragma: no cover
    return head, tail


async def queue_activity(
    tx: aiosqlite.Connection,
    activity: Mapping[str, Any],
    *,
    public: bool,
    inboxes: Sequence[str],
    now: str,
    object_of: str | None = None,
) -> int | None:
    """Log ``activity`` and queue its deliveries; None if this activity id was logged before.
    With ``object_of``, the id of the listing whose stored ``signed_object`` is exactly
    ``dumps(activity["object"])``, the log points at that text instead of copying it."""
    obj = activity.get("object")
    object_id = obj.get("id") if isinstance(obj, Mapping) else obj
    body, tail = around_object(activity, "object") if object_of else (dumps(activity), None)
    seq = await oq.insert_activity(
        tx, activity_id=str(activity["id"]), actor=str(activity["actor"]),
        activity_type=str(activity["type"]),
        object_id=object_id if isinstance(object_id, str) else None,
        public=public, body=body, created_at=now, object_of=object_of, body_tail=tail,
    )
    if seq is None:
        return None
    for inbox in dict.fromkeys(inboxes):
        await oq.insert_delivery(tx, outbox_seq=seq, host=origin_of(inbox), inbox=inbox, now=now)
    return seq


async def publish_listing_change(
    ctx: NodeContext,
    tx: aiosqlite.Connection,
    *,
    activity_type: str,
    signed_object: str,
    author_username: str,
    version: int,
) -> None:
    """Queue Create / Update / Delete of a local listing to the followers' shared inboxes.

    Followers reading Proposals (meshnode peers, FEP-0837 servers) get the signed document
    from its author; the Group's microblog followers get a ``Note`` (``protocol.notes``).
    """
    base = ctx.config.base_url
    actor = urls.member_actor(base, author_username)
    community = urls.community_actor(base, ctx.config.handle)
    now = format_utc(ctx.clock())
    document = json.loads(signed_object)
    activity = listing_activity(activity_type, document, actor=actor, version=version,
                                published=now)
    inboxes = await fq.delivery_inboxes(tx, [community, actor], reader="proposal")
    await queue_activity(tx, activity, public=True, inboxes=inboxes, now=now)
    note_inboxes = await fq.delivery_inboxes(tx, [community], reader="note")
    if note_inboxes:
        note = listing_note(ctx, activity_type, document, version=version, now=now)
        await queue_activity(tx, note, public=False, inboxes=note_inboxes, now=now)


def new_listing_create(ctx: NodeContext, signed: Mapping[str, Any], *, author_username: str,
                       now: str) -> tuple[Outgoing, tuple[str, ...], Callable[[], Outgoing]]:
    """What ``publish_listing_change`` queues for a new listing, for ``store.new_listings``
    to write in the writer's thread: the Create for the followers of the community and the
    author reading Proposals, whose followers get the Group's Note (the community's), and
    that Note's Create, built only if someone reads Notes."""
    base = ctx.config.base_url
    actor = urls.member_actor(base, author_username)
    community = urls.community_actor(base, ctx.config.handle)
    activity = listing_activity("Create", signed, actor=actor, version=1, published=now)
    create = Outgoing(activity, dumps(activity), public=True, followed=(community, actor),
                      reader="proposal")

    def note() -> Outgoing:
        made = listing_note(ctx, "Create", signed, version=1, now=now)
        return Outgoing(made, dumps(made), public=False, followed=(community,), reader="note")

    return create, (community,), note


def note_object(ctx: NodeContext, document: Mapping[str, Any]) -> dict[str, Any]:
    """The Group's Note mirroring a local listing's signed Proposal (``protocol.notes``)."""
    config = ctx.config
    settings = NoteSettings(
        note_id=note_id_for(str(document["id"])),
        group_id=urls.community_actor(config.base_url, config.handle),
        currency_code=config.currency.symbol, language=config.default_locale,
        tag_url=urls.category_search_template(config.base_url))
    return build_note(document, settings)


def listing_note(ctx: NodeContext, activity_type: str, document: Mapping[str, Any], *,
                 version: int, now: str) -> dict[str, Any]:
    """The Group's Create / Update / Delete of the Note mirroring a listing document."""
    community = urls.community_actor(ctx.config.base_url, ctx.config.handle)
    obj = (note_tombstone(note_id_for(str(document["id"]))) if activity_type == "Delete"
           else note_object(ctx, document))
    return note_activity(activity_type, obj, group_id=community, version=version,
                         published=now)


async def delivery_summary(ctx: NodeContext) -> list[dict[str, Any]]:
    """Per remote host, ordered by host: ``host``, ``pending``, ``done`` and ``failed`` counts,
    ``last_done``, the last ``last_error`` and ``paused_until`` (until when the host asked us
    to wait, or None) (the admin peers page and ``/api/v1/peers``)."""
    now = format_utc(ctx.clock())
    return [dict(row) for row in await oq.delivery_summary(ctx.store.reader, now)]
