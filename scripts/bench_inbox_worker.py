"""The inbox worker's CPU per listing, apart from the door (issue 17).

Run: ``PYTHONPATH=. python scripts/bench_inbox_worker.py [--quick] [--listings N]
[--profile FILE]``. On 127.0.0.1, in one process: alpha signs N distinct listings and posts
a Create of each to beta's inbox (beta's workers off, so only the door runs); then beta's
inbox worker processes them (``InboxWorker.step`` until none is left) and only that part is
measured: the CPU of the event loop's thread (proofs, parsing, policy, building the rows)
and of SQLite's threads (the statements), per listing. Listings are posted and processed
by chunks the door keeps its readings for (``READINGS_MAX``), as in a running node.
``bench_federation.py --ingest`` measures the whole path (door and worker, end to end).
``--profile FILE`` puts the worker's steps under cProfile and prints their top costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from meshnode.config import InboxLimits
from meshnode.federation.processing import INBOX_BATCH
from meshnode.federation.runtime import WORKERS
from meshnode.federation.state import READINGS_MAX
from meshnode.protocol.activities import listing_activity
from meshnode.protocol.signing import signed_post_headers
from meshnode.services import listings, members
from meshnode.store import federation as fq
from meshnode.web.appkeys import CONTEXT
from scripts.bench_federation import RIDE, Node, _distinct_listings, _raw_request, _raw_sender
from scripts.bench_federation import print_profile as print_stats
from scripts.bench_web import thread_cpu

CHUNK = min(800, READINGS_MAX)


def _requests(ctx: Any, alice: Any, documents: list[dict[str, Any]], url: str, first: int
              ) -> list[tuple[bytes, dict[str, str]]]:
    """Signed Create requests (body, headers), activity ids numbered from ``first``."""
    actor = f"{ctx.config.base_url}/users/alice"
    key = members.member_identity(ctx, alice).signing_key
    now = int(time.time())
    out = []
    for n, document in enumerate(documents, start=first):
        create = listing_activity("Create", document, actor=actor, version=1,
                                  published="2026-11-26T10:00:00Z")
        create["id"] = f"{actor}/activities/worker-bench-{n}"
        body = json.dumps(create).encode()
        out.append((body, signed_post_headers("rfc9421-ed25519", url, body, key=key,
                                              key_id=f"{actor}#ed25519-key", now=now)))
    return out


async def _process(beta: Node, profiler: cProfile.Profile | None, batch: int
                   ) -> tuple[int, float, float]:
    """Step beta's inbox worker (``batch`` activities a step) until its inbox is empty:
    (activities, seconds of CPU of the loop's thread, of all other threads)."""
    worker = beta.app[WORKERS].inbox
    worker.batch = batch
    step = worker.step
    main = threading.get_native_id()
    gc.collect()
    before = thread_cpu()
    loop_before = time.thread_time()
    done = 0
    if profiler is not None:
        profiler.enable()
    while count := await step():
        done += count
    if profiler is not None:
        profiler.disable()
    loop = time.thread_time() - loop_before
    after = thread_cpu()
    others = sum(after[tid] - before.get(tid, 0.0) for tid in after if tid != main)
    return done, loop, others


async def run(total: int, batch: int, profile: Path | None) -> None:
    """Post and process ``total`` listings by chunks; print the worker's CPU per listing."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        alpha = Node(root, "alpha")
        beta = Node(root, "beta", inbox=replace(  # one peer sends thousands here
            InboxLimits(), peer_rows_per_hour=1_000_000, peer_bytes_per_hour=4 * 1024**3))
        await alpha.start(False)
        await beta.start(False)
        async with beta.app[CONTEXT].store.transaction() as tx:  # beta follows alpha: a peer
            await fq.insert_peer(tx, origin=alpha.config.base_url,
                                 requested=alpha.config.base_url, out_state="peered",
                                 now="2026-01-01T00:00:00Z")
        ctx = alpha.app[CONTEXT]
        alice = await members.add_member(ctx, username="alice", password=None)
        view = await listings.create_listing(ctx, alice, RIDE)
        documents = _distinct_listings(ctx, alice, view.row.signed_object, total)
        url = f"{beta.config.base_url}/inbox"
        profiler = cProfile.Profile() if profile else None
        done, loop, others = 0, 0.0, 0.0
        try:
            for first in range(0, total, CHUNK):
                requests = _requests(ctx, alice, documents[first:first + CHUNK], url, first)
                async with aiohttp.ClientSession() as session, session.post(
                        url, data=requests[0][0], headers=requests[0][1]) as response:
                    assert response.status == 202, response.status
                raw = [_raw_request(url, body, headers) for body, headers in requests[1:]]
                await asyncio.gather(*(_raw_sender(url, raw) for _ in range(8)))
                count, loop_cpu, other_cpu = await _process(beta, profiler, batch)
                done, loop, others = done + count, loop + loop_cpu, others + other_cpu
        finally:
            await alpha.stop()
            await beta.stop()
    stored = done  # every Create is distinct: each one stores a listing
    print(f"inbox worker: {stored:,} distinct signed Creates processed; CPU per listing: "
          f"{(loop + others) / stored * 1e6:,.0f} µs (event loop's thread "
          f"{loop / stored * 1e6:,.0f} µs, SQLite's threads {others / stored * 1e6:,.0f} µs);"
          f" batches of {batch}; load {os.getloadavg()[0]:.1f};"
          f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
        print_stats(profile, stored)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="800 listings (smoke run)")
    parser.add_argument("--listings", type=int, default=None, help="listings (4,000)")
    parser.add_argument("--batch", type=int, default=INBOX_BATCH,
                        help=f"activities per worker step ({INBOX_BATCH}; a running node's "
                             "worker often takes fewer, as they arrive)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the worker's steps; statistics written there")
    args = parser.parse_args()
    asyncio.run(run(args.listings or (800 if args.quick else 4000), args.batch, args.profile))
