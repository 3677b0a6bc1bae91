"""Publishing: listings published together are written in one multi-row INSERT
(``store.listings.insert_statements``), each one stored, versioned, searchable and queued."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from meshnode.services import listings
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.store import new_listings
from meshnode.store.listings import SearchFilters
from tests.conftest import TestMember, ride_listing


async def test_create_listing__a_batch_in_one_insert_each_stored_searchable_and_queued(
        ctx: NodeContext, alice: TestMember, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a spy on the statements that insert new local listings
    batches: list[int] = []
    real = new_listings.insert_statements

    def spy(rows: Sequence[tuple[object, ...]], suffix: str = "") -> list[tuple[str,
                                                                              list[object]]]:
        batches.append(len(rows))
        return real(rows, suffix)

    monkeypatch.setattr(new_listings, "insert_statements", spy)
    # When alice publishes six listings at once
    views = await asyncio.gather(*(
        listings.create_listing(ctx, alice.row, ride_listing(title=f"Covoiturage numéro {n}"))
        for n in range(6)))
    # Then they went in together, and each one reads back as stored at version 1 with its
    # signed text, is found by the full-text search, and has its Create logged
    assert max(batches) > 1
    assert sum(batches) == 6
    for view in views:
        row = await listing_store.get_listing(ctx.store.reader, view.row.id)
        assert row == view.row
        assert row is not None
        assert (row.version, row.is_local) == (1, True)
        assert await listing_store.list_versions(ctx.store.reader, row.id) == [
            (1, row.signed_object)]
    found = await listings.search_listings(ctx, SearchFilters(text="numéro", limit=20))
    assert sorted(row.title for row in found.items) == sorted(v.row.title for v in views)
    async with listing_store.query(ctx.store.reader,
                                   "SELECT count(*) FROM outbox_activities WHERE type ="
                                   " 'Create'") as cursor:
        assert (await cursor.fetchall())[0][0] == 6
