"""ActivityPub documents: actors, discovery (WebFinger, NodeInfo), collections, activities.

Pure builders and parsers (REFERENCE §1); ids, times and keys are passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from meshnode.protocol.errors import KeyFormatError, ValidationError
from meshnode.protocol.multikey import multikey_to_ed25519_public
from meshnode.protocol.names import clean_text
from meshnode.protocol.vocab import (
    ACTIVITY_JSON,
    AS_CONTEXT,
    DID_CONTEXT,
    MESHNODE_NS,
    MULTIKEY_CONTEXT,
    PUBLIC,
    SECURITY_CONTEXT,
)

SOFTWARE = "meshnode"
# Extension terms defined inline so no peer fetches an unknown context (REFERENCE §3).
MESHNODE_TERMS: dict[str, Any] = {"mn": MESHNODE_NS, "software": "mn:software", "hops": "mn:hops"}
# Actor terms the ActivityStreams context lacks, named as Mastodon names them
# (https://docs.joinmastodon.org/spec/activitypub/#as): without them a JSON-LD processor drops
# the two fields.
ACTOR_TERMS: dict[str, Any] = {
    **MESHNODE_TERMS, "toot": "http://joinmastodon.org/ns#",
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "discoverable": "toot:discoverable",
}
ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, DID_CONTEXT, MULTIKEY_CONTEXT,
                            ACTOR_TERMS]
ACTIVITY_CONTEXT: list[Any] = [AS_CONTEXT, MESHNODE_TERMS]
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_PROFILE = "http://nodeinfo.diaspora.software/ns/schema/2.1#"
MAX_URL = 2048


# --------------------------------------------------------------------------- helpers


# The usual shape of an http(s) URL: a lowercase scheme, then a host of letters, digits, dots
# and hyphens, an optional port, then the path, query, fragment or the end. What urlsplit
# reads from such a URL is exactly these groups (it only strips or refuses other shapes:
# spaces, tabs, userinfo, brackets, an empty or oversized port), so they are read without
# it (issue 17: each activity and object id is a new URL at the door, ~8 µs with urlsplit).
# Tests: tests/protocol/test_activities_origin.py compares both on random URLs.
_PLAIN_ORIGIN = re.compile(r"(https?)://([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4096)  # pure, asked several times per activity for the same few origins
def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL (lowercased host, default port dropped)."""
    plain = _PLAIN_ORIGIN.match(url)
    if plain is not None and (plain[3] is None or int(plain[3]) <= 65535):
        scheme, host, port = plain[1], plain[2].lower(), plain[3]
        if port is None or int(port) == _DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host}"
        return f"{scheme}://{host}:{int(port)}"
    return _split_origin(url)


def _split_origin(url: str) -> str:
    """``origin_of`` for any other shape, by ``urllib.parse.urlsplit``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[": an unclosed IPv6 bracket (was a bare ValueError)
        raise ValidationError(f"not an http(s) URL: {url[:200]!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"not an http(s) URL: {url[:200]!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"bad port in {url[:200]!r}") from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" if port in (None, default) else f"{parts.scheme}://{host}:{port}"


def strip_fragment(url: str) -> str:
    """``url`` without its ``#fragment``."""
    return url.split("#", 1)[0]


def check_url(value: object, name: str) -> str:
    """An http(s) URL of sane length, or ValidationError."""
    return url_and_origin(value, name)[0]


def url_and_origin(value: object, name: str) -> tuple[str, str]:
    """``check_url`` and the URL's ``origin_of``, read once (the inbox door compares origins)."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise ValidationError(f"{name} must be a URL")
    return value, origin_of(value)


def id_of(value: object, name: str) -> str:
    """The id of a link or embedded object (``"…"`` or ``{"id": "…"}``)."""
    return id_and_origin(value, name)[0]


def id_and_origin(value: object, name: str) -> tuple[str, str]:
    """``id_of`` and that id's ``origin_of``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return url_and_origin(value, name)


def same_origin(a: str, b: str) -> bool:
    """True when both URLs share scheme, host and port."""
    return origin_of(a) == origin_of(b)


# --------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class ActorKeys:
    """Public keys an actor publishes: one RSA ``publicKey`` and FEP-521a Multikeys."""

    rsa_key_id: str
    rsa_public_pem: str
    ed25519_key_id: str
    ed25519_multikey: str


def build_actor(
    *,
    actor_id: str,
    actor_type: str,
    username: str,
    name: str,
    summary: str,
    shared_inbox: str,
    keys: ActorKeys,
    manually_approves: bool = False,
) -> dict[str, Any]:
    """An actor document (Person or Group) per REFERENCE §1."""
    return {
        "@context": ACTOR_CONTEXT,
        "id": actor_id,
        "type": actor_type,
        "preferredUsername": username,
        "name": name,
        "summary": summary,
        "url": actor_id,
        "inbox": f"{actor_id}/inbox",
        "outbox": f"{actor_id}/outbox",
        "followers": f"{actor_id}/followers",
        "following": f"{actor_id}/following",
        "endpoints": {"sharedInbox": shared_inbox},
        "manuallyApprovesFollowers": manually_approves,
        "discoverable": True,
        "software": SOFTWARE,
        "publicKey": {
            "id": keys.rsa_key_id,
            "owner": actor_id,
            "publicKeyPem": keys.rsa_public_pem,
        },
        "assertionMethod": [
            {
                "id": keys.ed25519_key_id,
                "type": "Multikey",
                "controller": actor_id,
                "publicKeyMultibase": keys.ed25519_multikey,
            }
        ],
    }


@dataclass(frozen=True)
class RemoteActor:
    """What we keep of a remote actor document, checked against the URL it came from."""

    id: str
    type: str
    username: str
    inbox: str
    shared_inbox: str | None
    outbox: str | None
    is_meshnode: bool
    rsa_keys: dict[str, str] = field(default_factory=dict)
    ed25519_keys: dict[str, bytes] = field(default_factory=dict)
    name: str = ""  # the document's ``name``, cleaned (protocol/names.clean_text)

    @property
    def origin(self) -> str:
        """Origin of the actor id."""
        return origin_of(self.id)

    @property
    def delivery_inbox(self) -> str:
        """Shared inbox when it has one, else its own inbox."""
        return self.shared_inbox or self.inbox


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _rsa_keys(doc: Mapping[str, Any], actor_id: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for entry in _as_list(doc.get("publicKey"))[:4]:
        if not isinstance(entry, Mapping):
            continue
        key_id, pem = entry.get("id"), entry.get("publicKeyPem")
        if (isinstance(key_id, str) and isinstance(pem, str) and len(pem) < 8192
                and entry.get("owner", actor_id) == actor_id):
            keys[key_id] = pem
    return keys


def _ed25519_keys(doc: Mapping[str, Any], actor_id: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for entry in _as_list(doc.get("assertionMethod"))[:8]:
        if not isinstance(entry, Mapping) or entry.get("type") != "Multikey":
            continue
        key_id, value = entry.get("id"), entry.get("publicKeyMultibase")
        if not isinstance(key_id, str) or not isinstance(value, str):
            continue
        if entry.get("controller", actor_id) != actor_id:
            continue
        try:
            keys[key_id] = multikey_to_ed25519_public(value)
        except KeyFormatError:
            continue
    return keys


def parse_actor(doc: object, *, fetched_from: str) -> RemoteActor:
    """Read a fetched actor document; its ``id`` must equal the URL it was fetched from."""
    if not isinstance(doc, Mapping):
        raise ValidationError("actor document is not a JSON object")
    actor_id = check_url(doc.get("id"), "id")
    if actor_id != fetched_from:
        raise ValidationError(f"actor id {actor_id!r} differs from its URL {fetched_from!r}")
    endpoints = doc.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
    username = doc.get("preferredUsername")
    outbox = doc.get("outbox")
    return RemoteActor(
        id=actor_id,
        type=str(doc.get("type", ""))[:40],
        username=username[:100] if isinstance(username, str) else "",
        inbox=check_url(doc.get("inbox"), "inbox"),
        shared_inbox=check_url(shared, "sharedInbox") if shared is not None else None,
        outbox=check_url(outbox, "outbox") if outbox is not None else None,
        is_meshnode=doc.get("software") == SOFTWARE,
        rsa_keys=_rsa_keys(doc, actor_id),
        ed25519_keys=_ed25519_keys(doc, actor_id),
        name=clean_text(doc.get("name")),
    )


# --------------------------------------------------------------------------- discovery


def webfinger(subject: str, actor_id: str) -> dict[str, Any]:
    """The JRD answering ``acct:`` lookups (Mastodon needs the ``self`` link)."""
    return {
        "subject": subject,
        "aliases": [actor_id],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor_id},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": actor_id},
        ],
    }


def parse_acct(resource: str) -> tuple[str, str]:
    """``acct:name@host[:port]`` (or without ``acct:``) → (name, host[:port])."""
    text = resource.removeprefix("acct:").lstrip("@")
    name, sep, host = text.rpartition("@")
    if (not sep or not name or not host or "/" in host or len(text) > 300
            or host.startswith(":") or any(char.isspace() for char in text)):
        raise ValidationError("expected acct:name@host[:port]")
    return name.lower(), host.lower()


def jrd_self_link(jrd: object) -> str:
    """The ActivityPub actor URL in a WebFinger answer."""
    if isinstance(jrd, Mapping):
        for link in _as_list(jrd.get("links"))[:50]:
            if (isinstance(link, Mapping) and link.get("rel") == "self"
                    and str(link.get("type", "")).split(";")[0].strip()
                    in (ACTIVITY_JSON, "application/ld+json")):
                return check_url(link.get("href"), "href")
    raise ValidationError("WebFinger answer has no ActivityPub self link")


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    """``/.well-known/nodeinfo``."""
    return {"links": [{"rel": NODEINFO_REL, "href": f"{base_url}/nodeinfo/2.1"}]}


def nodeinfo(
    *, version: str, users: int, local_posts: int, name: str, peering_policy: str
) -> dict[str, Any]:
    """NodeInfo 2.1 document."""
    return {
        "version": "2.1",
        "software": {"name": SOFTWARE, "version": version,
                     "repository": "https://example.invalid/meshnode"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": users, "activeMonth": users, "activeHalfyear": users},
                  "localPosts": local_posts},
        "metadata": {"nodeName": name, "peeringPolicy": peering_policy},
    }


# --------------------------------------------------------------------------- collections


def ordered_collection(collection_id: str, total: int, first: str) -> dict[str, Any]:
    """An ``OrderedCollection`` whose items are in pages."""
    return {"@context": AS_CONTEXT, "id": collection_id, "type": "OrderedCollection",
            "totalItems": total, "first": first}


def collection_page(
    page_id: str, part_of: str, items: Sequence[Any], next_page: str | None
) -> dict[str, Any]:
    """One ``OrderedCollectionPage``."""
    page: dict[str, Any] = {"@context": ACTIVITY_CONTEXT, "id": page_id,
                            "type": "OrderedCollectionPage", "partOf": part_of,
                            "orderedItems": list(items)}
    if next_page is not None:
        page["next"] = next_page
    return page


def collection_page_text(
    page_id: str, part_of: str, item_texts: Sequence[str], next_page: str | None
) -> str:
    """``collection_page`` as JSON text, its items given as JSON texts (stored activities):
    they are spliced in as they are, not parsed and serialised again."""
    page = collection_page(page_id, part_of, (), next_page)
    del page["orderedItems"]
    head = json.dumps(page, ensure_ascii=False)
    return f'{head[:-1]}, "orderedItems": [{",".join(item_texts)}]}}'


# --------------------------------------------------------------------------- activities


def activity(
    activity_type: str,
    *,
    activity_id: str,
    actor: str,
    obj: Any,
    to: Sequence[str] = (PUBLIC,),
    cc: Sequence[str] = (),
    published: str | None = None,
    hops: int | None = None,
) -> dict[str, Any]:
    """A generic activity; a signed object is embedded unchanged (its own ``@context``)."""
    doc: dict[str, Any] = {"@context": ACTIVITY_CONTEXT, "id": activity_id,
                           "type": activity_type, "actor": actor, "object": obj}
    if to:
        doc["to"] = list(to)
    if cc:
        doc["cc"] = list(cc)
    if published is not None:
        doc["published"] = published
    if hops is not None:
        doc["hops"] = hops
    return doc


def listing_activity(
    activity_type: str, signed_object: Mapping[str, Any], *, actor: str, version: int,
    published: str,
) -> dict[str, Any]:
    """Create / Update / Delete carrying a listing's signed Proposal or Tombstone."""
    object_id = str(signed_object["id"])
    suffix = activity_type.lower()
    return activity(activity_type, activity_id=f"{object_id}/activities/{suffix}-{version}",
                    actor=actor, obj=dict(signed_object), cc=[f"{actor}/followers"],
                    published=published)


def follow_activity(activity_id: str, actor: str, target: str) -> dict[str, Any]:
    """Follow of ``target`` (peering: one community Group following another)."""
    return activity("Follow", activity_id=activity_id, actor=actor, obj=target, to=[target])


def response_activity(
    activity_type: str, activity_id: str, actor: str, follow: Mapping[str, Any]
) -> dict[str, Any]:
    """Accept, Reject or Undo wrapping a Follow."""
    target = str(follow.get("actor")) if activity_type != "Undo" else str(follow.get("object"))
    return activity(activity_type, activity_id=activity_id, actor=actor, obj=dict(follow),
                    to=[target])
