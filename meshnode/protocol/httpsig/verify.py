"""Reading whichever signature a request carries, and verifying it once the key is known."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from meshnode.protocol.errors import (
    ClockSkewError,
    SignatureError,
    SignatureExpiredError,
    ValidationError,
)
from meshnode.protocol.httpsig.cavage import parse_cavage
from meshnode.protocol.httpsig.common import (
    _DIGEST_COMPONENTS,
    _TARGET_COMPONENTS_9421,
    DEFAULT_MAX_SKEW,
    Headers,
    ParsedSignature,
    SignatureVerdict,
    VerifyingKey,
    _field_lines,
)
from meshnode.protocol.httpsig.digests import check_body_digest
from meshnode.protocol.httpsig.keys import _default_algorithm, _verify_bytes
from meshnode.protocol.httpsig.rfc9421 import parse_rfc9421


def parse_signature(method: str, url: str, headers: Headers) -> ParsedSignature:
    """Read whichever signature a request carries: RFC 9421 first, then cavage."""
    lines = _field_lines(headers)
    if "signature-input" in lines:
        return parse_rfc9421(method, url, lines)
    if "signature" in lines:
        return parse_cavage(method, url, lines)
    raise SignatureError("no signature")


# --------------------------------------------------------------------------- verification


def _as_unix(now: int | datetime) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValidationError("now must be an aware datetime")
        return int(now.timestamp())
    return now


# RFC 9110 §5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Parsed by
# hand: email.utils imports socket, random and time, which this package avoids.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_http_date(value: str) -> int:
    """Parse an RFC 9110 IMF-fixdate ``Date`` value into unix seconds."""
    match = _IMF_FIXDATE.fullmatch(value.strip())
    if match is None or match[2] not in _MONTHS:
        raise SignatureError(f"unreadable Date header {value!r}")
    day, year, hour, minute, second = (int(match[i]) for i in (1, 3, 4, 5, 6))
    try:
        when = datetime(year, _MONTHS.index(match[2]) + 1, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError(f"unreadable Date header {value!r}") from exc
    return int(when.timestamp())


def check_replay_window(parsed: ParsedSignature) -> None:
    """Refuse an RFC 9421 signature without ``created``: nothing would bound its replay.

    RFC 9421 §2.3 makes ``created`` optional, but Mastodon and Fedify require it (REFERENCE
    §2); a ``Date`` header is not part of an RFC 9421 signature unless covered, and even then
    the time window then depends on a header the signer may not have meant to sign.
    """
    if parsed.scheme == "rfc9421" and parsed.created is None:
        raise SignatureError("an RFC 9421 signature must carry a created parameter")


def _signed_time(parsed: ParsedSignature) -> tuple[int, str]:
    check_replay_window(parsed)
    if parsed.created is not None:
        return parsed.created, "created"
    if parsed.date is None or "date" not in parsed.components:
        raise SignatureError("signature covers neither a created time nor the Date header")
    return parse_http_date(parsed.date), "Date header"


def _check_time(parsed: ParsedSignature, now: int, max_skew: int) -> None:
    signed_at, source = _signed_time(parsed)
    delta = now - signed_at
    if abs(delta) > max_skew:
        direction = "in the past" if delta > 0 else "in the future"
        raise ClockSkewError(
            f"signature {source} is {abs(delta)} seconds {direction} (allowed ±{max_skew} s);"
            " one of the two servers' clocks is probably wrong"
        )
    if parsed.expires is not None and now > parsed.expires:
        raise SignatureExpiredError(f"signature expired {now - parsed.expires} seconds ago")


def _check_target_covered(parsed: ParsedSignature) -> None:
    covered = set(parsed.components)
    if parsed.scheme == "cavage":
        if "(request-target)" not in covered:
            raise SignatureError("signature does not cover (request-target)")
    elif "@method" not in covered or not covered & _TARGET_COMPONENTS_9421:
        raise SignatureError("signature does not cover @method and the target (@target-uri/@path)")


def _check_body(parsed: ParsedSignature, body: bytes | None) -> None:
    if body is None or (not body and not parsed.digest_headers):
        return
    if not _DIGEST_COMPONENTS & set(parsed.components):
        raise SignatureError("request has a body but the signature does not cover its digest")
    check_body_digest(parsed.digest_headers, body)


def _effective_algorithm(parsed: ParsedSignature, key: VerifyingKey) -> str:
    return parsed.algorithm or _default_algorithm(key)


def verify_parsed(
    parsed: ParsedSignature,
    key: VerifyingKey,
    *,
    now: int | datetime,
    max_skew: int = DEFAULT_MAX_SKEW,
    body: bytes | None,
) -> SignatureVerdict:
    """Verify a parsed signature with the key the caller fetched for ``parsed.key_id``.

    Checks, in order: method and target covered; ``created``/``Date`` within
    ±``max_skew`` of ``now`` (:class:`ClockSkewError`) and ``expires`` not
    past; a body's digest covered and matching (:class:`DigestMismatchError`);
    then the signature itself (:class:`SignatureError`).
    """
    _check_target_covered(parsed)
    _check_time(parsed, _as_unix(now), max_skew)
    _check_body(parsed, body)
    algorithm = _effective_algorithm(parsed, key)
    if not any(_verify_bytes(key, algorithm, parsed.signature, b.encode()) for b in parsed.bases):
        raise SignatureError(f"signature by {parsed.key_id!r} does not verify")
    return SignatureVerdict(
        key_id=parsed.key_id, scheme=parsed.scheme, algorithm=algorithm, created=parsed.created
    )
