"""Listings: publish, edit, withdraw, search and illustrate signed FEP-0837 proposals.

Every change produces a new document signed with the author's Ed25519 key (FEP-8b32,
eddsa-jcs-2022); the stored signed document is exactly what is served and federated.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.capacity import (
    Remaining,
    bookable_capacity,
    next_updated,
    remaining_from_taken,
    set_available,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import (
    DEFAULT_LIFETIME,
    EDITABLE_STATUSES,
    CurrencyRef,
    ImageRef,
    ListingDraft,
    Location,
    Price,
    build_proposal,
    build_tombstone,
    merge_patch,
    parse_listing_input,
)
from meshnode.protocol.parsing import parse_cursor
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text
from meshnode.protocol.trust import SignatureCheck
from meshnode.services import alerts
from meshnode.services.capacity import available_now
from meshnode.services.context import NodeContext
from meshnode.services.member_limits import member_limited
from meshnode.services.publishing import new_listing_create, publish_listing_change
from meshnode.services.signing import sign_as_member
from meshnode.services.trust import local_check
from meshnode.store import listings as q
from meshnode.store import trust as trust_q
from meshnode.store.listings import ImageRow, ListingColumns, ListingRow, SearchFilters
from meshnode.store.members import MemberRow
from meshnode.store.new_listings import NewLocalListing, write_new_listings

TxStep = Callable[[aiosqlite.Connection], Awaitable[None]]


@dataclass(frozen=True)
class ListingView:
    """A listing with its images, as the API and the pages show it."""

    row: ListingRow
    images: list[ImageRow]

    @property
    def signed_object(self) -> dict[str, Any]:
        """The stored signed document, parsed."""
        parsed: dict[str, Any] = json.loads(self.row.signed_object)
        return parsed


@dataclass(frozen=True)
class NewListingView(ListingView):
    """A listing just created, with what its answer needs and the request already knows:
    the check kept at signing and what is left of it (all of it: no deal names it yet)."""

    check: SignatureCheck
    remaining: Remaining | None


@dataclass(frozen=True)
class SearchPage:
    """One page of search results and the cursor of the next page (None at the end)."""

    items: list[ListingRow]
    next_cursor: str | None
    # What the deals of the page's local listings use, by listing id and deal state, read
    # with the page (``capacity.remaining_for``'s ``taken``); a listing without deals is absent.
    taken: dict[str, dict[str, int]] = field(default_factory=dict)


def currency_ref(ctx: NodeContext) -> CurrencyRef:
    """The community currency as named in listing prices."""
    currency = ctx.config.currency
    return CurrencyRef(
        uri=urls.currency_uri(ctx.config.base_url), code=currency.symbol, decimals=currency.decimals
    )


# json.dumps(sort_keys=True, ensure_ascii=False), built once (json.dumps with options builds
# an encoder per call: half its time for a listing's few details); it keeps no state.
_DETAILS_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def _columns(draft: ListingDraft, decimals: int) -> ListingColumns:
    amount = draft.price.amount_units
    return ListingColumns(
        kind=draft.kind,
        category=draft.category,
        status=draft.status,
        title=draft.title,
        description=draft.description,
        price_mode=draft.price.mode,
        price_amount=format_amount(amount, decimals=decimals) if amount is not None else None,
        price_period=draft.price.period,
        location_name=draft.location.name,
        lat=draft.location.lat,
        lon=draft.location.lon,
        details=_DETAILS_ENCODER.encode(draft.details),
        expires_at=format_utc(draft.expires_at),
    )


def listing_columns(draft: ListingDraft, decimals: int) -> ListingColumns:
    """The searchable columns of a draft (also used for remote listings)."""
    return _columns(draft, decimals)


def draft_from_row(row: ListingRow, decimals: int) -> ListingDraft:
    """Rebuild the validated draft a stored local listing was made from."""
    amount = None
    if row.price_amount is not None:
        whole, _, frac = row.price_amount.partition(".")
        amount = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or 0)
    return ListingDraft(
        kind=row.kind,
        category=row.category,
        title=row.title,
        description=row.description,
        price=Price(mode=row.price_mode, amount_units=amount, period=row.price_period),
        location=Location(name=row.location_name, lat=row.lat, lon=row.lon),
        details=json.loads(row.details),
        expires_at=parse_utc(row.expires_at, field="expires_at"),
        status=row.status,
    )


def _serialise(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _sign(ctx: NodeContext, author: MemberRow, document: dict[str, Any], now: datetime) -> str:
    return _serialise(sign_as_member(ctx, author, document, now))


def _proposal(
    ctx: NodeContext,
    author: MemberRow,
    draft: ListingDraft,
    row_id: str,
    published: datetime,
    updated: datetime | None,
    images: list[ImageRow],
    available: Remaining | None = None,
) -> dict[str, Any]:
    base = ctx.config.base_url
    document = build_proposal(
        draft,
        object_id=urls.listing_object(base, row_id),
        actor_id=urls.member_actor(base, author.username),
        published=published,
        updated=updated,
        currency=currency_ref(ctx),
        images=[
            ImageRef(urls.media_url(base, row_id, i.filename), i.media_type, i.width, i.height,
                     i.alt)
            for i in images
        ],
    )
    if available is not None:  # what is left, FEP-0837 availableQuantity (services/capacity)
        document["publishes"] = set_available(document["publishes"], available)
    return document


@member_limited("listings")
async def create_listing(ctx: NodeContext, author: MemberRow, data: object) -> NewListingView:
    """Validate, sign and store a new listing by ``author``: concurrent publishes share one
    transaction (``store.group``), each answered once its listing is committed."""
    now = ctx.clock()
    decimals = ctx.config.currency.decimals
    draft = parse_listing_input(data, now=now, decimals=decimals)
    listing_id = secrets.token_hex(8)
    cap = bookable_capacity(draft.category, draft.kind, draft.details)
    document = _proposal(ctx, author, draft, listing_id, now, None, [],
                         Remaining(cap, cap.total) if cap is not None else None)
    signed = sign_as_member(ctx, author, document, now)
    stamp = format_utc(now)
    create, note_followed, note = new_listing_create(ctx, signed, now=stamp,
                                                     author_username=author.username)
    new = NewLocalListing(
        listing_id=listing_id, object_id=document["id"], author_id=author.id,
        author_uri=document["attributedTo"], origin=ctx.config.base_url,
        columns=_columns(draft, decimals), published_at=stamp, signed_object=_serialise(signed),
        check=local_check(ctx, author, now), create=create, note_followed=note_followed,
        note=note)
    row = await ctx.listing_writes.submit(ctx.store, partial(_write_new, ctx), new)
    return NewListingView(row=row, images=[], check=new.check,
                          remaining=remaining_from_taken(cap, 0) if cap is not None else None)


async def _write_new(ctx: NodeContext, tx: aiosqlite.Connection,
                     batch: Sequence[NewLocalListing]) -> list[ListingRow]:
    """A batch of new listings: stored, deliveries queued, alerts matched (one transaction)."""
    rows = await write_new_listings(tx, batch)
    await alerts.match_rows(ctx, tx, rows)  # the rows as stored: not read again
    return rows


async def get_listing(ctx: NodeContext, listing_id: str) -> ListingView:
    """A listing and its images, or NotFoundError."""
    found = await q.get_listing_with_images(ctx.store.reader, listing_id)
    if found is None:
        raise NotFoundError(f"no listing {listing_id!r}")
    return ListingView(row=found[0], images=found[1])


async def _own_listing(ctx: NodeContext, author: MemberRow, listing_id: str) -> ListingView:
    view = await get_listing(ctx, listing_id)
    if not view.row.is_local or view.row.author_id != author.id:
        raise PermissionDeniedError("only the author can change this listing")
    if view.row.status == "withdrawn":
        raise ConflictError("this listing was withdrawn and can no longer change")
    return view


async def _store_new_version(
    ctx: NodeContext, author: MemberRow, view: ListingView, draft: ListingDraft,
    images: list[ImageRow], *, also: TxStep | None = None,
) -> None:
    """Commit the next version if nobody else did meanwhile (else 409, nothing written).

    ``also`` runs in the same transaction, only when the version check passed: an image row
    is added or removed together with the signed document that lists it, or not at all.
    """
    now = ctx.clock()
    updated = next_updated(view.row.updated_at, now)  # peers keep only later versions
    published = parse_utc(view.row.published_at, field="published_at")
    available = await available_now(
        ctx, view.row, bookable_capacity(draft.category, draft.kind, draft.details))
    document = _proposal(ctx, author, draft, view.row.id, published, updated, images, available)
    signed = _sign(ctx, author, document, now)
    async with ctx.store.transaction() as tx:
        stored = await q.update_listing(
            tx,
            listing_id=view.row.id,
            columns=_columns(draft, ctx.config.currency.decimals),
            updated_at=format_utc(updated),
            version=view.row.version + 1,
            signed_object=signed,
        )
        if stored:
            await trust_q.record_check(tx, view.row.id, view.row.version + 1,
                                       local_check(ctx, author, now))
            if also is not None:
                await also(tx)
            await publish_listing_change(ctx, tx, activity_type="Update", signed_object=signed,
                                         author_username=author.username,
                                         version=view.row.version + 1)
            await alerts.match_arrived(ctx, tx, [view.row.id])
    if not stored:
        raise ConflictError("the listing changed meanwhile; reload it and try again")


async def update_listing(
    ctx: NodeContext, author: MemberRow, listing_id: str, patch: object
) -> ListingView:
    """Apply a partial update; the result is a new signed version of the listing.

    A change of status alone (reserved, done) does not re-check dates, so a ride can be
    marked done after its departure time.
    """
    view = await _own_listing(ctx, author, listing_id)
    decimals = ctx.config.currency.decimals
    current = draft_from_row(view.row, decimals)
    if isinstance(patch, dict) and set(patch) == {"status"}:
        # Checked on its own: re-validating the other fields would require every
        # category-specific detail again (a ride's departure...) just to mark it done.
        if patch["status"] not in EDITABLE_STATUSES:
            raise ValidationError(
                "unknown status", {"status": Text("one of %(values)s",
                                            values=", ".join(EDITABLE_STATUSES))}
            )
        draft = replace(current, status=str(patch["status"]))
    else:
        draft = merge_patch(current, patch, now=ctx.clock(), decimals=decimals)
    await _store_new_version(ctx, author, view, draft, view.images)
    return await get_listing(ctx, listing_id)


async def renew_listing(ctx: NodeContext, author: MemberRow, listing_id: str) -> ListingView:
    """Give a listing the default lifetime again from now: the one-click renewal of the
    expiry warning, and "Republish" for an expired one. A new signed version (its FEP-0837
    ``endTime`` moved), federated as an Update, matched again against alerts (each alert is
    told of a listing once)."""
    view = await _own_listing(ctx, author, listing_id)
    if view.row.status not in ("active", "reserved"):
        raise ConflictError("only an active or reserved listing can be renewed")
    decimals = ctx.config.currency.decimals
    draft = replace(draft_from_row(view.row, decimals),
                    expires_at=ctx.clock() + DEFAULT_LIFETIME)
    await _store_new_version(ctx, author, view, draft, view.images)
    return await get_listing(ctx, listing_id)


async def withdraw_listing(ctx: NodeContext, author: MemberRow, listing_id: str) -> ListingView:
    """Withdraw a listing: its signed document becomes a signed ``Tombstone``."""
    view = await _own_listing(ctx, author, listing_id)
    now = ctx.clock()
    deleted = next_updated(view.row.updated_at, now)  # peers keep only later versions
    tombstone = build_tombstone(view.row.object_id, deleted=deleted)
    signed = _sign(ctx, author, tombstone, now)
    columns = replace(_columns(draft_from_row(view.row, ctx.config.currency.decimals),
                               ctx.config.currency.decimals), status="withdrawn")
    async with ctx.store.transaction() as tx:
        stored = await q.update_listing(
            tx, listing_id=listing_id, columns=columns, updated_at=format_utc(deleted),
            version=view.row.version + 1, signed_object=signed,
        )
        if stored:
            await trust_q.record_check(tx, listing_id, view.row.version + 1,
                                       local_check(ctx, author, now))
            await publish_listing_change(ctx, tx, activity_type="Delete", signed_object=signed,
                                         author_username=author.username,
                                         version=view.row.version + 1)
    if not stored:
        raise ConflictError("the listing changed meanwhile; reload it and try again")
    return await get_listing(ctx, listing_id)


async def search_listings(ctx: NodeContext, filters: SearchFilters) -> SearchPage:
    """Newest-first page of listings matching ``filters``."""
    filters = replace(filters, now=format_utc(ctx.clock()))
    rows, taken = await q.search_listings_and_taken(ctx.store.reader, filters, ctx.match_counts)
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    cursor = encode_cursor(rows[-1]) if more and rows else None
    return SearchPage(items=rows, next_cursor=cursor, taken=taken)


def encode_cursor(row: ListingRow) -> str:
    """Opaque, stable paging cursor: the last item's (published time, sequence number)."""
    return f"{row.published_at}~{row.seq}"


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Inverse of ``encode_cursor``; ValidationError when it was not made by us."""
    published, _, seq = cursor.partition("~")
    parse_utc(published, field="cursor")
    return published, parse_cursor(seq)


async def add_image(
    ctx: NodeContext, author: MemberRow, listing_id: str, data: bytes, *, alt: str = ""
) -> ListingView:
    """Re-encode and attach an image (at most ``max_images``), publishing a new version.

    The file is written first under a fresh random name; the image row commits in the same
    transaction as the version check, and the file is removed if that transaction does not
    commit (a concurrent edit, a full disk). A crash in between leaves a file no row names,
    which ``sweep_orphan_media`` removes at the next start.
    """
    view = await _own_listing(ctx, author, listing_id)
    config = ctx.config
    if len(view.images) >= config.max_images:
        raise PayloadTooLargeError(Text("a listing has at most %(max)s images",
            max=config.max_images))
    encoded = await ctx.images.reencode(data)
    image_id = secrets.token_hex(8)
    image = ImageRow(
        id=image_id, listing_id=listing_id,
        position=max((i.position for i in view.images), default=-1) + 1,
        filename=f"{image_id}.jpg", media_type=encoded.media_type, width=encoded.width,
        height=encoded.height, size_bytes=len(encoded.data), alt=alt.strip()[:200],
    )
    path = config.media_dir / listing_id / image.filename
    await asyncio.to_thread(_write_file, path.parent, path.name, encoded.data)

    async def insert_row(tx: aiosqlite.Connection) -> None:
        await q.insert_image(tx, image, format_utc(ctx.clock()))

    draft = draft_from_row(view.row, config.currency.decimals)
    try:
        await _store_new_version(ctx, author, view, draft, [*view.images, image],
                                 also=insert_row)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return await get_listing(ctx, listing_id)


async def remove_image(
    ctx: NodeContext, author: MemberRow, listing_id: str, image_id: str
) -> ListingView:
    """Detach an image and publish a new version without it (the file goes after commit)."""
    view = await _own_listing(ctx, author, listing_id)
    remaining = [i for i in view.images if i.id != image_id]
    if len(remaining) == len(view.images):
        raise NotFoundError(f"no image {image_id!r} on this listing")

    async def delete_row(tx: aiosqlite.Connection) -> None:
        await q.delete_image(tx, listing_id, image_id)

    draft = draft_from_row(view.row, ctx.config.currency.decimals)
    await _store_new_version(ctx, author, view, draft, remaining, also=delete_row)
    (ctx.config.media_dir / listing_id / f"{image_id}.jpg").unlink(missing_ok=True)
    return await get_listing(ctx, listing_id)


async def sweep_orphan_media(ctx: NodeContext) -> int:
    """Remove media files no image row names (left by a crash mid-upload); returns the count.

    Run at start-up, before the node serves: no upload is under way then.
    """
    known = await q.all_image_files(ctx.store.reader)
    return await asyncio.to_thread(_remove_unknown_files, ctx.config.media_dir, known)


def _remove_unknown_files(media_dir: Path, known: set[tuple[str, str]]) -> int:
    removed = 0
    if not media_dir.is_dir():
        return 0
    for folder in media_dir.iterdir():
        if not folder.is_dir():
            continue
        for file in folder.iterdir():
            if file.is_file() and (folder.name, file.name) not in known:
                file.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


def _write_file(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(folder / name)
