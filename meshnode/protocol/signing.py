"""Headers of an outgoing signed POST (pure: the key and the time are passed in).

* ``rfc9421-ed25519``: between meshnode nodes (Multikey in ``assertionMethod``).
* ``cavage-rsa``: draft-cavage ``rsa-sha256`` with ``Digest``, what Mastodon speaks.
* ``rfc9421-rsa``: RFC 9421 ``rsa-v1_5-sha256`` with ``Content-Digest`` (Mastodon 4.5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from meshnode.protocol.httpsig import (
    SigningKey,
    content_digest_header,
    sha256_digest_header,
    sign_cavage,
    sign_rfc9421,
)
from meshnode.protocol.vocab import ACTIVITY_JSON

Scheme = Literal["rfc9421-ed25519", "cavage-rsa", "rfc9421-rsa"]
RFC9421_COMPONENTS = ("@method", "@target-uri", "@authority", "date", "content-digest")
CAVAGE_COMPONENTS = ("(request-target)", "host", "date", "digest")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_http_date(unix: int) -> str:
    """RFC 9110 IMF-fixdate of a unix time."""
    when = datetime.fromtimestamp(unix, UTC)
    return (f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT")


def signed_post_headers(
    scheme: Scheme, url: str, body: bytes, *, key: SigningKey, key_id: str, now: int
) -> dict[str, str]:
    """All headers of a signed ActivityPub POST of ``body`` to ``url``."""
    headers = {
        "Host": urlsplit(url).netloc,
        "Date": format_http_date(now),
        "Content-Type": ACTIVITY_JSON,
    }
    if scheme == "cavage-rsa":
        headers["Digest"] = sha256_digest_header(body)
        headers.update(sign_cavage("POST", url, headers, key=key, key_id=key_id,
                                   components=CAVAGE_COMPONENTS))
    else:
        headers["Content-Digest"] = content_digest_header(body)
        headers.update(sign_rfc9421("POST", url, headers, key=key, key_id=key_id, created=now,
                                    components=RFC9421_COMPONENTS))
    return headers
