"""Bookings as iCalendar (RFC 5545): a member's private feed and one file per deal.

The feed lives at ``/calendar/<secret>.ics`` so calendar applications can poll it without a
session: the secret is 256 random bits, only its SHA-256 is stored, the member can replace
or revoke it from the Settings page, and each feed answers at most ``FEED_FETCHES_PER_HOUR``
times an hour. It lists the member's own deals only (as booker and as author) that have an
agreed time: loans' and services' slots, rides' departure, meals' pick-up time.

Each deal is one VEVENT whose ``UID`` is the deal's Agreement IRI (the same on both nodes of
a cross-node deal), ``SEQUENCE`` the number of transitions since the request (RFC 5545
§3.8.7.4: it grows on every change), ``STATUS`` TENTATIVE / CONFIRMED / CANCELLED. Text comes
from members and other communities, so it is written by the ``icalendar`` library, which
escapes ``\\``, ``;``, ``,`` and line breaks (§3.3.11): a title cannot add a property.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from meshnode.errors import NotFoundError
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.ratelimit import address_key, rate_limited
from meshnode.store import calendar as calendar_store
from meshnode.store import deals as deal_store
from meshnode.store.calendar import CalendarDeal
from meshnode.store.members import MemberRow

if TYPE_CHECKING:  # imported on the first calendar asked for: ~1.6 MB and 70 ms at start-up
    import icalendar

FEED_FETCHES_PER_HOUR = 60  # a calendar application polls every 15 min to a few hours
MISSES_PER_HOUR = 30  # unknown secrets asked from one address (/64 for IPv6)
HOUR = timedelta(hours=1)
HISTORY = timedelta(days=90)  # past deals kept in the feed
TOKEN_PREFIX = "mnc_"  # noqa: S105 (a prefix that names the kind of secret, not one)
TOKEN_RE = re.compile(r"mnc_[A-Za-z0-9_-]{43}")
# Member ids start at 1: key 0 counts unknown secrets per address in the same bounded table.
_MISSES = 0
PRODID = "-//meshnode//bookings//FR"
STATUS = {"requested": "TENTATIVE", "accepted": "CONFIRMED", "in_progress": "CONFIRMED",
          "completed": "CONFIRMED", "disputed": "CONFIRMED", "declined": "CANCELLED",
          "cancelled": "CANCELLED", "expired": "CANCELLED"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


async def feed_since(ctx: NodeContext, member: MemberRow) -> str | None:
    """When the member's current feed address was made (None: no feed)."""
    return await calendar_store.token_created(ctx.store.reader, member.id)


async def new_feed(ctx: NodeContext, member: MemberRow) -> str:
    """Give the member a new feed secret and return it (shown once; the old one is dead)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with ctx.store.transaction() as tx:
        await calendar_store.set_token(tx, member.id, _hash(token), format_utc(ctx.clock()))
    return token


async def revoke_feed(ctx: NodeContext, member: MemberRow) -> bool:
    """Turn the member's feed off (its address answers 404); False if there was none."""
    async with ctx.store.transaction() as tx:
        return await calendar_store.delete_token(tx, member.id)


def _take(ctx: NodeContext, key: tuple[int, str], limit: int) -> None:
    wait = ctx.member_limits.take(key, limit=limit, window=HOUR, now=ctx.clock())
    if wait:
        raise rate_limited(Text("calendar downloads"), limit, wait)


async def feed(ctx: NodeContext, token: str, address: str) -> bytes:
    """The calendar of the member whose secret is ``token``: 404 for an unknown or revoked
    one (counted per address), 429 past ``FEED_FETCHES_PER_HOUR``."""
    member_id = await calendar_store.member_of_token(
        ctx.store.reader, _hash(token)) if TOKEN_RE.fullmatch(token) else None
    if member_id is None:
        _take(ctx, (_MISSES, f"calendar-miss {address_key(address)}"), MISSES_PER_HOUR)
        raise NotFoundError("no such calendar")
    _take(ctx, (member_id, "calendar"), FEED_FETCHES_PER_HOUR)
    since = format_utc(ctx.clock() - HISTORY)
    deals = await calendar_store.timed_deals(ctx.store.reader, member_id, since)
    return build_calendar(deals, base_url=ctx.config.base_url, name=ctx.config.name)


async def deal_file(ctx: NodeContext, member: MemberRow, deal_id: str) -> bytes:
    """One deal as a calendar file, for its two parties only (404 for anyone else, and for
    a deal without an agreed time)."""
    deal = await calendar_store.timed_deal(ctx.store.reader, deal_id)
    if deal is None or member.id not in await _parties(ctx, deal_id):
        raise NotFoundError(f"no deal {deal_id!r}")
    return build_calendar([deal], base_url=ctx.config.base_url, name=ctx.config.name)


async def _parties(ctx: NodeContext, deal_id: str) -> set[int]:
    deal = await deal_store.get_deal(ctx.store.reader, deal_id)
    return set() if deal is None else {i for i in (deal.booker_id, deal.author_id)
                                       if i is not None}


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _text(value: str) -> icalendar.vText:
    """Member text as an escaped TEXT value: CR, LF and CRLF become an escaped ``\\n``
    (§3.3.11), other control characters are dropped, so a value stays on its line."""
    from icalendar import vText

    return vText(_CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")))


def _utc(text: str) -> datetime:
    return parse_utc(text, field="time")


def event(deal: CalendarDeal, base_url: str) -> icalendar.Event:
    """One deal as a VEVENT (an agreed instant has no DTEND: RFC 5545 §3.6.1)."""
    from icalendar import Event

    found = Event()
    url = f"{base_url}/deals/{deal.id}"
    found.add("uid", deal.agreement_id)
    found.add("dtstamp", _utc(deal.updated_at))
    found.add("last-modified", _utc(deal.updated_at))
    found.add("created", _utc(deal.created_at))
    found.add("sequence", deal.moves)
    found.add("dtstart", _utc(deal.starts))
    if deal.ends is not None:
        found.add("dtend", _utc(deal.ends))
    found.add("summary", _text(deal.title))
    if deal.place:
        found.add("location", _text(deal.place))
    found.add("description", url)
    found.add("url", url)
    found.add("categories", [deal.category])
    found.add("status", STATUS.get(deal.state, "TENTATIVE"))
    return found


def build_calendar(deals: Iterable[CalendarDeal], *, base_url: str, name: str) -> bytes:
    """A VCALENDAR of ``deals`` (UTF-8, CRLF line ends, folded at 75 octets)."""
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", _text(name))
    for deal in deals:
        calendar.add_component(event(deal, base_url))
    return bytes(calendar.to_ical())
