"""Notifications are not kept forever: read items older than 90 days go, and each member keeps
at most their newest 1,000 items; the periodic maintenance (the deal worker) does it."""

from __future__ import annotations

from meshnode.federation.runtime import DealWorker
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.store import notifications as q
from tests.conftest import FakeClock, TestMember


async def _notify(ctx: NodeContext, member: TestMember, count: int, ref: str) -> None:
    async with ctx.store.transaction() as tx:
        for n in range(count):
            await notifications.notify(ctx, tx, member.row.id, "message", ref=f"{ref}{n}")


async def _refs(ctx: NodeContext, member: TestMember) -> list[str]:
    items = await notifications.list_notifications(ctx, member.row, limit=100)
    return [item.ref for item in items]


async def _stored(ctx: NodeContext, member: TestMember) -> int:
    async with ctx.store.reader.execute(
            "SELECT count(*) FROM notifications WHERE member_id = ?", (member.row.id,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_notifications_prune__read_items_older_than_90_days_go_in_the_maintenance(
    ctx: NodeContext, alice: TestMember, clock: FakeClock,
) -> None:
    # Given alice read one old item and left one old item unread
    await _notify(ctx, alice, 1, "old-read")
    await notifications.mark_read(ctx, alice.row, None)
    await _notify(ctx, alice, 1, "old-unread")
    # And 91 days later she reads the unread one and gets a new item she reads too
    clock.advance(days=91)
    await _notify(ctx, alice, 1, "new-read")
    await notifications.mark_read(ctx, alice.row, None)
    # When the periodic maintenance runs
    await DealWorker(ctx).step()
    # Then both items created more than 90 days ago and read are gone; the new one stays
    assert await _refs(ctx, alice) == ["new-read0"]


async def test_notifications_prune__unread_old_items_stay_under_the_cap(
    ctx: NodeContext, alice: TestMember, clock: FakeClock,
) -> None:
    await _notify(ctx, alice, 1, "unread")
    clock.advance(days=200)
    assert await notifications.prune(ctx) == 0
    assert await _refs(ctx, alice) == ["unread0"]


async def test_notifications_cap__each_member_keeps_the_newest_1000(
    ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given alice has 1,005 unread items and bob 3
    await _notify(ctx, alice, notifications.MAX_STORED + 5, "a")
    await _notify(ctx, bob, 3, "b")
    # When they are pruned
    assert await notifications.prune(ctx) == 5
    # Then alice keeps her newest 1,000 (the five oldest went), bob all of his
    assert await _stored(ctx, alice) == notifications.MAX_STORED
    assert (await _refs(ctx, alice))[0] == f"a{notifications.MAX_STORED + 4}"
    oldest = await q.list_for_member(ctx.store.reader, alice.row.id, before=None,
                                     limit=notifications.MAX_STORED + 5)
    assert oldest[-1].ref == "a5"
    assert await _stored(ctx, bob) == 3
    assert await notifications.prune(ctx) == 0
