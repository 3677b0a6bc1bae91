"""Direct messages between members of different nodes: ActivityPub ``Create`` of a ``Note``.

A direct message is a ``Note`` from one ``Person`` to exactly one other ``Person``: addressed
only to the recipient (``to`` = [recipient], no ``cc``/``bcc``/``audience``, never
``as:Public``, no followers collection), so it never shows on a public timeline
(https://www.w3.org/TR/activitypub/#addressing; Mastodon treats such a Note as a "direct"
message). ``inReplyTo`` threads a reply to the message it answers, ``context`` names the
listing it is about. The Note carries its author's FEP-8b32 ``eddsa-jcs-2022`` proof, so a
relaying node cannot alter it (REFERENCE §3).

Pure: the caller passes ids, times and text in; nothing here reads a clock or the network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from meshnode.protocol.activities import activity, check_url, same_origin
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text, html_to_text
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, PUBLIC

__all__ = [
    "MAX_RAW_CONTENT", "MAX_TEXT", "DirectNote", "build_direct_note", "create_activity",
    "is_direct_note", "member_handle", "parse_direct_note",
]

MAX_TEXT: Final = 2000  # characters of plain text, as for local messages
MAX_RAW_CONTENT: Final = 16_000  # characters of remote HTML before it is reduced to text
NOTE_CONTEXT: Final[list[Any]] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT]
_PUBLIC_NAMES: Final = frozenset({PUBLIC, "as:Public", "Public"})
_HIDDEN_AUDIENCES: Final = ("cc", "bto", "bcc", "audience")
# What a remote preferredUsername may look like to be shown and put in our URLs: a name
# such as "bob@trusted.example" or "../admin" from a hostile actor would mislead or misroute.
_USERNAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class DirectNote:
    """A checked direct message: who wrote it to whom, its plain text and its links."""

    id: str
    author: str
    recipient: str
    text: str
    in_reply_to: str | None
    context: str | None


def member_handle(username: str, actor_id: str) -> str:
    """``name@host[:port]`` of a remote member: its username on the host of its actor id."""
    if not _USERNAME.fullmatch(username):
        raise ValidationError("the actor's preferredUsername is not a plain name")
    return f"{username}@{urlsplit(actor_id).netloc.lower()}"


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML paragraphs (what Mastodon and others expect in ``content``)."""
    paragraphs = [p for p in clean_text(text).split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def build_direct_note(*, note_id: str, author: str, recipient: str, text: str,
                      published: str, in_reply_to: str | None = None,
                      context: str | None = None,
                      recipient_handle: str | None = None) -> dict[str, Any]:
    """The unsigned ``Note`` (sign it with the author's key before wrapping it).

    The recipient is also tagged as a ``Mention``: Mastodon shows a Note addressed only to
    actors it mentions as a direct message (its "direct" visibility).
    """
    note: dict[str, Any] = {
        "@context": NOTE_CONTEXT, "id": note_id, "type": "Note", "attributedTo": author,
        "to": [recipient], "content": text_to_html(text), "mediaType": "text/html",
        "published": published,
    }
    if recipient_handle is not None:
        note["tag"] = [{"type": "Mention", "href": recipient, "name": f"@{recipient_handle}"}]
    if in_reply_to is not None:
        note["inReplyTo"] = in_reply_to
    if context is not None:
        note["context"] = context
    return note


def create_activity(signed_note: Mapping[str, Any]) -> dict[str, Any]:
    """``Create`` of a signed direct Note, addressed like the Note (only to its recipient)."""
    return activity("Create", activity_id=f"{signed_note['id']}/create",
                    actor=str(signed_note["attributedTo"]), obj=dict(signed_note),
                    to=list(signed_note["to"]), published=str(signed_note["published"]))


def is_direct_note(act: Mapping[str, Any]) -> bool:
    """True for a ``Create`` of a ``Note`` that is not deal feedback (``feedbackFor``)."""
    obj = act.get("object")
    return (act.get("type") == "Create" and isinstance(obj, Mapping)
            and obj.get("type") == "Note" and "feedbackFor" not in obj)


def _audience(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _only_recipient(document: Mapping[str, Any], what: str) -> str:
    """The single ``to`` of a direct message; anything public or wider is refused."""
    to = _audience(document.get("to"))
    everyone = to + [item for name in _HIDDEN_AUDIENCES for item in _audience(document.get(name))]
    if any(isinstance(item, str) and item in _PUBLIC_NAMES for item in everyone):
        raise ValidationError(f"a direct message must not be public ({what})")
    if len(everyone) != 1 or len(to) != 1:
        raise ValidationError(f"a direct message is addressed to exactly one member ({what})")
    return check_url(to[0], "to")


def _text_of(note: Mapping[str, Any]) -> str:
    content = note.get("content")
    if not isinstance(content, str):
        raise ValidationError("a direct message needs text content")
    if len(content) > MAX_RAW_CONTENT:
        raise ValidationError(f"the message is longer than {MAX_RAW_CONTENT} characters")
    text = clean_text(content) if note.get("mediaType") == "text/plain" else html_to_text(content)
    if not 1 <= len(text) <= MAX_TEXT:
        raise ValidationError(f"the message text must have 1 to {MAX_TEXT} characters")
    return text


def _optional_url(note: Mapping[str, Any], name: str) -> str | None:
    value = note.get(name)
    if isinstance(value, Mapping):
        value = value.get("id")
    return None if value is None else check_url(value, name)


def parse_direct_note(act: Mapping[str, Any]) -> DirectNote:
    """Check a ``Create`` of a direct Note from ``act["actor"]``; ValidationError if not one.

    The Note must be the actor's own (``attributedTo`` and its id on the actor's origin) and
    both the activity and the Note are addressed to the same single recipient.
    """
    if not is_direct_note(act):
        raise ValidationError("expected a Create of a Note")
    note: Mapping[str, Any] = act["object"]
    actor = check_url(act.get("actor"), "actor")
    note_id = check_url(note.get("id"), "id")
    if note.get("attributedTo") != actor:
        raise ValidationError("the Note is not attributed to the activity's actor")
    if not same_origin(note_id, actor):
        raise ValidationError("the Note is not on its author's origin")
    recipient = _only_recipient(note, "Note")
    if _only_recipient(act, "Create") != recipient:
        raise ValidationError("the Create and its Note are addressed to different actors")
    return DirectNote(id=note_id, author=actor, recipient=recipient, text=_text_of(note),
                      in_reply_to=_optional_url(note, "inReplyTo"),
                      context=_optional_url(note, "context"))
