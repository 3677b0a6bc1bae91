"""People and communities by name: cleaning remote display names, handles, deal memo links.

Pure: remote names are untrusted text. They are cleaned here (control and formatting
characters removed, whitespace collapsed, length capped) before anything stores or shows
them; templates escape them on top of that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

NAME_MAX = 80
USERNAME_MAX = 60
# Unicode categories dropped from remote names: controls (Cc), format characters such as
# bidirectional overrides and zero-width joiners (Cf), unassigned (Cn), private use (Co),
# surrogates (Cs), and line/paragraph separators (Zl, Zp).
_DROPPED = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")
_HANDLE_USER = re.compile(r"[^A-Za-z0-9_.\-]")
# Memos written by deal payments: "deal <id>: title" (services/deal_effects.py), possibly
# prefixed "refund, ". The id is the deal's hex id.
_DEAL_MEMO = re.compile(r"^(?P<prefix>(?:refund, )?deal )(?P<id>[0-9a-f]{8,64})(?P<rest>:.*)$",
                        re.DOTALL)


def clean_text(value: object, max_len: int = NAME_MAX) -> str:
    """Untrusted text made safe to store and show on one line (not HTML-escaped)."""
    if not isinstance(value, str):
        return ""
    if (len(value) <= max_len and value.isprintable() and "  " not in value
            and value.strip() == value and unicodedata.is_normalized("NFC", value)):
        # Already clean (the usual case, every name on every page): printable text has no
        # control, format, private-use, unassigned or separator characters but the space.
        return value
    kept = "".join(" " if ch.isspace() else ch for ch in value[: max_len * 4]
                   if ch.isspace() or unicodedata.category(ch) not in _DROPPED)
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", kept)).strip()
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    return text


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, lower-cased (what a handle shows after the ``@``)."""
    return urlsplit(url).netloc.lower()


def handle_of(username: str, actor_or_base_url: str) -> str:
    """``username@host[:port]``; characters a handle cannot hold are dropped."""
    user = _HANDLE_USER.sub("", clean_text(username, USERNAME_MAX))
    host = host_of(actor_or_base_url)
    return f"{user}@{host}" if user else host


@dataclass(frozen=True)
class Party:
    """A person or a community as pages and the API name them."""

    name: str
    handle: str
    actor: str

    def to_json(self) -> dict[str, Any]:
        """``{name, handle, actor}`` for API objects."""
        return {"name": self.name, "handle": self.handle, "actor": self.actor}

    @property
    def label(self) -> str:
        """``Camille · camille@canal.example`` (the handle alone when there is no name)."""
        if not self.name or self.name == self.handle:
            return self.handle
        return f"{self.name} · {self.handle}"


def remote_party(actor_id: str, *, name: str, username: str) -> Party:
    """A remote actor from its cached document's cleaned name and preferredUsername.

    With nothing cached yet the handle falls back to the actor URL's last path segment.
    """
    if not username:
        username = urlsplit(actor_id).path.rstrip("/").rsplit("/", 1)[-1]
    handle = handle_of(username, actor_id)
    return Party(name=clean_text(name) or handle, handle=handle, actor=actor_id)


@dataclass(frozen=True)
class DealMemo:
    """A payment memo that names a deal: the text before and after the deal id."""

    prefix: str
    deal_id: str
    rest: str


def parse_deal_memo(memo: str) -> DealMemo | None:
    """``deal bab713e8…: title`` → its parts, so a page can link the id; else None."""
    match = _DEAL_MEMO.match(memo)
    if match is None:
        return None
    return DealMemo(match["prefix"], match["id"], match["rest"])
