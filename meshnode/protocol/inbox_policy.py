"""Who may post what to our inbox: the door's decision, before any key is fetched.

Pure: an activity and the facts the edge read about its sender in, a ``Verdict`` out.

From an origin that is not a peer (a node we follow, or are asking to follow) the inbox
accepts only what starts a relationship (``Follow``, ``TrustLineOffer``), what answers
something we sent (``Accept``/``Reject`` of our Follow or of our deal ``Offer``) and what is
addressed to our own members or objects (a deal ``Offer`` on one of our listings, a deal
``Update`` or feedback to one of our members, a direct message ``Note`` to one of our
members, IOU messages to our community, a ``Flag`` reporting something of ours and the
answer to a ``Flag`` we sent). Public
content (``Create``, ``Update``, ``Delete``, ``Announce`` of listings) comes only from
peers, and only its author's origin may create, change or delete an object
(REFERENCE §2, "be stricter than the mainstream"). Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from meshnode.protocol.activities import origin_of
from meshnode.protocol.deals import deal_activity_kind
from meshnode.protocol.direct_messages import is_direct_note
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.flags import is_flag_answer, parse_flag
from meshnode.protocol.iou import LINE_TYPES, TRANSFER_TYPES
from meshnode.protocol.queue_wire import queue_activity_kind

__all__ = ["Here", "Quota", "Sender", "Verdict", "decide", "is_listing_content",
           "quota_retry_after"]

PUBLIC_CONTENT: Final = frozenset({"Create", "Update", "Delete", "Announce"})
LISTING_OBJECTS: Final = frozenset({"Proposal", "Tombstone"})
IOU_TYPES: Final = frozenset((*LINE_TYPES, *TRANSFER_TYPES))
QUOTA_WINDOW_SECONDS: Final = 3600


@dataclass(frozen=True)
class Here:
    """Facts about this node: its origin, its Group actor and its members' actor prefix."""

    origin: str
    community: str
    member_prefix: str  # e.g. "https://node.example/users/"

    def is_local_actor(self, value: object) -> bool:
        """True for our Group actor or one of our members' actors."""
        if not isinstance(value, str):
            return False
        if value == self.community:
            return True
        name = value[len(self.member_prefix):]
        return value.startswith(self.member_prefix) and bool(name) and "/" not in name

    def is_ours(self, value: object) -> bool:
        """True when ``value`` is a URL on this node's origin."""
        return isinstance(value, str) and _origin(value) == self.origin


@dataclass(frozen=True)
class Sender:
    """Facts about the sending origin, read from the peers table at the edge."""

    is_peer: bool  # we follow it, or are resolving / following it (a neighbour being peered)
    our_follow_id: str | None = None  # the Follow we sent to that origin, if any


@dataclass(frozen=True)
class Verdict:
    """The door's decision: ``reason`` is a short code, ``message`` English for the sender."""

    admit: bool
    reason: str
    message: str


def _admit(reason: str) -> Verdict:
    return Verdict(True, reason, "")


def _refuse(reason: str, message: str) -> Verdict:
    return Verdict(False, reason, message)


def _origin(value: str) -> str | None:
    try:
        return origin_of(value)
    except ValidationError:
        return None


def _id(value: object) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _addressees(act: Mapping[str, Any]) -> list[object]:
    found: list[object] = []
    for name in ("to", "cc"):
        value = act.get(name)
        found.extend(value if isinstance(value, list) else [value])
    return found


def _to_our_member(act: Mapping[str, Any], here: Here) -> bool:
    return any(here.is_local_actor(item) and item != here.community
               for item in _addressees(act))


def _on_actor_origin(value: str | None, actor: str) -> bool:
    return value is not None and _origin(value) == _origin(actor)


UNADDRESSED = "it is not addressed to one of our members or objects"


def _deal(kind: str, act: Mapping[str, Any], here: Here, actor: str) -> Verdict:
    """Deal messages: addressed to one of our members or objects, from anyone."""
    obj = act["object"]
    if kind == "answer":  # Accept/Reject of an Offer: only of an Offer we sent
        if not here.is_ours(_id(obj)):
            return _refuse("unknown_offer", "this answers an Offer this node never sent")
        return _admit("answer")
    if not _to_our_member(act, here):
        return _refuse("not_addressed", f"this deal message: {UNADDRESSED}")
    if kind == "offer":
        if not here.is_ours(act.get("target")):
            return _refuse("not_addressed", "the Offer is not about one of our listings")
        if not _on_actor_origin(_id(obj), actor):
            return _refuse("foreign_object", "the Agreement is not on the booker's origin")
        return _admit("addressed")
    if kind == "update":  # the Agreement lives on the booker's origin: ours or the actor's
        agreement = _id(obj)
        if not (here.is_ours(agreement) or _on_actor_origin(agreement, actor)):
            return _refuse("foreign_object", "the Agreement is on neither party's origin")
        return _admit("addressed")
    if not _on_actor_origin(_id(obj), actor):  # feedback: a Note on its author's origin
        return _refuse("foreign_object", "the feedback is not on its author's origin")
    return _admit("addressed")


def _queue(kind: str, act: Mapping[str, Any], here: Here, actor: str) -> Verdict:
    """Waiting-list messages (protocol/queue_wire.py): a Join/Leave of one of our listings
    to its author, or the lender's answer/Update about a Join we sent."""
    if kind in ("join", "leave"):
        if not (_to_our_member(act, here) and here.is_ours(_id(act.get("object")))):
            return _refuse("not_addressed", f"this waiting-list message: {UNADDRESSED}")
        return _admit("addressed")
    obj = act.get("result") if kind == "answer" else act.get("object")
    join = obj.get("joinActivity") if isinstance(obj, Mapping) else None
    if not (here.is_ours(join) and _to_our_member(act, here)):
        return _refuse("unknown_join", "this speaks of a Join this node never sent")
    if not _on_actor_origin(_id(obj), actor):
        return _refuse("foreign_object", "the place is not on the lender's origin")
    return _admit("answer")


def _relationship(kind: str, act: Mapping[str, Any], here: Here, sender: Sender,
                  actor: str) -> Verdict:
    """Follow, Accept/Reject of our Follow, Undo of one's own Follow."""
    obj = act.get("object")
    if kind == "Follow":
        if not here.is_local_actor(_id(obj)):
            return _refuse("not_addressed", "the Follow is not of one of our actors")
        return _admit("relationship")
    if kind in ("Accept", "Reject"):
        follow = _id(obj)
        if follow is None or not here.is_ours(follow) or follow != sender.our_follow_id:
            return _refuse("unknown_follow", f"this {kind} answers no Follow we sent")
        return _admit("answer")
    # Undo: only of one's own Follow (REFERENCE §2: only the follower may Undo its Follow)
    if isinstance(obj, Mapping):
        if obj.get("type") not in (None, "Follow"):
            return _refuse("unsupported", "only Undo of a Follow is supported")
        if obj.get("actor") not in (None, actor):
            return _refuse("not_yours", "an actor may only Undo its own activities")
    if not _on_actor_origin(_id(obj), actor):
        return _refuse("not_yours", "an actor may only Undo its own activities")
    return _admit("relationship")


def _content(kind: str, act: Mapping[str, Any], here: Here, sender: Sender,
             actor: str) -> Verdict:
    """Create / Update / Delete / Announce of public listings: from peers only."""
    obj = act.get("object")
    object_id = _id(obj)
    if kind in ("Update", "Delete") and here.is_ours(object_id):
        return _refuse("our_object", f"only this node may {kind} its own objects")
    if not sender.is_peer:
        return _refuse("not_a_peer", "this node accepts public content only from its peers")
    if kind == "Announce":
        if not isinstance(obj, Mapping) or obj.get("type") not in LISTING_OBJECTS:
            return _refuse("unsupported", "only Announces of signed listings are accepted")
        return _admit("content")
    if kind != "Delete" and (not isinstance(obj, Mapping) or obj.get("type") != "Proposal"):
        return _refuse("unsupported", f"only {kind} of a listing (Proposal) is accepted")
    if not _on_actor_origin(object_id, actor):
        # relays travel as Announce: a Create/Update/Delete comes from the object's origin
        return _refuse("foreign_object", f"the object of this {kind} is not on the actor's origin")
    return _admit("content")


def _direct(act: Mapping[str, Any], here: Here, actor: str) -> Verdict:
    """A direct message (``Create`` of a ``Note``) to one of our members: from anyone, like
    a letter; the worker checks the rest (single recipient, never public, proof, size)."""
    if not _to_our_member(act, here):
        return _refuse("not_addressed", f"this direct message: {UNADDRESSED}")
    if not _on_actor_origin(_id(act.get("object")), actor):
        return _refuse("foreign_object", "the Note is not on its author's origin")
    return _admit("addressed")


def _direct_delete(act: Mapping[str, Any], actor: str) -> Verdict:
    """The ``Delete`` (by id) of a direct message to one of our members, from anyone like the
    message itself (its author deleted it, or their account: docs/member-data.md);
    the worker removes only a message of that very actor."""
    if not _on_actor_origin(_id(act.get("object")), actor):
        return _refuse("foreign_object", "the deleted object is not on the actor's origin")
    return _admit("addressed")


def _flag(act: Mapping[str, Any], here: Here) -> Verdict:
    """A report (``Flag``) from anyone, about something here; its answer only of our Flag."""
    if is_flag_answer(act):
        if not here.is_ours(_id(act.get("object"))):
            return _refuse("unknown_flag", "this answers a Flag this node never sent")
        return _admit("answer")
    try:
        objects = parse_flag(act).objects
    except ValidationError as exc:
        return _refuse("invalid", str(exc))
    if not (here.community in _addressees(act) or any(map(here.is_ours, objects))):
        return _refuse("not_addressed", f"this Flag: {UNADDRESSED}")
    return _admit("addressed")


def is_listing_content(act: Mapping[str, Any]) -> bool:
    """A Create/Update/Delete/Announce carrying a listing (``Proposal`` or ``Tombstone``)."""
    obj = act.get("object")
    return (act.get("type") in PUBLIC_CONTENT and isinstance(obj, Mapping)
            and obj.get("type") in LISTING_OBJECTS)


def decide(act: Mapping[str, Any], *, here: Here, sender: Sender) -> Verdict:
    """Whether the door accepts ``act`` (whose id, type and actor were already checked)."""
    kind, actor = str(act.get("type")), str(act.get("actor"))
    queue = queue_activity_kind(act)
    if queue is not None:
        return _queue(queue, act, here, actor)
    deal = deal_activity_kind(act)
    if deal is not None:
        return _deal(deal, act, here, actor)
    if kind in IOU_TYPES:
        if here.community not in _addressees(act):
            return _refuse("not_addressed", f"this IOU message: {UNADDRESSED}")
        return _admit("addressed")
    if kind == "Flag" or is_flag_answer(act):
        return _flag(act, here)
    if kind in ("Follow", "Accept", "Reject", "Undo"):
        return _relationship(kind, act, here, sender, actor)
    if is_direct_note(act):
        return _direct(act, here, actor)
    if kind == "Delete" and isinstance(act.get("object"), str) and _to_our_member(act, here):
        return _direct_delete(act, actor)
    if kind in PUBLIC_CONTENT:
        return _content(kind, act, here, sender, actor)
    return _refuse("unsupported", f"activity type {kind[:40]!r} is not supported here")


@dataclass(frozen=True)
class Quota:
    """What one origin may get stored per hour."""

    rows: int
    bytes: int


def quota_retry_after(*, used_rows: int, used_bytes: int, new_bytes: int, quota: Quota,
                      oldest_age: float) -> int | None:
    """Seconds until the origin may post again, or None when ``new_bytes`` fits.

    ``used_*`` count what the origin got stored during the last hour, ``oldest_age`` is the
    age in seconds of its oldest row in that hour (room frees up when that row leaves it).
    """
    if used_rows + 1 <= quota.rows and used_bytes + new_bytes <= quota.bytes:
        return None
    return max(1, int(QUOTA_WINDOW_SECONDS - oldest_age) + 1)
