"""Waiting lists across communities: the documents on the wire (pure; no clock, no I/O).

A member of another community asks for a place with an ActivityStreams ``Join`` of the
listing (https://www.w3.org/TR/activitystreams-vocabulary/#dfn-join: "the actor has joined
the object") and gives it up with ``Leave`` (#dfn-leave). The lender's node answers the
Join with ``Accept`` or ``Reject`` (its ``result`` the place), and tells every later move of
the place (the turn, a lapse, the listing closed) with an ``Update`` of a ``QueuePlace``.
Every document carries its actor's FEP-8b32 proof (the member's, or the lender's for the
answers), exactly like deal messages. Confirming a turn is no new message: it is the
member's booking, the deal ``Offer`` (``protocol/deals.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from meshnode.protocol.activities import check_url, id_of
from meshnode.protocol.deals import DEAL_CONTEXT
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.queue import MAX_WAITING
from meshnode.protocol.timefmt import format_utc, parse_utc

MAX_FROM_ORIGIN_PER_LISTING = 20  # live places one community's members hold in one queue
MAX_FROM_ORIGIN = 200  # ... and in all of this node's queues together
REASON_MAX = 200
PLACE_STATES = ("waiting", "notified", "confirmed", "lapsed", "left", "closed", "refused")

QueueActivity = Literal["join", "leave", "answer", "place"]


def queue_activity_kind(activity: Mapping[str, Any]) -> QueueActivity | None:
    """Which waiting-list message an activity is, or None."""
    kind, obj = activity.get("type"), activity.get("object")
    if kind in ("Join", "Leave"):
        return "join" if kind == "Join" else "leave"
    if not isinstance(obj, Mapping):
        return None
    if kind in ("Accept", "Reject") and obj.get("type") == "Join":
        return "answer"
    if kind == "Update" and obj.get("type") == "QueuePlace":
        return "place"
    return None


def build_join(*, activity_id: str, actor: str, author: str, listing_object: str,
               when: datetime, leave: bool = False) -> dict[str, Any]:
    """The unsigned ``Join`` (or ``Leave``) of a listing's queue (sign with the member's key)."""
    return {"@context": DEAL_CONTEXT, "id": activity_id, "type": "Leave" if leave else "Join",
            "actor": actor, "to": [author], "object": listing_object,
            "published": format_utc(when)}


@dataclass(frozen=True)
class JoinRequest:
    """A received Join or Leave: who, and which listing."""

    activity_id: str
    actor: str
    listing_object: str


def parse_join(activity: Mapping[str, Any]) -> JoinRequest:
    """Read a Join or Leave (its proof is checked by the caller)."""
    return JoinRequest(activity_id=check_url(activity.get("id"), "id"),
                       actor=check_url(activity.get("actor"), "actor"),
                       listing_object=id_of(activity.get("object"), "object"))


@dataclass(frozen=True)
class QueuePlace:
    """A place as the lender's node tells it (``position`` 1 = next; None once over)."""

    place_id: str
    join_id: str
    member: str
    listing_object: str
    state: str
    position: int | None = None
    confirm_by: datetime | None = None
    reason: str = ""


def build_place(place: QueuePlace) -> dict[str, Any]:
    """The ``QueuePlace`` object carried by answers and Updates."""
    document: dict[str, Any] = {
        "type": "QueuePlace", "id": place.place_id, "joinActivity": place.join_id,
        "attributedTo": place.member, "target": place.listing_object,
        "queueState": place.state}
    if place.position is not None:
        document["position"] = place.position
    if place.confirm_by is not None:
        document["confirmBy"] = format_utc(place.confirm_by)
    if place.reason:
        document["reason"] = place.reason[:REASON_MAX]
    return document


def build_place_message(*, activity_id: str, actor: str, place: QueuePlace, when: datetime,
                        answer: bool = False) -> dict[str, Any]:
    """The unsigned answer to a Join (``answer``: Accept, or Reject when refused) or Update
    of a place, from the lender (sign with the lender's key)."""
    refused = answer and place.state == "refused"
    kind = ("Reject" if refused else "Accept") if answer else "Update"
    body: dict[str, Any] = {"@context": DEAL_CONTEXT, "id": activity_id, "type": kind,
                            "actor": actor, "to": [place.member]}
    if answer:
        body.update(object={"type": "Join", "id": place.join_id}, result=build_place(place))
    else:
        body["object"] = build_place(place)
    if refused:
        body["reason"] = place.reason[:REASON_MAX]
    body["published"] = format_utc(when)
    return body


def _position(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WAITING:
        raise ValidationError("position must be a whole number within the queue's size")
    return value


def parse_place(activity: Mapping[str, Any]) -> QueuePlace:
    """Read the place an answer or Update carries (its proof is checked by the caller)."""
    raw = activity.get("result") if activity.get("type") != "Update" else activity.get("object")
    if not isinstance(raw, Mapping) or raw.get("type") != "QueuePlace":
        raise ValidationError("a QueuePlace was expected")
    state = raw.get("queueState")
    if state not in PLACE_STATES:
        raise ValidationError("unknown queue state")
    reason = raw.get("reason", activity.get("reason", ""))
    if not isinstance(reason, str):
        raise ValidationError("reason must be text")
    confirm_by = raw.get("confirmBy")
    return QueuePlace(
        place_id=check_url(raw.get("id"), "id"),
        join_id=check_url(raw.get("joinActivity"), "joinActivity"),
        member=check_url(raw.get("attributedTo"), "attributedTo"),
        listing_object=check_url(raw.get("target"), "target"), state=str(state),
        position=_position(raw.get("position")),
        confirm_by=parse_utc(confirm_by, field="confirmBy") if confirm_by else None,
        reason=reason[:REASON_MAX])
