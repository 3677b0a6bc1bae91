"""A relayed Announce logged without a copy of its listing's text (migration 0021): read
whole while it points at the listing, and given its own copy before the listing's text is
replaced or the listing deleted (real SQLite, the store's own queries)."""

from __future__ import annotations

from pathlib import Path

from meshnode.services.publishing import around_object, dumps
from meshnode.store import Store
from meshnode.store import outbox as oq

GROUP = "http://b.example/group"


def _announce(n: int, document: dict[str, object]) -> dict[str, object]:
    return {"@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{GROUP}/announces/{n}", "type": "Announce", "actor": GROUP,
            "object": document, "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "hops": 2}


async def _bodies(store: Store) -> list[str]:
    return [row["body"] for row in await oq.public_page(store.reader, [GROUP], 0, 10, 10**6)]


async def test_announce_text__a_pointing_announce_keeps_its_text_when_the_listing_goes(
        tmp_path: Path) -> None:
    # Given a listing and two Announces logged as pointers to its text
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        document = {"id": "http://a.example/listings/1", "type": "Proposal",
                    "name": "Échelle \"6 m\"", "proof": {"proofValue": "z3FX"}}
        text = dumps(document)
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO listings (id, object_id, author_uri, origin, is_local, kind,"
                " category, status, title, description, price_mode, published_at,"
                " updated_at, signed_object) VALUES ('l1', ?, 'http://a.example/u/a',"
                " 'http://a.example', 0, 'offer', 'tools', 'active', 't', 'd', 'free',"
                " '2026-12-04T00:00:00Z', '2026-12-04T00:00:00Z', ?)", (document["id"], text))
            for n in (1, 2):
                head, tail = around_object(_announce(n, document), "object")
                await oq.insert_activity(
                    tx, activity_id=f"{GROUP}/announces/{n}", actor=GROUP,
                    activity_type="Announce", object_id=str(document["id"]), public=True,
                    body=head, created_at="2026-12-04T00:00:00Z", object_of="l1",
                    body_tail=tail)
        expected = [dumps(_announce(n, document)) for n in (1, 2)]
        # Then they read whole, and their page's size bound counts the listing's text
        assert await _bodies(store) == expected
        assert len(await oq.public_page(store.reader, [GROUP], 0, 10,
                                        len(expected[0]) + 1)) == 1
        # When the listing's text is replaced
        async with store.transaction() as tx:
            await tx.execute("UPDATE listings SET signed_object = '{}' WHERE id = 'l1'")
        # Then each Announce kept the text it announced, as its own copy
        assert await _bodies(store) == expected
        async with store.reader.execute(
                "SELECT count(*) FROM outbox_activities WHERE object_of IS NOT NULL") as cur:
            assert (await cur.fetchone())[0] == 0
        # And an Announce pointing at a listing that is then deleted keeps its text too
        async with store.transaction() as tx:
            await tx.execute("UPDATE listings SET signed_object = ? WHERE id = 'l1'",
                             (dumps({"x": 1}),))
            await tx.execute("UPDATE outbox_activities SET body = ?, body_tail = ?,"
                             " object_of = 'l1' WHERE seq = 1",
                             around_object(_announce(1, {"x": 1}), "object"))
        assert (await _bodies(store))[0] == dumps(_announce(1, {"x": 1}))
        async with store.transaction() as tx:
            await tx.execute("DELETE FROM listings WHERE id = 'l1'")
        assert (await _bodies(store))[0] == dumps(_announce(1, {"x": 1}))
    finally:
        await store.close()
