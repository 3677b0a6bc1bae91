"""Deals: the state machine, capacity arithmetic, and the FEP-0837 documents on the wire.

A deal is an ``Offer`` of an ``Agreement`` (FEP-0837, REFERENCE §4) answered by ``Accept``
or ``Reject``; later changes travel as ``Update`` of the Agreement, feedback as a signed
``Note``. Pure: values and an explicit ``now`` in, documents or ``ValidationError`` out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from meshnode.protocol import statemachine
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import parse_decimal, parse_int
from meshnode.protocol.statemachine import Transition, edge
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text, When, number
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MARKETPLACE_TERMS

# --- state machine ---------------------------------------------------------------------------

State = str
Role = Literal["author", "booker", "system"]
INITIAL = "requested"
STATES = ("requested", "accepted", "declined", "cancelled", "expired", "in_progress",
          "completed", "disputed")
TERMINAL = frozenset({"declined", "cancelled", "expired", "completed", "disputed"})
# Holds what a deal reserves: accepted bookings count against capacity.
HOLDING = frozenset({"accepted", "in_progress"})


TRANSITIONS: dict[State, dict[str, Transition]] = {
    "requested": {
        "accept": edge("accepted", "author", "system"),  # system: auto-accept, group commit
        "decline": edge("declined", "author", "system"),
        "cancel": edge("cancelled", "booker"),
        "expire": edge("expired", "system"),
    },
    "accepted": {
        "start": edge("in_progress", "author"),
        "complete": edge("completed", "author", "booker"),
        "cancel": edge("cancelled", "author", "booker"),
        "dispute": edge("disputed", "author"),
        # the booker's node could not pay a cross-node deal (no route, limit, refusal)
        "payment_failed": edge("cancelled", "system"),
    },
    "in_progress": {
        "complete": edge("completed", "author", "booker"),
        "dispute": edge("disputed", "author"),
    },
    "declined": {}, "cancelled": {}, "expired": {}, "completed": {}, "disputed": {},
}


def check_graph(transitions: Mapping[State, Mapping[str, Transition]]) -> None:
    """Refuse a malformed table: unknown states, exits from terminal states, dead ends,
    unreachable states or unknown roles (run when this module is imported)."""
    statemachine.check_graph(transitions, states=frozenset(STATES),
                             initial=frozenset({INITIAL}),
                             terminal=TERMINAL, roles=frozenset({"author", "booker", "system"}))


check_graph(TRANSITIONS)


def next_state(state: State, action: str, role: str) -> State:
    """The state after ``action`` by ``role``; ValidationError when not allowed."""
    edge = TRANSITIONS.get(state, {}).get(action)
    if edge is None:
        raise TransitionError(
            Text("a %(state)s deal cannot be %(action)sed", state=Text(state.replace("_", " ")),
                 action=action)
            if action != "expire" else Text("a %(state)s deal cannot expire", state=Text(state)))
    if role not in edge.by:
        raise NotYourMoveError(Text("only the %(roles)s can %(action)s this deal",
                                    roles=" or ".join(sorted(edge.by)), action=action))
    return edge.to


class TransitionError(ValidationError):
    """The deal is not in a state where this action applies (a 409)."""

    code = "invalid_transition"


class NotYourMoveError(ValidationError):
    """This party may not take this action (a 403: e.g. the booker accepting)."""

    code = "forbidden"


REQUEST_LIFETIME = timedelta(days=7)


def request_expiry(created: datetime, agreed_time: datetime | None) -> datetime:
    """A request not answered by then expires (a week, or the agreed time if sooner)."""
    expiry = created + REQUEST_LIFETIME
    return min(expiry, agreed_time) if agreed_time is not None else expiry


def can_cancel_at(now: datetime, agreed_time: datetime | None, notice_hours: int) -> bool:
    """Cancellation is allowed until ``notice_hours`` before the agreed time (listing policy)."""
    return agreed_time is None or now < agreed_time - timedelta(hours=notice_hours)


# --- capacity --------------------------------------------------------------------------------

Mode = Literal["count", "decimal", "slot"]
DECIMAL_SCALE = 1000  # produce and group-buy quantities are kept in thousandths
MAX_QUANTITY = 1_000_000  # a booking's count; the listing's capacity is checked afterwards
SLOT_CATEGORIES = ("lend", "service")
MAX_SLOT = timedelta(days=92)


@dataclass(frozen=True)
class Capacity:
    """What a listing offers: a count, a decimal quantity (×1000), or time slots."""

    mode: Mode
    total: int
    unit: str
    window: tuple[datetime | None, datetime | None] = (None, None)


def capacity_of(category: str, details: Mapping[str, Any]) -> Capacity:
    """The bookable capacity a listing's category and details describe."""
    if category == "ride":
        return Capacity("count", int(details["seats"]), "seat")
    if category == "meal":
        return Capacity("count", int(details["portions"]), "portion")
    if category in ("sell", "give", "swap"):
        return Capacity("count", int(details.get("quantity", 1)), "unit")
    if category == "produce":
        return Capacity("decimal", _milli(details["quantity"]), str(details["unit"]))
    if category == "group-buy":
        return Capacity("decimal", _milli(details["target_quantity"]), str(details["unit"]))
    if category in SLOT_CATEGORIES:
        start = details.get("available_from")
        end = details.get("available_until")
        low = parse_utc(start, field="available_from") if start else None
        high = parse_utc(end, field="available_until") if end else None
        return Capacity("slot", 1, "slot", (low, high))
    raise ValidationError(Text("listings of category %(category)s cannot be booked",
                               category=repr(category)))


def _milli(text: object) -> int:
    return int(Decimal(str(text)) * DECIMAL_SCALE)


def parse_quantity(capacity: Capacity, raw: object) -> int:
    """A requested quantity in capacity units (thousandths for decimal quantities)."""
    if capacity.mode == "slot":
        return 1
    if raw is None or raw == "":
        raw = 1
    if capacity.mode == "count":
        return parse_int(raw, "quantity", low=1, high=MAX_QUANTITY)
    value = parse_decimal(raw, "quantity", max_digits=9, places=3)
    if value <= 0:
        raise ValidationError("quantity must be positive", {"quantity": "positive, 3 decimals"})
    return int(value * DECIMAL_SCALE)


def format_quantity(capacity: Capacity, units: int) -> str:
    """A quantity as text (``2`` seats, ``1.5`` kg)."""
    if capacity.mode != "decimal":
        return str(units)
    return format_amount(units, decimals=3).rstrip("0").rstrip(".")


def check_quantity(capacity: Capacity, taken: int, wanted: int) -> None:
    """Refuse more than what is left (ConflictingCapacityError, a 409)."""
    left = capacity.total - taken
    if wanted > left:
        raise CapacityError(
            Text("only %(left)s %(unit)s(s) left, asked %(asked)s",
                 left=number(format_quantity(capacity, max(left, 0))), unit=Text(capacity.unit),
                 asked=number(format_quantity(capacity, wanted))),
            {"quantity": "more than available"})


class CapacityError(ValidationError):
    """Not enough left (mapped to 409: valid input that conflicts with other bookings)."""

    code = "not_available"


@dataclass(frozen=True)
class Slot:
    """A half-open time interval [start, end)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Slot) -> bool:
        """True when the two intervals share any instant."""
        return self.start < other.end and other.start < self.end


def parse_slot(capacity: Capacity, start: object, end: object, *, now: datetime) -> Slot:
    """A future, non-inverted slot inside the listing's availability window."""
    slot = Slot(parse_utc(start, field="from"), parse_utc(end, field="to"))
    if slot.start <= now:
        raise ValidationError("the slot starts in the past", {"from": "must be in the future"})
    if slot.end <= slot.start:
        raise ValidationError("the slot ends before it starts", {"to": "must be after from"})
    if slot.end - slot.start > MAX_SLOT:
        raise ValidationError("the slot is too long", {"to": "at most 92 days"})
    low, high = capacity.window
    if (low is not None and slot.start < low) or (high is not None and slot.end > high):
        raise ValidationError("the slot is outside the listing's availability",
                              {"from": "outside the availability window"})
    return slot


def check_slot(slot: Slot, booked: Iterable[Slot]) -> None:
    """Refuse a slot overlapping an accepted one."""
    for other in booked:
        if slot.overlaps(other):
            raise CapacityError(
                Text("already lent from %(start)s to %(end)s", start=When(format_utc(other.start)),
                     end=When(format_utc(other.end))),
                {"from": "overlaps another booking"})


# --- price -----------------------------------------------------------------------------------

PERIOD_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


def deal_amount(price_units: int | None, period: str | None, capacity: Capacity, quantity: int,
                slot: Slot | None) -> int:
    """What the booker pays: unit price × quantity, or price × started periods of a slot."""
    if not price_units:
        return 0
    if capacity.mode == "slot":
        if period is None or slot is None:
            return price_units
        seconds = (slot.end - slot.start).total_seconds()
        return price_units * max(1, math.ceil(seconds / PERIOD_SECONDS[period]))
    if capacity.mode == "decimal":
        exact = Decimal(price_units) * quantity / DECIMAL_SCALE
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return price_units * quantity


def agreed_time(category: str, details: Mapping[str, Any], slot: Slot | None) -> datetime | None:
    """When the deal happens (departure, pickup, loan start, group-buy deadline)."""
    if slot is not None:
        return slot.start
    key = {"ride": "departure", "meal": "pickup_time", "group-buy": "deadline"}.get(category)
    return parse_utc(details[key], field=key) if key and details.get(key) else None


# --- documents -------------------------------------------------------------------------------

DEAL_TERMS: dict[str, Any] = {
    **MARKETPLACE_TERMS,
    "Agreement": "vf:Agreement",
    "Commitment": "vf:Commitment",
    "stipulates": "vf:stipulates",
    "stipulatesReciprocal": "vf:stipulatesReciprocal",
    "satisfies": {"@id": "vf:satisfies", "@type": "@id"},
    "provider": {"@id": "vf:provider", "@type": "@id"},
    "receiver": {"@id": "vf:receiver", "@type": "@id"},
    "hasBeginning": "vf:hasBeginning",
    "hasEnd": "vf:hasEnd",
    "deposit": "mn:deposit",
    "dealState": "mn:dealState",
    "reason": "mn:reason",
    "rating": "mn:rating",
    "noShow": "mn:noShow",
    "feedbackFor": {"@id": "mn:feedbackFor", "@type": "@id"},
    # The payment notice (services/deal_payments.py: build_notice); without these three
    # terms they expanded to blank-node properties ("_:paymentState") that name nothing.
    "paymentFor": "mn:paymentFor",
    "paymentState": "mn:paymentState",
    "paymentTransfer": "mn:paymentTransfer",
    # Waiting lists across communities (protocol/queue_wire.py)
    "QueuePlace": "mn:QueuePlace",
    "queueState": "mn:queueState",
    "position": "mn:position",
    "confirmBy": "mn:confirmBy",
    "joinActivity": {"@id": "mn:joinActivity", "@type": "@id"},
}
DEAL_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, DEAL_TERMS]
MESSAGE_MAX = 1000
COMMENT_MAX = 500
WIRE_STATES = {"in_progress": "start", "completed": "complete", "cancelled": "cancel",
               "disputed": "dispute"}


@dataclass(frozen=True)
class DealTerms:
    """What both parties agree on, independent of storage."""

    agreement_id: str
    offer_id: str
    listing_object: str
    booker: str
    author: str
    category: str
    quantity: str
    unit: str
    slot: Slot | None
    amount: str | None
    deposit: str | None
    currency_uri: str
    currency_code: str
    message: str
    published: datetime


def _money(value: str, currency_uri: str, code: str) -> dict[str, Any]:
    return {"resourceConformsTo": currency_uri,
            "resourceQuantity": {"hasUnit": code, "hasNumericalValue": value}}


def build_offer(terms: DealTerms) -> dict[str, Any]:
    """The unsigned ``Offer`` of an ``Agreement`` (sign it with the booker's key)."""
    primary: dict[str, Any] = {
        "type": "Commitment", "satisfies": f"{terms.listing_object}#primary",
        "provider": terms.author, "receiver": terms.booker,
        "resourceQuantity": {"hasUnit": terms.unit, "hasNumericalValue": terms.quantity},
    }
    if terms.slot is not None:
        primary.update(hasBeginning=format_utc(terms.slot.start),
                       hasEnd=format_utc(terms.slot.end))
    agreement: dict[str, Any] = {"type": "Agreement", "id": terms.agreement_id,
                                 "category": terms.category, "stipulates": primary}
    if terms.amount is not None:
        agreement["stipulatesReciprocal"] = {
            "type": "Commitment", "satisfies": f"{terms.listing_object}#reciprocal",
            "provider": terms.booker, "receiver": terms.author,
            **_money(terms.amount, terms.currency_uri, terms.currency_code),
        }
    if terms.deposit is not None:
        agreement["deposit"] = _money(terms.deposit, terms.currency_uri, terms.currency_code)
    return {
        "@context": DEAL_CONTEXT, "id": terms.offer_id, "type": "Offer", "actor": terms.booker,
        "to": [terms.author], "object": agreement, "target": terms.listing_object,
        "content": terms.message, "published": format_utc(terms.published),
    }


def build_answer(*, activity_id: str, actor: str, offer_id: str, agreement_id: str,
                 booker: str, accept: bool, when: datetime, reason: str = "") -> dict[str, Any]:
    """The unsigned ``Accept``/``Reject`` of an Offer (sign it with the author's key)."""
    document: dict[str, Any] = {
        "@context": DEAL_CONTEXT, "id": activity_id, "type": "Accept" if accept else "Reject",
        "actor": actor, "to": [booker], "object": {"type": "Offer", "id": offer_id},
        "result": agreement_id, "published": format_utc(when),
    }
    if reason:
        document["reason"] = reason[:200]
    return document


def build_state_update(*, activity_id: str, actor: str, to: str, agreement_id: str,
                       state: State, when: datetime, reason: str = "") -> dict[str, Any]:
    """The unsigned ``Update`` telling the other party of a new state (done, cancelled…)."""
    if state not in WIRE_STATES:
        raise ValueError(f"state {state!r} is not sent as an Update")
    agreement: dict[str, Any] = {"type": "Agreement", "id": agreement_id, "dealState": state}
    if reason:
        agreement["reason"] = reason[:200]
    return {"@context": DEAL_CONTEXT, "id": activity_id, "type": "Update", "actor": actor,
            "to": [to], "object": agreement, "published": format_utc(when)}


@dataclass(frozen=True)
class Feedback:
    """A rating of the other party after a completed deal."""

    rating: int
    comment: str
    no_show: bool


def parse_feedback(data: object) -> Feedback:
    """Validate feedback input: rating 1-5, short comment, no-show flag."""
    if not isinstance(data, Mapping):
        raise ValidationError("feedback must be an object", {"": "expected an object"})
    try:
        rating = parse_int(data.get("rating"), "rating", low=1, high=5)
    except ValidationError as exc:
        raise ValidationError("rating must be 1-5",
                              {"rating": "a whole number from 1 to 5"}) from exc
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise ValidationError("comment must be text", {"comment": "text"})
    comment = clean_text(comment)
    if len(comment) > COMMENT_MAX:
        raise ValidationError("comment too long",
            {"comment": Text("at most %(max)s characters", max=COMMENT_MAX)})
    no_show = data.get("no_show", False)
    if no_show in ("on", "true", "1"):
        no_show = True
    if no_show in ("", "false", "0", None):
        no_show = False
    if not isinstance(no_show, bool):
        raise ValidationError("no_show must be true or false", {"no_show": "true or false"})
    return Feedback(rating, comment, no_show)


def build_feedback(feedback: Feedback, *, note_id: str, author: str, subject: str,
                   agreement_id: str, when: datetime) -> dict[str, Any]:
    """The unsigned feedback ``Note`` (sign it with its author's key)."""
    return {
        "@context": DEAL_CONTEXT, "id": note_id, "type": "Note", "attributedTo": author,
        "to": [subject], "feedbackFor": agreement_id, "rating": feedback.rating,
        "noShow": feedback.no_show, "content": feedback.comment,
        "published": format_utc(when),
    }


def build_feedback_create(note: Mapping[str, Any], *, actor: str, subject: str,
                          when: datetime) -> dict[str, Any]:
    """The unsigned ``Create`` carrying a signed feedback ``Note`` to the other party's node
    (sign it with the same member's key)."""
    return {"@context": DEAL_CONTEXT, "id": f"{note['id']}/create", "type": "Create",
            "actor": actor, "to": [subject], "object": dict(note),
            "published": format_utc(when)}


# --- parsing what arrives --------------------------------------------------------------------


@dataclass(frozen=True)
class OfferedDeal:
    """What a received Offer asks for."""

    offer_id: str
    agreement_id: str
    booker: str
    listing_object: str
    quantity: str
    slot_start: str | None
    slot_end: str | None
    amount: str | None
    deposit: str | None
    message: str


def _value(node: object) -> str | None:
    if not isinstance(node, Mapping):
        return None
    quantity = node.get("resourceQuantity")
    value = quantity.get("hasNumericalValue") if isinstance(quantity, Mapping) else None
    return value if isinstance(value, str) else None


def parse_offer(document: Mapping[str, Any]) -> OfferedDeal:
    """Read an Offer of an Agreement (its proof is checked by the caller)."""
    agreement = document.get("object")
    if not isinstance(agreement, Mapping) or agreement.get("type") != "Agreement":
        raise ValidationError("an Offer of an Agreement was expected")
    primary = agreement.get("stipulates")
    if not isinstance(primary, Mapping):
        raise ValidationError("the Agreement stipulates nothing")
    quantity = _value(primary) or "1"
    start, end = primary.get("hasBeginning"), primary.get("hasEnd")
    message = document.get("content") or ""
    strings = (document.get("id"), agreement.get("id"), document.get("actor"),
               document.get("target"))
    if not all(isinstance(s, str) and s for s in strings) or not isinstance(message, str):
        raise ValidationError("the Offer lacks an id, an actor or a target")
    return OfferedDeal(
        offer_id=str(document["id"]), agreement_id=str(agreement["id"]),
        booker=str(document["actor"]), listing_object=str(document["target"]),
        quantity=quantity, slot_start=start if isinstance(start, str) else None,
        slot_end=end if isinstance(end, str) else None,
        amount=_value(agreement.get("stipulatesReciprocal")),
        deposit=_value(agreement.get("deposit")), message=clean_text(message)[:MESSAGE_MAX],
    )


DealActivity = Literal["offer", "answer", "update", "feedback"]


def deal_activity_kind(activity: Mapping[str, Any]) -> DealActivity | None:
    """Which deal message an activity is, or None when it is not about a deal."""
    kind, obj = activity.get("type"), activity.get("object")
    if not isinstance(obj, Mapping):
        return None
    if kind == "Offer" and obj.get("type") == "Agreement":
        return "offer"
    if kind in ("Accept", "Reject") and obj.get("type") == "Offer":
        return "answer"
    if kind == "Update" and obj.get("type") == "Agreement":
        return "update"
    if kind == "Create" and obj.get("type") == "Note" and "feedbackFor" in obj:
        return "feedback"
    return None
