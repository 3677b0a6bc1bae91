"""Queries on deal receipts (``deal_receipts``; callers hold the transaction for writes)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class ReceiptRow:
    """One party's receipt of one deal, as stored."""

    seq: int
    deal: str
    party_actor: str
    holder_id: int
    other_actor: str
    party_node: str
    other_node: str
    completed_at: str
    rating: int
    no_show: bool
    other_rating: int
    other_no_show: bool
    state: str
    source: str
    document: str
    keys: str
    checked_at: str

    @property
    def cross_community(self) -> bool:
        """The two parties belong to different communities."""
        return self.party_node != self.other_node


@dataclass(frozen=True)
class ReceiptCounts:
    """What a set of receipts counts for (see ``count_for_holder``)."""

    deals: int
    cross_community: int
    no_shows: int


_COLUMNS = ("deal", "party_actor", "holder_id", "other_actor", "party_node", "other_node",
            "completed_at", "rating", "no_show", "other_rating", "other_no_show", "state",
            "source", "document", "keys", "checked_at")


def _row(record: aiosqlite.Row) -> ReceiptRow:
    values = dict(record)
    for flag in ("no_show", "other_no_show"):
        values[flag] = bool(values[flag])
    return ReceiptRow(**values)


async def upsert_receipt(db: aiosqlite.Connection, values: dict[str, object]) -> None:
    """Store a receipt, or complete a pending one (the same deal and party)."""
    names = ", ".join(_COLUMNS)
    marks = ", ".join("?" for _ in _COLUMNS)
    await db.execute(
        f"INSERT INTO deal_receipts ({names}) VALUES ({marks})"  # noqa: S608 (fixed names)
        " ON CONFLICT (deal, party_actor) DO UPDATE SET state = excluded.state,"
        " document = excluded.document, keys = excluded.keys,"
        " checked_at = excluded.checked_at WHERE deal_receipts.state = 'pending'",
        [values[name] for name in _COLUMNS])


async def insert_imported(db: aiosqlite.Connection, values: dict[str, object]) -> bool:
    """Store an imported receipt; False if this party of this deal is already here."""
    names = ", ".join(_COLUMNS)
    marks = ", ".join("?" for _ in _COLUMNS)
    cursor = await db.execute(
        f"INSERT OR IGNORE INTO deal_receipts ({names}) VALUES ({marks})",  # noqa: S608
        [values[name] for name in _COLUMNS])
    return cursor.rowcount == 1


async def get_receipt(db: aiosqlite.Connection, deal: str, party_actor: str
                      ) -> ReceiptRow | None:
    """One party's receipt of one deal."""
    async with query(db, "SELECT * FROM deal_receipts WHERE deal = ? AND party_actor = ?",
                     (deal, party_actor)) as rows:
        record = await rows.fetchone()
    return _row(record) if record is not None else None


async def known_deals(db: aiosqlite.Connection, deals: list[str], party_actors: list[str]
                      ) -> set[str]:
    """Which of ``deals`` already have a receipt here for one of ``party_actors``."""
    if not deals:
        return set()
    found: set[str] = set()
    marks = ", ".join("?" for _ in party_actors)
    for start in range(0, len(deals), 400):
        chunk = deals[start:start + 400]
        deal_marks = ", ".join("?" for _ in chunk)
        async with query(db, f"SELECT deal FROM deal_receipts WHERE deal IN ({deal_marks})"  # noqa: S608
                         f" AND party_actor IN ({marks})", [*chunk, *party_actors]) as rows:
            found.update(str(r[0]) for r in await rows.fetchall())
    return found


async def held_by(db: aiosqlite.Connection, holder_id: int, limit: int = 200
                  ) -> list[ReceiptRow]:
    """The complete receipts a member holds, newest deal first."""
    async with query(db, "SELECT * FROM deal_receipts WHERE holder_id = ? AND state ="
                     " 'complete' ORDER BY completed_at DESC, seq DESC LIMIT ?",
                     (holder_id, limit)) as rows:
        return [_row(r) for r in await rows.fetchall()]


# A deal between two accounts of one community counts at most once per pair and calendar
# month (self-dealing, issue 18); deals across communities each count once (one row per
# deal and party, UNIQUE). No-shows all count.
_COUNTS = (
    "SELECT coalesce(sum(party_node != other_node), 0),"
    " count(DISTINCT CASE WHEN party_node = other_node"
    "  THEN {pair} || ' ' || substr(completed_at, 1, 7) END),"
    " coalesce(sum({flag}), 0) FROM deal_receipts WHERE {who} = ? AND state = 'complete'")


async def count_for_holder(db: aiosqlite.Connection, holder_id: int) -> ReceiptCounts:
    """What the receipts a member of this node holds count for."""
    return await _counts(db, _COUNTS.format(flag="no_show", who="holder_id",
                                            pair="other_actor"), holder_id)


async def _counts(db: aiosqlite.Connection, sql: str, who: object) -> ReceiptCounts:
    async with query(db, sql, (who,)) as rows:
        record = await rows.fetchone()
    if record is None:  # an aggregate always answers one row
        raise LookupError("no counts")
    cross, local = int(record[0]), int(record[1])
    return ReceiptCounts(deals=cross + local, cross_community=cross, no_shows=int(record[2]))


async def count_for_other(db: aiosqlite.Connection, actor: str) -> ReceiptCounts:
    """What the receipts our members hold of deals with ``actor`` (of another node) count
    for, seen from that actor's side."""
    return await _counts(db, _COUNTS.format(flag="other_no_show", who="other_actor",
                                            pair="party_actor"), actor)


async def deals_missing_receipts(db: aiosqlite.Connection, limit: int = 20) -> list[str]:
    """Completed deals whose author is ours, rated by both parties, with no receipt kept for
    the author yet (the other community was unknown then, or the deal predates receipts)."""
    async with query(db, "SELECT d.id FROM deals d WHERE d.state = 'completed'"
                     " AND d.author_id IS NOT NULL"
                     " AND (SELECT count(*) FROM deal_feedback f WHERE f.deal_id = d.id) = 2"
                     " AND NOT EXISTS (SELECT 1 FROM deal_receipts r WHERE r.deal ="
                     " d.agreement_id AND r.party_actor = d.author_uri)"
                     " ORDER BY d.updated_at LIMIT ?", (limit,)) as rows:
        return [str(r[0]) for r in await rows.fetchall()]
