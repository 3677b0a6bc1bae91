"""Saved searches and matching on arrival (issue 18, "Matching and alerts").

A listing is matched where it arrives (published here, or stored from a neighbour's
delivery, relay or catch-up), inside the transaction that stores it, by
:func:`match_arrived` (or :func:`match_rows`): one indexed query over the alerts' folded
words (``store/alerts``), never a loop over every alert. Each (alert, listing) pair is
told at most once (``alert_matches``' primary key), so an update, a relayed copy or a
republication never notifies twice, and a member with two matching alerts hears of a
listing once.

Both directions: a saved search or a request (what a listing wants: a request's title, a
swap's "wanted") is told of matching offers; and when a request or a swap arrives, the
authors of our own offers that match it are told someone looks for what they offer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from meshnode.errors import NotFoundError
from meshnode.protocol.alerts import WANT_RADIUS_KM, AlertInput, listing_wants, parse_alert
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.search_terms import prefixes
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.store import alerts as q
from meshnode.store import listings as listing_q
from meshnode.store.alerts import AlertRow, Arrival, NewAlert
from meshnode.store.listings import ListingRow, SearchFilters
from meshnode.store.members import MemberRow

MAX_ALERTS = 50
OFFERS_TOLD = 20  # local offers whose authors hear of one arriving request or swap
MAX_MATCHES = 50


@dataclass(frozen=True)
class Alert:
    """A member's saved search as the API and the pages show it."""

    row: AlertRow

    def to_json(self, decimals: int) -> dict[str, object]:
        """``{id, q, kind, category, near, radius_km, max_price, created_at}``; the price
        limit as a decimal string like every amount of the API (``"5.00"``)."""
        row = self.row
        price = None if row.max_price is None else format_amount(row.max_price,
                                                                 decimals=decimals)
        return {"id": row.id, "q": row.q, "kind": row.kind, "category": row.category,
                "near": row.near, "radius_km": row.radius_km, "max_price": price,
                "created_at": row.created_at}


def _new_alert(member: MemberRow, parsed: AlertInput) -> NewAlert:
    return NewAlert(member_id=member.id, listing_id=None, q=parsed.q, kind=parsed.kind,
                    category=parsed.category, near=parsed.near, radius_km=parsed.radius_km,
                    max_price=parsed.max_price, terms=parsed.terms)


async def create_alert(ctx: NodeContext, member: MemberRow, data: object) -> Alert:
    """Validate and save a search (at most ``MAX_ALERTS`` per member; nothing stored on
    any error)."""
    parsed = parse_alert(data, decimals=ctx.config.currency.decimals)
    async with ctx.store.transaction() as tx:
        if await q.count_saved_by(tx, member.id) >= MAX_ALERTS:
            raise ValidationError(Text("at most %(max)s alerts", max=MAX_ALERTS), {
                "alerts": Text("at most %(max)s alerts; delete one first", max=MAX_ALERTS)})
        alert_id = await q.insert_alert(tx, _new_alert(member, parsed),
                                        format_utc(ctx.clock()))
    return next(a for a in await list_alerts(ctx, member) if a.row.id == alert_id)


async def list_alerts(ctx: NodeContext, member: MemberRow) -> list[Alert]:
    """The member's saved searches, oldest first."""
    return [Alert(row) for row in await q.saved_by(ctx.store.reader, member.id)]


async def delete_alert(ctx: NodeContext, member: MemberRow, alert_id: int) -> None:
    """Delete one of the member's saved searches (NotFoundError for anyone else's)."""
    async with ctx.store.transaction() as tx:
        if not await q.delete_saved(tx, member.id, alert_id):
            raise NotFoundError("no such alert")


def price_units(row: ListingRow, decimals: int) -> int:
    """What the listing asks in minor units (0 when free or a swap)."""
    if row.price_mode != "amount" or row.price_amount is None:
        return 0
    whole, _, frac = row.price_amount.partition(".")
    units: int = int(whole) * 10**decimals + int(frac.ljust(decimals, "0")[:decimals] or 0)
    return units


def _live(row: ListingRow, now: str) -> bool:
    return row.status == "active" and not row.hidden and (
        row.expires_at is None or row.expires_at > now)


def arrival_of(row: ListingRow, decimals: int, now: str) -> Arrival:
    """What alerts are matched against: the listing's facts and its words' prefixes."""
    return Arrival(
        listing_id=row.id, author_id=row.author_id, kind=row.kind, category=row.category,
        price_units=price_units(row, decimals), lat=row.lat, lon=row.lon,
        prefixes=prefixes(f"{row.title} {row.description} {row.location_name}"), now=now)


def _wants(row: ListingRow, decimals: int) -> list[NewAlert]:
    wanted = json.loads(row.details).get("wanted") if row.details else None
    near = (row.lat, row.lon) if row.lat is not None and row.lon is not None else None
    ceiling = price_units(row, decimals) if row.kind == "request" and (
        row.price_mode == "amount") else None
    return [NewAlert(member_id=row.author_id, listing_id=row.id, q=want.q, kind="offer",
                     category=None, near=near, radius_km=WANT_RADIUS_KM if near else None,
                     max_price=ceiling, terms=want.terms)
            for want in listing_wants(row.kind, row.title, row.price_mode, wanted)]


async def _refresh_wants(ctx: NodeContext, tx: aiosqlite.Connection, row: ListingRow,
                         current: list[AlertRow], now: str) -> list[AlertRow]:
    """Keep the listing's wants in step with its latest version; unchanged wants keep
    their ids, so an edit that does not change them tells nobody again."""
    wanted = _wants(row, ctx.config.currency.decimals) if row.status != "withdrawn" else []
    if [(w.q, w.near_lat, w.near_lon, w.max_price) for w in current] == [
            (w.q, *(w.near or (None, None)), w.max_price) for w in wanted]:
        return current
    await q.replace_wants(tx, row.id, wanted, now)
    return await q.wants_of(tx, [row.id])


async def match_arrived(ctx: NodeContext, tx: aiosqlite.Connection,
                        listing_ids: Sequence[str]) -> int:
    """Match listings just stored (created, updated, renewed, received) against the alerts,
    on the caller's transaction; returns how many notifications were written. Their rows
    are read in one query (``match_rows`` when the caller holds them already)."""
    ids = list(dict.fromkeys(listing_ids))
    found = {row.id: row for row in await listing_q.get_listings(tx, ids)}
    return await match_rows(ctx, tx, [found[i] for i in ids if i in found])


async def match_rows(ctx: NodeContext, tx: aiosqlite.Connection,
                     rows: Sequence[ListingRow]) -> int:
    """``match_arrived`` for listings whose rows the caller holds as this transaction
    stored them (read back, or returned by the statement that wrote them: no second read).
    A batch's wants are read in one query, then one matching query per live listing."""
    now = format_utc(ctx.clock())
    by_id = {row.id: row for row in rows}
    stored_wants: dict[str, list[AlertRow]] = {}
    for want in await q.wants_of(tx, list(by_id)):
        stored_wants.setdefault(str(want.listing_id), []).append(want)
    told = 0
    refreshed = {i: await _refresh_wants(ctx, tx, row, stored_wants.get(i, []), now)
                 for i, row in by_id.items()}
    searched = await q.any_alerts(tx)  # a node nobody set an alert on skips the word work
    for listing_id, wants in refreshed.items():
        row = by_id[listing_id]
        if not _live(row, now):
            continue
        if searched:
            arrival = arrival_of(row, ctx.config.currency.decimals, now)
            told += await _tell_searchers(ctx, tx, row, await q.matching(tx, arrival), now)
        for want in wants:
            told += await _tell_both_sides(ctx, tx, row, want, now)
    return told


async def _tell_searchers(ctx: NodeContext, tx: aiosqlite.Connection, row: ListingRow,
                          alerts: list[AlertRow], now: str) -> int:
    """Tell each local member whose saved search or request matches ``row``, once."""
    told = 0
    already = await q.members_told(tx, row.id) if alerts else set()
    for alert in alerts:
        member_id = alert.member_id
        if member_id is None:
            continue  # a neighbour's request: its own node tells its author
        if not await q.record_match(tx, alert.id, row.id, member_id, now) or (
                member_id in already):
            continue
        already.add(member_id)
        await notifications.notify(ctx, tx, member_id, "match", ref=row.id,
                                   url=f"/listings/{row.id}", detail=row.title)
        told += 1
    return told


def _want_filters(want: AlertRow, terms: frozenset[str], now: str, *,
                  local_only: bool) -> SearchFilters:
    near = (want.near_lat, want.near_lon) if (
        want.near_lat is not None and want.near_lon is not None) else None
    # status None: active or reserved and not expired (store/listings._where)
    return SearchFilters(text=" ".join(sorted(terms)), kind="offer", near=near,
                         radius_km=want.radius_km or WANT_RADIUS_KM, local_only=local_only,
                         now=now, limit=OFFERS_TOLD)


async def _offers_for(ctx: NodeContext, db: aiosqlite.Connection, want: AlertRow, now: str,
                      *, local_only: bool) -> list[ListingRow]:
    """Live offers that satisfy a want (the same words, place and price as on arrival)."""
    terms = await q.terms_of(db, want.id)
    if not terms:
        return []
    rows = await listing_q.search_listings(
        db, _want_filters(want, terms, now, local_only=local_only))
    decimals = ctx.config.currency.decimals
    return [r for r in rows[:OFFERS_TOLD] if _live(r, now) and r.id != want.listing_id
            and (want.max_price is None or price_units(r, decimals) <= want.max_price)
            and terms <= arrival_of(r, decimals, now).prefixes]


async def _tell_both_sides(ctx: NodeContext, tx: aiosqlite.Connection, row: ListingRow,
                           want: AlertRow, now: str) -> int:
    """A request or a swap arrived: tell the authors of our own offers it wants that
    someone looks for them, and its author (if ours) of those offers; once per pair."""
    told = 0
    for offer in await _offers_for(ctx, tx, want, now, local_only=row.author_id is None):
        if offer.author_id == row.author_id:
            continue
        tell = [(m, other) for m, other in ((offer.author_id, row), (row.author_id, offer))
                if m is not None and not await q.member_told(tx, m, other.id)]
        if not await q.record_match(tx, want.id, offer.id, row.author_id, now):
            continue
        for member_id, other in tell:
            await notifications.notify(ctx, tx, member_id, "match", ref=other.id,
                                       url=f"/listings/{other.id}", detail=other.title)
            told += 1
    return told


async def matches_for(ctx: NodeContext, listing_id: str) -> list[ListingRow]:
    """What matches a listing, from here and neighbours: for an offer, the live requests
    and swaps that want it; for a request or a swap, the live offers it wants."""
    row = await listing_q.get_listing(ctx.store.reader, listing_id)
    if row is None or row.hidden:
        raise NotFoundError(f"no listing {listing_id!r}")
    return await matches_of(ctx, row)


async def matches_of(ctx: NodeContext, row: ListingRow) -> list[ListingRow]:
    """``matches_for`` a listing already read. Reads that do not depend on each other go
    to the reader thread together (``asyncio.gather``): a page waits one trip through its
    queue for them, not one each (issue 17: the author's listing page made nine)."""
    db = ctx.store.reader
    now = format_utc(ctx.clock())
    alerts, wants = await asyncio.gather(
        q.matching(db, arrival_of(row, ctx.config.currency.decimals, now))
        if _live(row, now) else _nothing(), q.wants_of(db, [row.id]))
    wanting = [a.listing_id for a in alerts if a.listing_id is not None]
    found: dict[str, ListingRow] = {}
    for rows in await asyncio.gather(
            _rows(db, wanting), *(_offers_for(ctx, db, want, now, local_only=False)
                                  for want in wants)):
        for other in rows:
            found.setdefault(other.id, other)
    return list(found.values())[:MAX_MATCHES]


async def _nothing() -> list[AlertRow]:
    return []


async def _rows(db: aiosqlite.Connection, ids: Sequence[str]) -> list[ListingRow]:
    unique = list(dict.fromkeys(ids))
    rows = await asyncio.gather(*(listing_q.get_listing(db, i) for i in unique))
    return [r for r in rows if r is not None]


async def listings_of(ctx: NodeContext, ids: Sequence[str]) -> dict[str, ListingRow]:
    """The listings some notifications point to, by id (missing ones left out)."""
    return {row.id: row for row in await _rows(ctx.store.reader, ids)}
