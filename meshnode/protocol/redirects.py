"""Where a user-given target (``/login?next=…``) may send a browser: same-origin paths only.

Browsers are lenient where a naive check is strict: the WHATWG URL parser removes tabs and
newlines anywhere in a URL (``/\\t/evil.example`` becomes ``//evil.example``, another host),
treats ``\\`` like ``/`` in http(s) URLs, and strips leading and trailing C0 controls and
spaces (https://url.spec.whatwg.org/#concept-basic-url-parser). So a target is accepted
only if, before *and* after one percent-decoding, it is a plain absolute path: a single
leading ``/``, no control character or space, no backslash, no empty segment (``//``), no
dot segment, no scheme or authority. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

__all__ = ["HOME", "MAX_TARGET", "is_local_target", "local_target"]

HOME = "/"
MAX_TARGET = 500
# C0 controls, space, DEL and C1 controls; plus the Unicode line and paragraph separators.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\\]")
_DOT_SEGMENT = re.compile(r"/\.{1,2}(?:/|$)")
# Kept as-is when the target is re-quoted for the Location header (already-encoded %XX too).
_SAFE = "/?&=%#:@!$'()*+,;~-._"


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or _FORBIDDEN.search(text):
        return False
    path = text.split("?", 1)[0].split("#", 1)[0]
    if "//" in path or _DOT_SEGMENT.search(path):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


def is_local_target(target: str) -> bool:
    """True if ``target`` is a same-origin absolute path, checked raw and percent-decoded once."""
    if not target or len(target) > MAX_TARGET:
        return False
    return _plain_path(target) and _plain_path(unquote(target))


def local_target(target: str) -> str:
    """``target`` if it is a safe same-origin path (non-ASCII percent-encoded), else ``/``."""
    if not is_local_target(target):
        return HOME
    return quote(target, safe=_SAFE)
