#!/usr/bin/env python3
"""What portable reputation costs (issue 18): counting a member's receipts (the minimum
reputation gate asks it on every loan request), checking receipts again for the receipts
page, next to baselines measured in the same run.

Prints medians and p95 of:
* baseline: one member looked up by name (``members.get_member``), and one FEP-8b32 proof
  verified on a listing (what a listing page does);
* ``reputation.count_for`` for a member holding ``--receipts`` receipts;
* one receipt checked again (3 proofs here: a deal inside one community);
* ``reputation.receipts_of``: the receipts page's work for the newest 200 receipts.

    PYTHONPATH=. python scripts/bench_receipts.py [--receipts 10000] [--rounds 50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from meshnode import urls
from meshnode.config import Config, LimitsConfig
from meshnode.protocol import receipts as proto
from meshnode.protocol.proofs import verify_proof
from meshnode.services import listings, members, reputation
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.services.receipts import receipt_values
from meshnode.services.signing import community_actor, cosign_as_member, cosign_as_node
from meshnode.store import receipts as receipt_q
from meshnode.store.members import MemberRow

RIDE = {"kind": "offer", "category": "ride", "title": "Covoiturage vers Lyon",
        "description": "Trois places.", "price": {"mode": "free"},
        "location": {"name": "Quai du Canal"},
        "details": {"from": "Canal", "to": "Lyon", "departure": "2027-01-05T09:00:00+01:00",
                    "seats": 3}}
START = datetime(2024, 1, 1, tzinfo=UTC)


async def timed(rounds: int, work: Callable[[], Awaitable[object] | object]
                ) -> tuple[float, float]:
    """Median and p95 in milliseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        if asyncio.iscoroutine(result):
            await result
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def seed(ctx: NodeContext, alice: MemberRow, partners: list[MemberRow],
               count: int) -> None:
    """``count`` receipts of deals between alice and her partners, one every 3 hours."""
    node = community_actor(ctx)
    me = urls.member_actor(ctx.config.base_url, alice.username)
    keys = {urls.ed25519_key_id(node): ctx.identity.ed25519_public}
    for start in range(0, count, 500):
        async with ctx.store.transaction() as tx:
            for i in range(start, min(count, start + 500)):
                partner = partners[i % len(partners)]
                them = urls.member_actor(ctx.config.base_url, partner.username)
                when = START + timedelta(hours=3 * i)
                draft = proto.build_receipt(
                    deal=f"{ctx.config.base_url}/deals/bench{i}", completed=when,
                    booker=proto.ReceiptParty(them, node, 5, False),
                    author=proto.ReceiptParty(me, node, 4, i % 50 == 0))
                signed = cosign_as_node(ctx, cosign_as_member(ctx, partner, cosign_as_member(
                    ctx, alice, draft, when), when), when)
                all_keys = {**keys, urls.ed25519_key_id(me): alice.ed25519_public,
                            urls.ed25519_key_id(them): partner.ed25519_public}
                await receipt_q.upsert_receipt(tx, receipt_values(
                    ctx, proto.parse_receipt(signed), signed, party=me, holder_id=alice.id,
                    state="complete", source="deal", keys=all_keys))


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080",
                                  limits=LimitsConfig(0, 0, 0)))
        ctx = await NodeContext.open(config)
        try:
            alice = await members.add_member(ctx, username="alice", password=None)
            partners = [await members.add_member(ctx, username=f"p{i}", password=None)
                        for i in range(20)]
            started = time.perf_counter()
            await seed(ctx, alice, partners, count)
            print(f"seeded {count} receipts (3 proofs each) in "
                  f"{time.perf_counter() - started:.1f} s")
            view = await listings.create_listing(ctx, alice, RIDE)
            signed = view.signed_object
            p50, p95 = await timed(rounds, lambda: members.get_member(ctx, "alice"))
            print(f"baseline, one member by name: p50 {p50:.3f} ms, p95 {p95:.3f} ms")
            p50, p95 = await timed(rounds, lambda: verify_proof(
                signed, public_key=alice.ed25519_public))
            print(f"baseline, one listing proof verified: p50 {p50:.3f} ms, p95 {p95:.3f} ms")
            actor = urls.member_actor(config.base_url, "alice")
            counts = await reputation.count_for(ctx, actor)
            p50, p95 = await timed(rounds, lambda: reputation.count_for(ctx, actor))
            print(f"count_for with {count} receipts -> {counts}: "
                  f"p50 {p50:.3f} ms, p95 {p95:.3f} ms")
            [row] = await receipt_q.held_by(ctx.store.reader, alice.id, limit=1)
            assert reputation.recheck(row).verified
            p50, p95 = await timed(rounds, lambda: reputation.recheck(row))
            print(f"one receipt checked again (3 proofs): p50 {p50:.3f} ms, p95 {p95:.3f} ms")
            _, items = await reputation.receipts_of(ctx, "alice")
            p50, p95 = await timed(max(3, rounds // 5), lambda: reputation.receipts_of(
                ctx, "alice"))
            print(f"receipts page work ({len(items)} receipts checked again): "
                  f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")
            print(f"one stored receipt: {len(row.document.encode())} bytes; "
                  f"a bundle of {reputation.MAX_BUNDLE_RECEIPTS} cross-community receipts "
                  f"(4 proofs) is about "
                  f"{reputation.MAX_BUNDLE_RECEIPTS * (len(row.document.encode()) + 260) // 1024}"
                  f" KiB")
            json.loads(row.document)
        finally:
            await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="1,000 receipts, 10 rounds")
    args = parser.parse_args()
    if args.quick:
        args.receipts, args.rounds = 1000, 10
    asyncio.run(main(args.receipts, args.rounds))
