"""Neighbour state transitions (0005_discovery.sql), stepped with a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshnode.errors import ConflictError
from meshnode.protocol.discovery import MAX_VERIFY_ATTEMPTS, Advert
from meshnode.services import neighbours
from meshnode.services.context import NodeContext
from meshnode.services.neighbours import SeenAdvert
from tests.conftest import FakeClock

KEY = bytes(range(32))
SEEN = SeenAdvert("Les Voisins (AAAA-BBBB)._meshnode._tcp.local.",
                  Advert(KEY, "/groups/voisins", "Les Voisins"), ("192.168.1.20",), 8080)


async def _record(ctx: NodeContext, seen: SeenAdvert = SEEN, cap: int = 10):  # type: ignore[no-untyped-def]
    return await neighbours.record_advert(ctx, seen, max_neighbours=cap)


async def test_record_failure__backs_off_then_rejects(ctx: NodeContext, clock: FakeClock) -> None:
    row = await _record(ctx)
    for attempt in range(1, MAX_VERIFY_ATTEMPTS + 1):
        assert [r.id for r in await neighbours.due_for_verification(ctx, 10)] == [row.id]
        row = await neighbours.record_failure(ctx, row.id, "connection refused")
        assert row.attempts == attempt
        # not due again before the backoff elapsed
        assert await neighbours.due_for_verification(ctx, 10) == []
        clock.advance(seconds=600)
    assert row.status == "rejected"
    assert await neighbours.due_for_verification(ctx, 10) == []


async def test_record_advert__new_address_of_verified_node_must_reverify(ctx: NodeContext) -> None:
    row = await _record(ctx)
    await neighbours.record_verified(ctx, row.id, "http://192.168.1.20:8080/groups/voisins")
    moved = await _record(ctx, replace(SEEN, addresses=("192.168.1.99",)))
    assert moved.status == "discovered"
    assert moved.addresses == ("192.168.1.99",)


async def test_record_advert__same_advert_keeps_verified(ctx: NodeContext) -> None:
    row = await _record(ctx)
    await neighbours.record_verified(ctx, row.id, "http://192.168.1.20:8080/groups/voisins")
    assert (await _record(ctx)).status == "verified"


async def test_record_advert__table_cap_refuses_new_rows(ctx: NodeContext) -> None:
    await _record(ctx, cap=1)
    other = replace(SEEN, instance_name="Other._meshnode._tcp.local.")
    assert await _record(ctx, other, cap=1) is None
    assert len(await neighbours.list_neighbours(ctx)) == 1


async def test_block__key_stays_blocked_under_a_new_instance_name(ctx: NodeContext) -> None:
    row = await _record(ctx)
    blocked = await neighbours.block_neighbour(ctx, row.id)
    assert (blocked.status, blocked.blocked) == ("rejected", True)
    renamed = await _record(ctx, replace(SEEN, instance_name="Renamed._meshnode._tcp.local."))
    assert (renamed.status, renamed.blocked) == ("rejected", True)
    assert await neighbours.due_for_verification(ctx, 10) == []
    with pytest.raises(ConflictError):
        await neighbours.record_verified(ctx, row.id, "http://x:1/groups/voisins")
    with pytest.raises(ConflictError):
        await neighbours.approve_neighbour(ctx, row.id)


async def test_goodbye__offline_then_back_to_discovered(ctx: NodeContext) -> None:
    row = await _record(ctx)
    await neighbours.record_verified(ctx, row.id, "http://192.168.1.20:8080/groups/voisins")
    assert await neighbours.record_goodbye(ctx, SEEN.instance_name)
    assert (await neighbours.get_neighbour(ctx, row.id)).status == "offline"
    assert (await _record(ctx)).status == "discovered"
    assert not await neighbours.record_goodbye(ctx, "unknown._meshnode._tcp.local.")


async def test_peering_requested__only_verified_rows(ctx: NodeContext) -> None:
    row = await _record(ctx)
    url = "http://192.168.1.20:8080/groups/voisins"
    assert await neighbours.record_peering_requested(ctx, url) == 0
    await neighbours.record_verified(ctx, row.id, url)
    assert await neighbours.record_peering_requested(ctx, url) == 1
    assert (await neighbours.get_neighbour(ctx, row.id)).status == "peering_requested"
