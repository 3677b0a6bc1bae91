"""store.ingest: a batch of new remote listings in a few statements, each one searchable, its
signed text stored once and read whole."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from meshnode.protocol.trust import RULE_REMOTE, SignatureCheck
from meshnode.store import ingest
from meshnode.store import listings as listing_store
from meshnode.store.db import Store, initialise_database
from meshnode.store.ingest import NewRemoteListing
from meshnode.store.listings import ListingColumns

NOW = "2026-12-03T10:00:00Z"


def _row(number: int) -> NewRemoteListing:
    columns = ListingColumns(
        kind="offer", category="tools", status="active", title=f"Perceuse numéro {number}",
        description="Avec mèches.", price_mode="free", price_amount=None, price_period=None,
        location_name="Quai du Canal", lat=45.76, lon=4.83, details="{}",
        expires_at="2027-01-01T00:00:00Z")
    object_id = f"http://127.0.0.1:9/listings/{number}"
    return NewRemoteListing(
        listing_id=f"id{number}", object_id=object_id, author_uri="http://127.0.0.1:9/users/a",
        origin="http://127.0.0.1:9", columns=columns, published_at=NOW, updated_at=NOW,
        signed_object=f'{{"id":"{object_id}","type":"Proposal"}}',
        check=SignatureCheck(True, "http://127.0.0.1:9/users/a#k", "z6Mk", RULE_REMOTE, NOW))


@pytest.fixture
async def pairs_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> AsyncIterator[tuple[Store, Path]]:
    """A real database whose multi-row inserts take 2 rows each (5 listings: 3 statements)."""
    path = tmp_path / "db.sqlite3"
    initialise_database(path)
    monkeypatch.setattr(listing_store, "ROWS_PER_INSERT", 2)
    store = await Store.open(path)
    try:
        yield store, path
    finally:
        await store.close()


async def test_insert_remote_listings__rows_over_several_inserts_all_stored_and_searchable(
        pairs_store: tuple[Store, Path]) -> None:
    # Given a real database, and inserts of 2 rows each (so 5 listings take 3 statements)
    store, path = pairs_store
    rows = [_row(number) for number in range(5)]
    # When a batch of five new remote listings is inserted
    async with store.transaction() as tx:
        await ingest.insert_remote_listings(tx, rows)
    # Then each one is stored at version 1, found by the full-text index, and its one
    # version reads as the listing's own signed text (stored once)
    stored = await listing_store.get_listings(store.reader, [r.listing_id for r in rows])
    assert sorted(row.title for row in stored) == [r.columns.title for r in rows]
    assert all(row.version == 1 and not row.is_local for row in stored)
    for row in rows:
        assert await listing_store.list_versions(store.reader, row.listing_id) == [
            (1, row.signed_object)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM listings_fts WHERE listings_fts MATCH"
                            " 'perceuse'").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM listing_versions WHERE signed_object = ''"
                            ).fetchone() == (5,)


async def test_insert_remote_listings__returns_the_rows_as_a_read_gives_them(
        pairs_store: tuple[Store, Path]) -> None:
    # Given a real database, inserts of 2 rows each, and listings whose signed text carries
    # an availableQuantity (a generated column) or none
    store, _path = pairs_store
    rows = [_row(number) for number in range(5)]
    rows[1] = replace(rows[1], signed_object='{"publishes":{"availableQuantity":'
                                             '{"hasNumericalValue":"2"}}}')
    # When the batch is inserted
    async with store.transaction() as tx:
        returned = await ingest.insert_remote_listings(tx, rows)
    # Then the rows it returns, in the batch's order, are what a read gives, field by field
    read = await listing_store.get_listings(store.reader, [r.listing_id for r in rows])
    by_id = {row.id: row for row in read}
    assert [row.id for row in returned] == [r.listing_id for r in rows]
    assert returned == [by_id[r.listing_id] for r in rows]
    assert returned[1].available_quantity == '{"hasNumericalValue":"2"}'


async def test_listing_versions_keep_text__a_replaced_text_stays_with_its_version(
        tmp_path: Path) -> None:
    # Given a remote listing stored once (its version 1 points at the listing's text)
    path = tmp_path / "db.sqlite3"
    initialise_database(path)
    store = await Store.open(path)
    try:
        first = _row(1)
        async with store.transaction() as tx:
            await ingest.insert_remote_listings(tx, [first])
        # When any writer replaces the listing's text, here with plain SQL
        async with store.transaction() as tx:
            await tx.execute("UPDATE listings SET signed_object = '{\"v\":2}', version = 2"
                             " WHERE id = ?", (first.listing_id,))
            await tx.execute("INSERT INTO listing_versions (listing_id, version, signed_object,"
                             " created_at) VALUES (?, 2, '{\"v\":2}', ?)",
                             (first.listing_id, NOW))
        # Then version 1 kept the text it was stored with, version 2 has the new one
        assert await listing_store.list_versions(store.reader, first.listing_id) == [
            (1, first.signed_object), (2, '{"v":2}')]
    finally:
        await store.close()


def test_listing_versions_keep_text__finds_the_shared_row_by_index(tmp_path: Path) -> None:
    """Given a node's database, when the trigger looks for a listing's shared version row,
    then it reads it through the partial index, not through every version of the listing
    (a listing may have many)."""
    path = tmp_path / "db.sqlite3"
    initialise_database(path)
    with sqlite3.connect(path) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN UPDATE listing_versions SET signed_object = 'x'"
                            " WHERE listing_id = 'a' AND signed_object = ''").fetchall()
    assert any("USING INDEX listing_versions_shared" in str(step[-1]) for step in plan), plan


def test_listing_rows__columns_checked_once_for_all_rows() -> None:
    # Given one statement's rows that lack a listing's column (a migration ahead of the code)
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT 1 AS seq, 'x' AS id UNION ALL SELECT 2, 'y'").fetchall()
    # Then they make no ListingRow, as listing_row refuses each; and no rows make none
    with pytest.raises(TypeError):
        listing_store.listing_rows(rows)
    with pytest.raises(TypeError):
        listing_store.listing_row(rows[0])
    assert listing_store.listing_rows([]) == []
