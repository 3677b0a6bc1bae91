"""Queries on listings, their signed versions, images and the full-text index."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

import aiosqlite

from meshnode.protocol.geo import bounding_box
from meshnode.protocol.records import quick_init
from meshnode.store.db import in_connection_thread, query
from meshnode.store.deals import taken_here
from meshnode.store.match_counts import MatchCounts

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 8
# Since the covering index ``listings_match`` (0018) a match costs the sort about what a
# walked row costs the walk (~0.5 us each): at 2,000 listings a word in 19% of them sorted
# 380 matches in 0.24 ms and walked in 0.07 ms, 0.12 ms still with a category filter
# thinning the matches out six times, 0.10 ms with a distance filter (0.45 sorted). Issue 17.
WALK_MARGIN = 1


@dataclass(frozen=True)
class ListingRow:
    """A listing as stored: searchable columns plus the exact signed document."""

    seq: int
    id: str
    object_id: str
    author_id: int | None
    author_uri: str
    origin: str
    is_local: bool
    kind: str
    category: str
    status: str
    title: str
    description: str
    price_mode: str
    price_amount: str | None
    price_period: str | None
    location_name: str
    lat: float | None
    lon: float | None
    details: str
    expires_at: str | None
    published_at: str
    updated_at: str
    version: int
    hidden: bool
    signed_object: str
    author_username: str | None = None
    # the ``availableQuantity`` of another community's signed document, as JSON text (None:
    # not published, and always for this node's own listings, counted from their deals)
    available_quantity: str | None = None
    # when the author last edited it (None: never; a capacity-only version does not count)
    edited_at: str | None = None


def listing_row(row: sqlite3.Row) -> ListingRow:
    """A ``ListingRow`` from a row with every column of ``_SELECT`` (or ``RETURNED``)."""
    names = row.keys()
    _check_columns(names)
    return _filled(names, row)


def listing_rows(rows: Sequence[sqlite3.Row]) -> list[ListingRow]:
    """``listing_row`` of each of one statement's rows (``INSERT ... RETURNING``): they share
    their columns, checked once rather than once a row (a batch of received listings)."""
    if not rows:
        return []
    names = rows[0].keys()
    _check_columns(names)
    return [_filled(names, row) for row in rows]


def _listings(cursor: sqlite3.Cursor) -> list[ListingRow]:
    """Every row of an executed SELECT of listings (its cursor's ``row_factory`` None: plain
    tuples), the columns checked once for all of them rather than once a row as
    ``listing_row`` does: a page's twenty rows cost three times their SQL (issue 17)."""
    names = [column[0] for column in cursor.description]
    _check_columns(names)
    return [_filled(names, values) for values in cursor.fetchall()]


def _check_columns(names: Sequence[str]) -> None:
    """A column the class lacks (a migration ahead of this code) or a missing one fails here
    as ``ListingRow.__init__`` would."""
    if not _LISTING_REQUIRED <= set(names) <= _LISTING_FIELDS:
        raise TypeError(f"columns {sorted(names)} do not make a ListingRow")


def _filled(names: Sequence[str], values: Sequence[Any]) -> ListingRow:
    """A ``ListingRow`` of one row's values, its columns already checked.

    The frozen dataclass's __init__ sets its 28 fields one object.__setattr__ at a time (13 µs
    a row: a quarter of a search's reads, issue 17). The row is built whole from a full SELECT
    of the table, so its __dict__ is filled at once; frozen still refuses assignments."""
    listing = object.__new__(ListingRow)
    data = listing.__dict__
    data.update(_LISTING_DEFAULTS)
    data.update(zip(names, values, strict=True))
    data["is_local"] = bool(data["is_local"])
    data["hidden"] = bool(data["hidden"])
    available = data["available_quantity"]
    if available is not None:
        data["available_quantity"] = str(available)
    return listing


_LISTING_FIELDS = frozenset(f.name for f in fields(ListingRow))
_LISTING_DEFAULTS = {f.name: f.default for f in fields(ListingRow) if f.default is not MISSING}
_LISTING_REQUIRED = _LISTING_FIELDS - _LISTING_DEFAULTS.keys()

# Every column but the generated ``available_quantity``, which only other communities'
# listings need (``services/capacity``: ours are counted from the deals): ``l.*`` computed it
# for every row read, a JSON parse of the whole signed document, about a quarter of a search
# page's SQL (issue 17).
_STORED = [f.name for f in fields(ListingRow)
           if f.name not in ("author_username", "available_quantity")]
_COLUMNS = ", ".join(f"l.{name}" for name in _STORED)
_SELECT = (
    f"SELECT {_COLUMNS}, CASE WHEN l.is_local = 0 THEN l.available_quantity END"  # noqa: S608
    " AS available_quantity, m.username AS author_username"
    " FROM listings l LEFT JOIN members m ON m.id = l.author_id"
)
# What ``_SELECT`` reads, as ``INSERT INTO listings ... RETURNING`` gives it back for rows
# without a local author (other communities' listings: ``author_username`` stays None).
RETURNED = (", ".join(_STORED) + ", CASE WHEN is_local = 0 THEN available_quantity END"
            " AS available_quantity")


@quick_init
@dataclass(frozen=True)
class ListingColumns:
    """The searchable projection of a listing, written alongside its signed document."""

    kind: str
    category: str
    status: str
    title: str
    description: str
    price_mode: str
    price_amount: str | None
    price_period: str | None
    location_name: str
    lat: float | None
    lon: float | None
    details: str
    expires_at: str | None


_INSERT_LISTINGS = (
    "INSERT INTO listings (id, object_id, author_id, author_uri, origin, is_local, kind,"
    " category, status, title, description, price_mode, price_amount, price_period,"
    " location_name, lat, lon, details, expires_at, published_at, updated_at, version,"
    " signed_object) VALUES ")
_LISTING_ROW = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?)"
# Rows per INSERT: 22 variables each, well under SQLite's default limit of 32,766.
ROWS_PER_INSERT = 500


def listing_values(*, listing_id: str, object_id: str, author_id: int | None, author_uri: str,
                   origin: str, is_local: bool, columns: ListingColumns, published_at: str,
                   updated_at: str, signed_object: str) -> tuple[object, ...]:
    """One listing's values for ``insert_statements``, at version 1."""
    c = columns
    return (listing_id, object_id, author_id, author_uri, origin, int(is_local), c.kind,
            c.category, c.status, c.title, c.description, c.price_mode, c.price_amount,
            c.price_period, c.location_name, c.lat, c.lon, c.details, c.expires_at,
            published_at, updated_at, signed_object)


def insert_statements(rows: Sequence[tuple[object, ...]], suffix: str = ""
                      ) -> list[tuple[str, list[object]]]:
    """``(sql, parameters)`` inserting ``rows`` (``listing_values``) ``ROWS_PER_INSERT`` at a
    time, ``suffix`` (a ``RETURNING`` clause) after each. One multi-row INSERT rather than
    ``executemany``: each statement that fires the full-text trigger (``listings_fts_insert``)
    costs FTS5 about 12 µs of fixed work, once per row with ``executemany`` (measured: 15 ->
    3 µs per row). Every writer of new listings (publishing, the inbox worker) uses this."""
    statements = []
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        statements.append((_INSERT_LISTINGS + ",".join([_LISTING_ROW] * len(chunk)) + suffix,
                           [value for row in chunk for value in row]))
    return statements


async def insert_listing(
    db: aiosqlite.Connection,
    *,
    listing_id: str,
    object_id: str,
    author_id: int | None,
    author_uri: str,
    origin: str,
    is_local: bool,
    columns: ListingColumns,
    published_at: str,
    signed_object: str,
    updated_at: str | None = None,
) -> None:
    """Insert a listing at version 1 and record that version.

    ``updated_at`` defaults to ``published_at``; remote listings pass their author's time.
    """
    [(sql, params)] = insert_statements([listing_values(
        listing_id=listing_id, object_id=object_id, author_id=author_id, author_uri=author_uri,
        origin=origin, is_local=is_local, columns=columns, published_at=published_at,
        updated_at=updated_at or published_at, signed_object=signed_object)])
    await db.execute(sql, params)
    await insert_version(db, listing_id, 1, signed_object, published_at)


async def update_listing(
    db: aiosqlite.Connection,
    *,
    listing_id: str,
    columns: ListingColumns,
    updated_at: str,
    version: int,
    signed_object: str,
    edited: bool = True,
) -> bool:
    """Replace version ``version - 1`` by ``version``; False if someone else got there first.
    ``edited``: the author changed it (its ``edited_at`` moves); False for a version that
    only moves what is left (``services/capacity``)."""
    cursor = await db.execute(
        "UPDATE listings SET kind=?, category=?, status=?, title=?, description=?,"
        " price_mode=?, price_amount=?, price_period=?, location_name=?, lat=?, lon=?,"
        " details=?, expires_at=?, updated_at=?, version=?, signed_object=?,"
        " edited_at = CASE WHEN ? THEN ? ELSE edited_at END"
        " WHERE id=? AND version=?",
        (columns.kind, columns.category, columns.status, columns.title, columns.description,
         columns.price_mode, columns.price_amount, columns.price_period, columns.location_name,
         columns.lat, columns.lon, columns.details, columns.expires_at, updated_at, version,
         signed_object, int(edited), updated_at, listing_id, version - 1),
    )
    if cursor.rowcount != 1:
        return False
    await insert_version(db, listing_id, version, signed_object, updated_at)
    return True


async def insert_version(
    db: aiosqlite.Connection, listing_id: str, version: int, signed_object: str, created_at: str
) -> None:
    """Append one signed version to the listing's history."""
    await db.execute(
        "INSERT INTO listing_versions (listing_id, version, signed_object, created_at)"
        " VALUES (?, ?, ?, ?)",
        (listing_id, version, signed_object, created_at),
    )


async def get_listing(db: aiosqlite.Connection, listing_id: str) -> ListingRow | None:
    """The listing with this local id, or None."""
    async with query(db, f"{_SELECT} WHERE l.id = ?", (listing_id,)) as cursor:
        row = await cursor.fetchone()
    return listing_row(row) if row else None


async def get_listing_by_object_id(db: aiosqlite.Connection, object_id: str) -> ListingRow | None:
    """The listing with this ActivityPub id, or None."""
    async with query(db, f"{_SELECT} WHERE l.object_id = ?", (object_id,)) as cursor:
        row = await cursor.fetchone()
    return listing_row(row) if row else None


async def get_listings(db: aiosqlite.Connection, listing_ids: Sequence[str]) -> list[ListingRow]:
    """The listings with these local ids (missing ones left out), in one query."""
    async with query(db, f"{_SELECT} WHERE l.id IN (SELECT value FROM json_each(?))",  # noqa: S608
                     (json.dumps(list(listing_ids)),)) as cursor:
        return listing_rows(await cursor.fetchall())


def get_listings_here(conn: sqlite3.Connection,
                      listing_ids: Sequence[str]) -> list[ListingRow]:
    """``get_listings`` for work already running in the connection's own thread
    (``db.in_connection_thread``)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return _listings(cursor.execute(
        f"{_SELECT} WHERE l.id IN (SELECT value FROM json_each(?))",  # noqa: S608
        (json.dumps(list(listing_ids)),)))


async def list_versions(db: aiosqlite.Connection, listing_id: str) -> list[tuple[int, str]]:
    """All signed versions of a listing, oldest first (a version stored as ``''`` is the
    listing's current text: migration ``0019_worker17e_one_copy``)."""
    async with query(db,
        "SELECT v.version, COALESCE(NULLIF(v.signed_object, ''), l.signed_object)"
        " FROM listing_versions v JOIN listings l ON l.id = v.listing_id"
        " WHERE v.listing_id = ? ORDER BY v.version",
        (listing_id,),
    ) as cursor:
        return [(row[0], row[1]) for row in await cursor.fetchall()]


async def count_listings(db: aiosqlite.Connection, *, local_only: bool = False) -> int:
    """Number of listings stored (all statuses), or only those published here."""
    sql = "SELECT count(*) FROM listings WHERE is_local = 1 OR NOT ?"
    async with query(db, sql, (local_only,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def fts_query(text: str) -> str | None:
    """Turn free user text into a safe FTS5 query: every word as a quoted prefix, AND-ed.

    FTS5 syntax characters in user input can never reach the parser, so no search text can
    cause an error; accents are folded by the ``remove_diacritics`` tokenizer.
    """
    words = _WORD.findall(text)[:MAX_QUERY_TERMS]
    if not words:
        return None
    return " ".join(f'"{word}"*' for word in words)


@dataclass(frozen=True)
class SearchFilters:
    """Validated search parameters (see ``GET /api/v1/listings``)."""

    text: str | None = None
    kind: str | None = None
    category: str | None = None
    status: str | None = None
    price: str | None = None  # "free" or "paid"
    author_id: int | None = None
    near: tuple[float, float] | None = None
    radius_km: float = 10.0
    include_hidden: bool = False
    local_only: bool = False  # this community's own listings (the Atom feed)
    include_expired: bool = False  # the author's own "My listings" shows expired ones too
    now: str = ""
    limit: int = 20
    cursor: tuple[str, int] | None = None


def _where(filters: SearchFilters) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    query = fts_query(filters.text) if filters.text else None
    if query is not None:
        clauses.append("l.seq IN (SELECT rowid FROM listings_fts WHERE listings_fts MATCH ?)")
        params.append(query)
    for column, value in (("kind", filters.kind), ("category", filters.category),
                          ("author_id", filters.author_id)):
        if value is not None:
            clauses.append(f"l.{column} = ?")
            params.append(value)
    if filters.status is not None:
        clauses.append("l.status = ?")
        params.append(filters.status)
    else:
        clauses.append("l.status IN ('active', 'reserved')")
    if filters.status in (None, "active", "reserved") and not filters.include_expired:
        clauses.append("(l.expires_at IS NULL OR l.expires_at > ?)")  # issue 18: expired
        params.append(filters.now)  # listings leave search, home and feed on every node
    if filters.price == "free":
        clauses.append("l.price_mode != 'amount'")
    elif filters.price == "paid":
        clauses.append("l.price_mode = 'amount'")
    if not filters.include_hidden:
        clauses.append("l.hidden = 0")
    if filters.local_only:
        clauses.append("l.is_local = 1")
    if filters.near is not None:
        lat, lon = filters.near
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, filters.radius_km)
        clauses.append("l.lat BETWEEN ? AND ? AND l.lon BETWEEN ? AND ?")
        clauses.append("haversine_km(l.lat, l.lon, ?, ?) <= ?")
        params += [min_lat, max_lat, min_lon, max_lon, lat, lon, filters.radius_km]
    if filters.cursor is not None:
        clauses.append("(l.published_at, l.seq) < (?, ?)")
        params += list(filters.cursor)
    return clauses, params


def _walk_newest_first(conn: sqlite3.Connection, filters: SearchFilters,
                       counts: MatchCounts | None = None) -> bool:
    """Whether a text search should walk the newest-first index instead of sorting matches.

    Sorting costs about one step per match; walking the date index costs about
    ``total / matches`` steps per result wanted. A frequent word (tens of thousands of
    matches at 100k listings) sorts in ~60 ms but walks in ~10 ms; a rare one sorts in
    ~0.1 ms but might walk the whole index. Walk when ``matches² ≥ WALK_MARGIN × page ×
    total`` (the margin covers filters that thin the matches out). Counting costs ~2 ms at
    100k listings: ``counts`` keeps each query's count until a listing is added
    (``store/match_counts.py``). Runs in the reader's thread (``search_listings``).
    """
    text = fts_query(filters.text) if filters.text else None
    if text is None:
        return False
    newest = conn.execute("SELECT max(seq) FROM listings").fetchone()
    total = int(newest[0]) if newest and newest[0] else 0
    if not total:
        return False
    matches = counts.get(text, total) if counts is not None else None
    if matches is None:
        row = conn.execute("SELECT count(*) FROM listings_fts WHERE listings_fts MATCH ?",
                           (text,)).fetchone()
        matches = int(row[0]) if row else 0
        if counts is not None:
            counts.put(text, total, matches)
    return matches * matches >= WALK_MARGIN * (filters.limit + 1) * total


def _index_hint(conn: sqlite3.Connection, filters: SearchFilters,
                counts: MatchCounts | None = None) -> str:
    """Which index the matches are read through: the newest-first one for a walk, else
    (a text search sorting its matches) ``listings_match``, which holds every column the
    filters and the sort read: the table's rows, each a page with its signed document,
    are then read only for the page shown (issue 17). Without statistics SQLite's planner
    would look each match up in the table. Author pages keep ``listings_author``."""
    if _walk_newest_first(conn, filters, counts):
        return "INDEXED BY listings_newest"
    if filters.text and fts_query(filters.text) and filters.author_id is None:
        return "INDEXED BY listings_match"
    return ""


async def search_listings(db: aiosqlite.Connection, filters: SearchFilters,
                          counts: MatchCounts | None = None) -> list[ListingRow]:
    """Listings matching the filters, newest first, at most ``limit + 1`` (to detect more).

    The plan choice and the page are read in one hop to the reader's thread; ``counts``
    keeps the text queries' numbers of matches the plan choice reads."""
    return await in_connection_thread(db, lambda conn: _search_here(conn, filters, counts))


async def search_listings_and_taken(
    db: aiosqlite.Connection, filters: SearchFilters, counts: MatchCounts | None = None
) -> tuple[list[ListingRow], dict[str, dict[str, int]]]:
    """``search_listings`` and what the deals of its local listings use
    (``deals.taken_by_listing``), read in the same hop to the reader's thread: a page of
    cards shows what is left of each (issue 17: each hop is a turn of the event loop)."""

    def work(conn: sqlite3.Connection) -> tuple[list[ListingRow], dict[str, dict[str, int]]]:
        rows = _search_here(conn, filters, counts)
        return rows, taken_here(conn, [row.id for row in rows if row.is_local])

    return await in_connection_thread(db, work)


def _search_here(conn: sqlite3.Connection, filters: SearchFilters,
                 counts: MatchCounts | None) -> list[ListingRow]:
    clauses, params = _where(filters)
    where = " AND ".join(clauses) if clauses else "1"
    hint = _index_hint(conn, filters, counts)
    # Sort only the (published_at, seq) keys of the matches, then load the page's full
    # rows: a frequent word can match thousands of listings, whose signed documents need
    # not be carried through the sort.
    # ``where`` is built from fixed clauses by _where(); every value is a bound parameter.
    sql = (
        f"{_SELECT} WHERE l.seq IN (SELECT l.seq FROM listings l {hint} WHERE {where}"  # noqa: S608
        " ORDER BY l.published_at DESC, l.seq DESC LIMIT ?)"
        " ORDER BY l.published_at DESC, l.seq DESC"
    )
    cursor = conn.cursor()
    cursor.row_factory = None
    return _listings(cursor.execute(sql, (*params, filters.limit + 1)))


@dataclass(frozen=True)
class ImageRow:
    """A stored, re-encoded image of a listing."""

    id: str
    listing_id: str
    position: int
    filename: str
    media_type: str
    width: int
    height: int
    size_bytes: int
    alt: str


_IMAGES = ("SELECT id, listing_id, position, filename, media_type, width, height, size_bytes,"
           " alt FROM listing_images WHERE listing_id = ? ORDER BY position")


async def list_images(db: aiosqlite.Connection, listing_id: str) -> list[ImageRow]:
    """Images of a listing in display order."""
    async with query(db, _IMAGES, (listing_id,)) as cursor:
        return [ImageRow(**dict(row)) for row in await cursor.fetchall()]


async def get_listing_with_images(db: aiosqlite.Connection, listing_id: str
                                  ) -> tuple[ListingRow, list[ImageRow]] | None:
    """The listing with this local id and its images (display order) in one hop to the
    reader's thread, or None."""

    def work(conn: sqlite3.Connection) -> tuple[ListingRow, list[ImageRow]] | None:
        row = conn.execute(f"{_SELECT} WHERE l.id = ?", (listing_id,)).fetchone()
        if row is None:
            return None
        images = [ImageRow(*image) for image in conn.execute(_IMAGES, (listing_id,))]
        return listing_row(row), images

    return await in_connection_thread(db, work)


async def insert_image(db: aiosqlite.Connection, image: ImageRow, created_at: str) -> None:
    """Record an image file already written under the media directory."""
    await db.execute(
        "INSERT INTO listing_images (id, listing_id, position, filename, media_type, width,"
        " height, size_bytes, alt, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (image.id, image.listing_id, image.position, image.filename, image.media_type,
         image.width, image.height, image.size_bytes, image.alt, created_at),
    )


async def all_image_files(db: aiosqlite.Connection) -> set[tuple[str, str]]:
    """Every (listing id, file name) an image row names: what the media directory may hold."""
    async with query(db, "SELECT listing_id, filename FROM listing_images", ()) as cursor:
        return {(str(row[0]), str(row[1])) for row in await cursor.fetchall()}


async def delete_image(db: aiosqlite.Connection, listing_id: str, image_id: str) -> int:
    """Remove one image row; returns the number of rows removed."""
    cursor = await db.execute(
        "DELETE FROM listing_images WHERE listing_id = ? AND id = ?", (listing_id, image_id)
    )
    return cursor.rowcount


async def local_without_figure(db: aiosqlite.Connection, categories: Sequence[str],
                               limit: int = 1000) -> list[str]:
    """Ids of our current offers in ``categories`` whose signed version publishes no
    ``availableQuantity`` (published before meshnode counted capacity down)."""
    async with query(db,
        "SELECT id FROM listings WHERE is_local = 1 AND kind = 'offer'"  # noqa: S608
        f" AND status IN ('active', 'reserved') AND category IN ({placeholders(categories)})"
        " AND available_quantity IS NULL LIMIT ?", (*categories, limit),
    ) as cursor:
        return [str(row[0]) for row in await cursor.fetchall()]


async def set_hidden(db: aiosqlite.Connection, listing_id: str, hidden: bool) -> None:
    """Hide or restore a listing (moderation)."""
    await db.execute("UPDATE listings SET hidden = ? WHERE id = ?", (int(hidden), listing_id))


async def mark_withdrawn(db: aiosqlite.Connection, listing_id: str) -> None:
    """Mark a listing withdrawn (its author deleted it without a signed Tombstone)."""
    await db.execute("UPDATE listings SET status = 'withdrawn' WHERE id = ?", (listing_id,))


def placeholders(values: Sequence[object]) -> str:
    """``?, ?, ?`` for an IN clause of this many values."""
    return ", ".join("?" for _ in values)


@dataclass(frozen=True)
class PlaceRow:
    """A place named in this community's listings, at the mean of their coordinates."""

    name: str
    lat: float
    lon: float
    listings: int


async def known_places(db: aiosqlite.Connection, limit: int) -> list[PlaceRow]:
    """The places this node's visible listings name (most used first), with coordinates."""
    sql = (
        "SELECT min(location_name), avg(lat), avg(lon), count(*) FROM listings"
        " WHERE is_local = 1 AND hidden = 0 AND status != 'withdrawn'"
        " AND lat IS NOT NULL AND lon IS NOT NULL AND trim(location_name) != ''"
        " GROUP BY lower(trim(location_name)) ORDER BY count(*) DESC, 1 LIMIT ?"
    )
    async with query(db, sql, (limit,)) as cursor:
        rows = await cursor.fetchall()
    return [PlaceRow(str(r[0]).strip(), float(r[1]), float(r[2]), int(r[3])) for r in rows]


async def listings_by_object_ids(db: aiosqlite.Connection,
                                 object_ids: Sequence[str]) -> dict[str, ListingRow]:
    """The stored listings among ``object_ids``, by object id (one query per 500 ids)."""
    found: dict[str, ListingRow] = {}
    for start in range(0, len(object_ids), 500):
        ids = list(object_ids[start:start + 500])
        sql = f"{_SELECT} WHERE l.object_id IN ({placeholders(ids)})"
        async with query(db, sql, ids) as cursor:
            found.update((listing.object_id, listing)
                         for listing in listing_rows(await cursor.fetchall()))
    return found
