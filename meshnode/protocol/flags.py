"""Reports across nodes: the ActivityStreams ``Flag`` and the moderator's answer to it.

A ``Flag`` (https://www.w3.org/TR/activitystreams-vocabulary/#dfn-flag) is sent as Mastodon
sends it: ``object`` lists the reported actor and objects, ``content`` is the reporter's
comment, and the ``actor`` is the community (Group) actor when the report is anonymous, so
no reporter id leaves the node. The origin node's decision travels back as an ``Accept``
(action taken: the content was removed) or a ``Reject`` (dismissed) whose ``object`` is the
Flag itself, embedded with its ``id``, ``type`` and ``actor`` (the AS2 way to answer an
activity, https://www.w3.org/TR/activitypub/#accept-activity-inbox; servers without
moderation federation ignore it).

Pure: no I/O, no clock; the caller passes ids and times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from meshnode.protocol.activities import check_url, id_of
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text, html_to_text
from meshnode.protocol.vocab import AS_CONTEXT

__all__ = [
    "DECISIONS", "MAX_COMMENT", "MAX_FLAG_OBJECTS", "REASONS", "FlagAnswer", "ParsedFlag",
    "build_flag", "build_flag_answer", "is_flag_answer", "parse_flag", "parse_flag_answer",
]

# What a member may choose; ``other`` needs the comment to say more.
REASONS: Final = ("spam", "scam", "illegal", "offensive", "other")
MAX_COMMENT: Final = 1000  # as Mastodon's report comment
MAX_RAW_CONTENT: Final = 4 * MAX_COMMENT  # markup allowance before stripping
MAX_FLAG_OBJECTS: Final = 20
# decision → the answer's type
DECISIONS: Final[Mapping[str, str]] = {"removed": "Accept", "dismissed": "Reject"}


@dataclass(frozen=True)
class ParsedFlag:
    """An incoming Flag, checked: plain-text comment, the objects it names."""

    id: str
    actor: str
    objects: tuple[str, ...]
    comment: str
    reason: str


@dataclass(frozen=True)
class FlagAnswer:
    """An Accept/Reject of one of our Flags."""

    flag_id: str
    decision: str  # "removed" | "dismissed"


def build_flag(*, flag_id: str, actor: str, objects: Sequence[str], comment: str,
               reason: str, published: str) -> dict[str, Any]:
    """The Flag as Mastodon sends and reads it (no ``to``: it goes to one node's inbox);
    ``reason`` travels in ``summary``."""
    return {
        "@context": AS_CONTEXT,
        "id": flag_id,
        "type": "Flag",
        "actor": actor,
        "object": list(objects),
        "content": comment,
        "summary": reason,
        "published": published,
    }


def _comment(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("the Flag's content must be text")
    if len(value) > MAX_RAW_CONTENT:
        raise ValidationError(f"the Flag's content is over {MAX_RAW_CONTENT} characters")
    text = html_to_text(value) if "<" in value else clean_text(value)
    if len(text) > MAX_COMMENT:
        raise ValidationError(f"the Flag's comment is over {MAX_COMMENT} characters")
    return text


def _objects(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not 0 < len(items) <= MAX_FLAG_OBJECTS:
        raise ValidationError(f"a Flag names 1 to {MAX_FLAG_OBJECTS} objects")
    return tuple(dict.fromkeys(id_of(item, "object") for item in items))


def parse_flag(act: Mapping[str, Any]) -> ParsedFlag:
    """Check an incoming Flag: 1-20 objects, a comment of at most 1,000 characters once any
    HTML is stripped (raw markup capped at 4,000); ValidationError otherwise."""
    if act.get("type") != "Flag":
        raise ValidationError("not a Flag")
    summary = act.get("summary")
    reason = summary if isinstance(summary, str) and summary in REASONS else "other"
    return ParsedFlag(id=check_url(act.get("id"), "id"), actor=id_of(act.get("actor"), "actor"),
                      objects=_objects(act.get("object")), comment=_comment(act.get("content")),
                      reason=reason)


def build_flag_answer(*, answer_id: str, actor: str, flag_id: str, flag_actor: str,
                      decision: str) -> dict[str, Any]:
    """``Accept`` (removed) or ``Reject`` (dismissed) of a Flag we received."""
    if decision not in DECISIONS:
        raise ValidationError(f"unknown decision {decision[:40]!r}")
    return {
        "@context": AS_CONTEXT,
        "id": answer_id,
        "type": DECISIONS[decision],
        "actor": actor,
        "object": {"id": flag_id, "type": "Flag", "actor": flag_actor},
        "to": [flag_actor],
    }


def is_flag_answer(act: Mapping[str, Any]) -> bool:
    """True for an Accept/Reject whose object is an embedded Flag."""
    obj = act.get("object")
    return (act.get("type") in ("Accept", "Reject") and isinstance(obj, Mapping)
            and obj.get("type") == "Flag")


def is_flag_activity(act: Mapping[str, Any]) -> bool:
    """A Flag, or an answer (Accept / Reject) to one."""
    return act.get("type") == "Flag" or is_flag_answer(act)


def parse_flag_answer(act: Mapping[str, Any]) -> FlagAnswer:
    """The Flag id and decision of an answer (``is_flag_answer`` already true)."""
    if not is_flag_answer(act):
        raise ValidationError("not an answer to a Flag")
    decision = "removed" if act["type"] == "Accept" else "dismissed"
    return FlagAnswer(flag_id=id_of(act["object"], "object"), decision=decision)
