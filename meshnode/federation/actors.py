"""Discovery documents: WebFinger, NodeInfo 2.1, actor documents and paged collections.



"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from meshnode import __version__, urls
from meshnode.errors import NotFoundError
from meshnode.federation.inbox import receive
from meshnode.federation.state import FEDERATION
from meshnode.protocol.activities import (
    ActorKeys,
    build_actor,
    collection_page,
    collection_page_text,
    nodeinfo,
    nodeinfo_links,
    ordered_collection,
    parse_acct,
    webfinger,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.protocol.notes import NOTE_CONTEXT, note_id_for, note_tombstone
from meshnode.protocol.parsing import parse_cursor
from meshnode.protocol.vocab import ACTIVITY_JSON
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from meshnode.services.publishing import note_object
from meshnode.store import federation as fq
from meshnode.store import listings as listing_store
from meshnode.store import outbox as oq

PAGE_SIZE = 200
# A whole outbox page stops before its activities pass this many characters (the first is
# always served): 200 listings were ~0.5 MB, more than a peer's 1 MB cap with larger ones.
PAGE_CHARS = 200_000
JRD = "application/jrd+json"


def _json(document: Any, content_type: str = ACTIVITY_JSON, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(document, ensure_ascii=False), content_type=content_type,
                        headers={"Vary": "Accept"}, status=status)


def _ctx(request: web.Request) -> NodeContext:
    return request.app[FEDERATION].ctx


async def _member_actor_id(ctx: NodeContext, username: str) -> str:
    member = await members.get_member(ctx, username)
    if not member.is_active:
        raise NotFoundError("no such member")
    return urls.member_actor(ctx.config.base_url, member.username)


async def person_document(ctx: NodeContext, username: str) -> dict[str, Any]:
    """The ``Person`` actor of a member."""
    member = await members.get_member(ctx, username)
    if not member.is_active:
        raise NotFoundError("no such member")
    actor = urls.member_actor(ctx.config.base_url, member.username)
    keys = ActorKeys(urls.rsa_key_id(actor), member.rsa_public_pem, urls.ed25519_key_id(actor),
                     ed25519_public_to_multikey(member.ed25519_public))
    return build_actor(actor_id=actor, actor_type="Person", username=member.username,
                       name=member.display_name, summary=member.bio,
                       shared_inbox=f"{ctx.config.base_url}/inbox", keys=keys)


def group_document(ctx: NodeContext) -> dict[str, Any]:
    """The community's ``Group`` actor (keys: the node's own)."""
    config = ctx.config
    actor = urls.community_actor(config.base_url, config.handle)
    identity = ctx.identity
    keys = ActorKeys(urls.rsa_key_id(actor), identity.rsa_public_pem, urls.ed25519_key_id(actor),
                     identity.multikey)
    return build_actor(actor_id=actor, actor_type="Group", username=config.handle,
                       name=config.name, summary="", shared_inbox=f"{config.base_url}/inbox",
                       keys=keys, manually_approves=config.peering_policy == "approve")


async def person(request: web.Request) -> web.Response:
    """``GET /users/{name}`` (ActivityPub)."""
    return _json(await person_document(_ctx(request), request.match_info["username"]))


async def group(request: web.Request) -> web.Response:
    """``GET /groups/{handle}`` (ActivityPub)."""
    ctx = _ctx(request)
    if request.match_info["handle"] != ctx.config.handle:
        raise NotFoundError("no such community")
    return _json(group_document(ctx))


async def listing_note(request: web.Request) -> web.Response:
    """``GET /listings/{id}/note``: the Note microblog followers got for a local listing
    (410 with its Tombstone once withdrawn), so the Note's id dereferences."""
    ctx = _ctx(request)
    view = await listings.get_listing(ctx, request.match_info["listing_id"])
    if not view.row.is_local or view.row.hidden:
        raise NotFoundError("this listing is not available")
    if view.row.status == "withdrawn":
        tombstone = {"@context": NOTE_CONTEXT, **note_tombstone(note_id_for(view.row.object_id))}
        return _json(tombstone, status=410)
    return _json({**note_object(ctx, view.signed_object), "@context": NOTE_CONTEXT})


async def webfinger_handler(request: web.Request) -> web.Response:
    """``GET /.well-known/webfinger?resource=acct:name@host[:port]``."""
    ctx = _ctx(request)
    resource = request.query.get("resource", "")
    try:
        name, host = parse_acct(resource)
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    if host != urlsplit(ctx.config.base_url).netloc.lower():
        raise NotFoundError("not a user of this node")
    if name == ctx.config.handle:
        actor = urls.community_actor(ctx.config.base_url, ctx.config.handle)
    else:
        actor = await _member_actor_id(ctx, name)
    return _json(webfinger(f"acct:{name}@{host}", actor), JRD)


async def nodeinfo_index(request: web.Request) -> web.Response:
    """``GET /.well-known/nodeinfo``."""
    return web.json_response(nodeinfo_links(_ctx(request).config.base_url))


async def nodeinfo_handler(request: web.Request) -> web.Response:
    """``GET /nodeinfo/2.1``."""
    ctx = _ctx(request)
    users = len(await members.list_members(ctx))
    local_posts = await listing_store.count_listings(ctx.store.reader, local_only=True)
    document = nodeinfo(version=__version__, users=users, local_posts=local_posts,
                        name=ctx.config.name, peering_policy=ctx.config.peering_policy)
    document["metadata"]["communityActor"] = urls.community_actor(ctx.config.base_url,
                                                                  ctx.config.handle)
    response = web.Response(text=json.dumps(document))
    response.headers["Content-Type"] = (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"')
    return response


async def _actors_for(request: web.Request) -> tuple[str, list[str] | None]:
    ctx = _ctx(request)
    if "handle" in request.match_info:
        if request.match_info["handle"] != ctx.config.handle:
            raise NotFoundError("no such community")
        return urls.community_actor(ctx.config.base_url, ctx.config.handle), None
    actor = await _member_actor_id(ctx, request.match_info["name"])
    return actor, [actor]


def _int_query(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_cursor(raw, name)
    except ValidationError as exc:
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer") from exc


def _summary(activity_id: object, seq: int, object_id: object, updated: object,
             published: object, deleted: object) -> dict[str, Any]:
    """The summary item of one outbox activity from its id, sequence number and its
    object's id and times (whichever of updated, published, deleted comes first)."""
    item: dict[str, Any] = {"id": activity_id, "seq": seq}
    if isinstance(object_id, str):
        stamp = updated or published or deleted
        if isinstance(stamp, str):
            item.update(object=object_id, stamp=stamp)
    return item


def summary_item(activity: dict[str, Any], seq: int) -> dict[str, Any]:
    """An outbox item as catch-up's summary pages list it: id and sequence number, and for a
    listing the object's id and its version's time (updated, published or deleted)."""
    obj = activity.get("object")
    if not isinstance(obj, dict):
        return _summary(activity["id"], seq, None, None, None, None)
    return _summary(activity["id"], seq, obj.get("id"), obj.get("updated"),
                    obj.get("published"), obj.get("deleted"))


def stored_summary_item(row: oq.SummaryRow) -> dict[str, Any]:
    """``summary_item`` of a stored activity from the fields SQLite extracted from its body
    (``oq.public_summaries``): the same item, without parsing the whole body in Python."""
    return _summary(row.activity_id, row.seq, *json.loads(row.fields))


async def outbox(request: web.Request) -> web.Response:
    """``GET …/outbox[?after=N[&summary=1]]``: the public activity log; ``after`` is a stable
    cursor; ``summary=1`` lists only ids, sequence numbers and versions (``summary_item``),
    with a ``next`` link only after a full page.

    A catch-up walks these pages, every peer at once when their sync periods end together
    (the soak's minute 28, docs/benchmarks.md): the stored activities are served as stored,
    spliced into the page (``collection_page_text``), never parsed and written again; a
    whole page stops at ``PAGE_CHARS`` characters of activities (at least one), and only
    ``OUTBOX_BUILDS`` are built at once (a bounded queue waits; beyond it, 503)."""
    ctx = _ctx(request)
    actor, actors = await _actors_for(request)
    collection = f"{actor}/outbox"
    after = _int_query(request, "after")
    if after is None:
        total = await oq.count_public(ctx.store.reader, actors)
        return _json(ordered_collection(collection, total, f"{collection}?after=0"))
    page_id = f"{collection}?after={after}"
    if request.query.get("summary") == "1":  # ids only: catch-up skips what was pushed
        summaries = await oq.public_summaries(ctx.store.reader, actors, after, PAGE_SIZE)
        items = [stored_summary_item(row) for row in summaries]
        # items carry their ``seq``: a short summary page is the last (no ``next``), so
        # catch-up skipping what it holds needs no request for an empty page after it
        next_page = (f"{collection}?after={summaries[-1].seq}&summary=1"
                     if len(summaries) == PAGE_SIZE else None)
        return _json(collection_page(page_id, collection, items, next_page))
    async with request.app[FEDERATION].outbox_gate.turn():  # a few pages' bodies at once
        rows = await oq.public_page(ctx.store.reader, actors, after, PAGE_SIZE, PAGE_CHARS)
        next_page = f"{collection}?after={rows[-1]['seq']}" if rows else None
        text = collection_page_text(page_id, collection, [row["body"] for row in rows],
                                    next_page)
        del rows
    return web.Response(text=text, content_type=ACTIVITY_JSON, headers={"Vary": "Accept"})


async def followers(request: web.Request) -> web.Response:
    """``GET …/followers[?page=N]``."""
    ctx = _ctx(request)
    actor, _ = await _actors_for(request)
    collection = f"{actor}/followers"
    page = _int_query(request, "page")
    if page is None or page < 1:
        total = await fq.count_followers(ctx.store.reader, actor)
        return _json(ordered_collection(collection, total, f"{collection}?page=1"))
    items = await fq.list_followers(ctx.store.reader, actor, offset=(page - 1) * PAGE_SIZE,
                                    limit=PAGE_SIZE)
    next_page = f"{collection}?page={page + 1}" if len(items) == PAGE_SIZE else None
    return _json(collection_page(f"{collection}?page={page}", collection, items, next_page))


async def following(request: web.Request) -> web.Response:
    """``GET …/following[?page=1]``: the Group follows its peers; members follow no one."""
    ctx = _ctx(request)
    actor, actors = await _actors_for(request)
    collection = f"{actor}/following"
    items: list[str] = []
    if actors is None:
        items = [row["actor_id"] for row in await fq.list_peers(ctx.store.reader)
                 if row["out_state"] == "peered" and row["actor_id"]]
    if _int_query(request, "page") is None:
        return _json(ordered_collection(collection, len(items), f"{collection}?page=1"))
    return _conditional(request, collection_page(f"{collection}?page=1", collection, items,
                                                 None))


def _conditional(request: web.Request, document: dict[str, Any]) -> web.Response:
    """``document`` with a strong ETag (a hash of its JSON), or a bodiless 304 when the
    request's ``If-None-Match`` names it (RFC 9110 §13.1.2, §15.4.5): a peer re-reading an
    unchanged collection (catch-up's read of ``following``) costs no body and no write."""
    text = json.dumps(document, ensure_ascii=False)
    tag = hashlib.sha256(text.encode()).hexdigest()[:32]
    if any(match.value == tag for match in request.if_none_match or ()):
        raise web.HTTPNotModified(headers={"ETag": f'"{tag}"', "Vary": "Accept"})
    response = web.Response(text=text, content_type=ACTIVITY_JSON, headers={"Vary": "Accept"})
    response.etag = tag
    return response


def setup_federation_routes(app: web.Application) -> None:
    """Register discovery, collection and inbox routes.

    The actor documents themselves (``person``, ``group``) share their URLs with HTML pages:
    the web layer registers them through content negotiation (``web/negotiation.py``).
    """
    router = app.router
    router.add_get("/.well-known/webfinger", webfinger_handler)
    router.add_get("/.well-known/nodeinfo", nodeinfo_index)
    router.add_get("/nodeinfo/2.1", nodeinfo_handler)
    for prefix in ("/users/{name}", "/groups/{handle}"):
        router.add_get(f"{prefix}/outbox", outbox)
        router.add_get(f"{prefix}/followers", followers)
        router.add_get(f"{prefix}/following", following)
        router.add_post(f"{prefix}/inbox", receive)
    router.add_post("/inbox", receive)
    router.add_get("/listings/{listing_id}/note", listing_note)
