"""The community's listings as an Atom feed, for people who follow it from a feed reader."""

from __future__ import annotations

from meshnode.protocol.atom import FeedEntry, FeedHead, build_feed
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import CATEGORIES
from meshnode.services.context import NodeContext
from meshnode.services.listings import search_listings
from meshnode.store.listings import ListingRow, SearchFilters

FEED_SIZE = 50


def _entry(ctx: NodeContext, row: ListingRow) -> FeedEntry:
    base = ctx.config.base_url
    return FeedEntry(
        id=row.object_id, title=row.title, summary=row.description,
        link=f"{base}/listings/{row.id}", author=row.author_username or ctx.config.name,
        category=row.category, published=row.published_at, updated=row.updated_at)


async def listings_feed(ctx: NodeContext, category: str | None) -> bytes:
    """The newest active listings of this community (optionally one category) as Atom."""
    if category is not None and category not in CATEGORIES:
        raise ValidationError("unknown category", {"category": "unknown value"})
    page = await search_listings(ctx, SearchFilters(
        status="active", category=category, local_only=True, limit=FEED_SIZE))
    base = ctx.config.base_url
    path = "/feed.atom" + (f"?category={category}" if category else "")
    head = FeedHead(id=f"{base}{path}", title=ctx.config.name + (
        f" · {category}" if category else ""), self_url=f"{base}{path}",
        site_url=f"{base}/" + (f"search?category={category}" if category else ""))
    return build_feed(head, [_entry(ctx, row) for row in page.items], ctx.clock())
