"""Transfer messages: prepare, answers (commit, reject, release) and route hops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou.fields import ident_field, positive_units, text_field
from meshnode.protocol.iou.vocab import IOU_CONTEXT, MAX_REASON, MAX_ROUTE
from meshnode.protocol.ledger import parse_memo

# --- transfer messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareTerms:
    """An offer to move value over one hop of a route (the ``IouPrepare`` activity)."""

    transfer_id: str
    line_id: str
    amount: int
    source_amount: int
    route: tuple[str, ...]
    payer: str
    payee: str
    memo: str
    expires: str
    # Payee-denominated transfers: every node's amount along the route, in that node's minor
    # units, fixed by the payer's node (see :func:`payee_amounts`); empty otherwise.
    amounts: tuple[int, ...] = ()


def transfer_activity_id(actor: str, transfer_id: str, kind: str, suffix: str = "") -> str:
    """Deterministic activity id: a resend of the same step reuses it (outbox dedupe)."""
    return f"{actor}/iou/transfers/{transfer_id}/{kind.lower()}{suffix}"


def build_prepare(terms: PrepareTerms, *, actor: str, to: str, when: str) -> dict[str, Any]:
    """Unsigned ``IouPrepare``: amounts in minor units (receiver's and sender's currency)."""
    return {
        "@context": IOU_CONTEXT,
        "id": transfer_activity_id(actor, terms.transfer_id, "prepare"),
        "type": "IouPrepare",
        "actor": actor,
        "to": [to],
        "transfer": terms.transfer_id,
        "line": terms.line_id,
        "amount": str(terms.amount),
        "sourceAmount": str(terms.source_amount),
        "route": list(terms.route),
        "payer": terms.payer,
        "payee": terms.payee,
        "memo": terms.memo,
        "expires": terms.expires,
        "published": when,
    } | ({"amounts": [str(units) for units in terms.amounts]} if terms.amounts else {})


def build_answer(kind: str, *, actor: str, to: str, transfer_id: str, line_id: str,
                 when: str, reason: str = "", suffix: str = "") -> dict[str, Any]:
    """Unsigned ``IouCommit`` / ``IouReject`` / ``IouRelease`` for a transfer."""
    if kind not in ("IouCommit", "IouReject", "IouRelease"):
        raise ValueError(f"not an answer type: {kind}")
    document: dict[str, Any] = {
        "@context": IOU_CONTEXT,
        "id": transfer_activity_id(actor, transfer_id, kind.removeprefix("Iou"), suffix),
        "type": kind, "actor": actor, "to": [to], "transfer": transfer_id, "line": line_id,
        "published": when,
    }
    if reason:
        document["reason"] = reason[:MAX_REASON]
    return document


def parse_prepare(act: Mapping[str, Any]) -> PrepareTerms:
    """Check and read an ``IouPrepare``."""
    route = act.get("route")
    if (not isinstance(route, Sequence) or isinstance(route, str)
            or not 2 <= len(route) <= MAX_ROUTE
            or not all(isinstance(hop, str) and 0 < len(hop) <= 500 for hop in route)
            or len(set(route)) != len(route)):
        raise ValidationError("route must list 2-5 distinct node actors")
    amounts: tuple[int, ...] = ()
    if "amounts" in act:
        listed = act.get("amounts")
        if not isinstance(listed, list) or len(listed) != len(route):
            raise ValidationError("amounts must give one amount per node of the route")
        amounts = tuple(positive_units({"amounts": item}, "amounts") for item in listed)
    return PrepareTerms(
        transfer_id=ident_field(act, "transfer"), line_id=ident_field(act, "line"),
        amount=positive_units(act, "amount"), source_amount=positive_units(act, "sourceAmount"),
        route=tuple(route), payer=text_field(act, "payer"), payee=text_field(act, "payee"),
        memo=parse_memo(act.get("memo")), expires=text_field(act, "expires", 40),
        amounts=amounts,
    )


@dataclass(frozen=True)
class Answer:
    """A parsed commit / reject / release."""

    kind: str
    transfer_id: str
    line_id: str
    reason: str


def parse_answer(act: Mapping[str, Any]) -> Answer:
    """Check and read an ``IouCommit`` / ``IouReject`` / ``IouRelease``."""
    reason = act.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationError("reason must be short text")
    return Answer(kind=str(act.get("type")), transfer_id=ident_field(act, "transfer"),
                  line_id=ident_field(act, "line"), reason=reason)


def next_hop(route: Sequence[str], me: str) -> str | None:
    """The node after ``me`` on the route (None when ``me`` is the last, the payee's node)."""
    index = list(route).index(me)
    return route[index + 1] if index + 1 < len(route) else None


def previous_hop(route: Sequence[str], me: str) -> str | None:
    """The node before ``me`` on the route (None for the payer's node)."""
    index = list(route).index(me)
    return route[index - 1] if index else None
