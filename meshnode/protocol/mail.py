"""E-mail as values: address checks, header-safe text, what an SMTP reply means.

Pure (the standard library's ``email`` package imports ``socket``, so the message itself is
built at the edge, ``federation/mail.py``); a header value made by :func:`one_line` never
carries a line break, so nothing can be injected into headers.
"""

from __future__ import annotations

import re

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.retry import MAX_ATTEMPTS, Outcome, backoff_seconds

MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3 (path) less the angle brackets
# ASCII only (no SMTPUTF8): the RFC 5322 dot-atom characters, then a host name.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                      r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
# Authentication refused or required: the admin's configuration, fixed later; keep the mail.
_RETRY_5XX = frozenset({530, 534, 535, 538})


def parse_address(value: object) -> str:
    """A member's e-mail address (ValidationError if it is not one we can send to)."""
    if not isinstance(value, str):
        raise ValidationError("address must be text", {"address": "an e-mail address"})
    text = value.strip()
    if len(text) > MAX_ADDRESS or not _ADDRESS.fullmatch(text) or ".." in text.split("@")[1]:
        raise ValidationError("not an e-mail address", {"address": "an e-mail address"})
    local, domain = text.split("@")
    return f"{local}@{domain.lower()}"


def one_line(text: str, limit: int = 200) -> str:
    """Header-safe text: line breaks and other controls become spaces, length capped."""
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    return " ".join(cleaned.split())[:limit]


def classify_smtp(code: int | None) -> Outcome:
    """What a failed send means (None: no reply at all, e.g. connection refused or lost).

    4xx is temporary (RFC 5321 §4.2.1); 5xx is final, except authentication replies, which
    an admin fixes in config.toml while the mail waits.
    """
    if code is None or 400 <= code < 500 or code in _RETRY_5XX:
        return "retry"
    if 200 <= code < 300:
        return "done"
    return "final"


def mail_retry_delay(attempt: int, code: int | None, jitter: float) -> float | None:
    """Seconds before retrying a mail after failed attempt ``attempt``; None: give up."""
    if classify_smtp(code) != "retry" or attempt >= MAX_ATTEMPTS:
        return None
    return backoff_seconds(attempt, jitter)
