"""Cross-node payment latency (direct and two-hop) and throughput on 127.0.0.1.

Three real nodes (alpha, beta, gamma) in this process, each on its own port with its own
background workers; lines alpha—beta, alpha—gamma—beta is forced for the two-hop run by
paying gamma's neighbour delta. Prints p50/p95 and payments/s, then checks every invariant.

    PYTHONPATH=. python scripts/bench_iou.py [--payments 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from meshnode.services import iou as svc
from meshnode.services import members
from tests.conftest import FakeClock, make_config
from tests.federation.conftest import Node, NodeFactory, bind_socket  # noqa: F401
from tests.federation.iou_helpers import check_invariants, handle


class RealClock(FakeClock):
    def __call__(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


async def _node(root: Path, name: str) -> Node:
    probe = bind_socket()
    port = probe.getsockname()[1]
    probe.close()
    config = make_config(root / name, handle=name, name=name, public_url=f"http://127.0.0.1:{port}",
                         port=port, synchronous="normal")
    node = Node(config=config, clock=RealClock())
    await node.start(run_workers=True)
    return node


async def _open(a: Node, b: Node) -> None:
    line = await svc.propose_line(a.ctx, None, peer=b.url, limit_out="100000",
                                  limit_in="100000", rate="1")
    for _ in range(400):
        if await b.count("SELECT count(*) FROM iou_lines WHERE id = ? AND state = 'pending'",
                         line.id):
            await svc.accept_line(b.ctx, None, line.id)
        if (await svc.get_line(a.ctx, line.id)).state == "active":
            return
        await asyncio.sleep(0.05)
    raise SystemExit("line did not open")


async def _latencies(session: aiohttp.ClientSession, node: Node, headers: dict[str, str],
                     payee: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.post(f"{node.url}/api/v1/transfers", headers=headers,
                                json={"payee": payee, "amount": "0.01"}) as response:
            body = await response.json()
            if response.status != 201:
                raise SystemExit(f"payment not committed: {response.status} {body}")
        times.append((time.perf_counter() - started) * 1000)
    return times


def _report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(f"{name:<10} n={len(times):<4} p50={statistics.median(times):7.1f} ms"
          f"  p95={p95:7.1f} ms  max={max(times):7.1f} ms")


async def main(payments: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a, b, c, d = [await _node(root, n) for n in ("alpha", "beta", "gamma", "delta")]
        await members.add_member(a.ctx, username="alice", password=None, is_admin=True)
        token = (await members.create_token(a.ctx, "alice")).secret
        headers = {"Authorization": f"Bearer {token}"}
        await b.member("bob")
        await d.member("dora")
        await _open(a, b)
        await _open(a, c)
        await _open(c, d)
        async with aiohttp.ClientSession() as session:
            await _latencies(session, a, headers, handle(b, "bob"), 5)  # warm up
            direct = await _latencies(session, a, headers, handle(b, "bob"), payments)
            hops = await _latencies(session, a, headers, handle(d, "dora"), payments)
            started = time.perf_counter()
            concurrent = 20
            per = max(1, payments // concurrent)
            await asyncio.gather(*(_latencies(session, a, headers, handle(b, "bob"), per)
                                   for _ in range(concurrent)))
            elapsed = time.perf_counter() - started
        _report("direct", direct)
        _report("two-hop", hops)
        print(f"throughput {per * concurrent / elapsed:.1f} committed cross-node payments/s"
              f" ({concurrent} concurrent clients, direct)")
        for _ in range(200):
            if not sum([await n.count("SELECT count(*) FROM iou_transfers WHERE state ="
                                      " 'prepared'") for n in (a, b, c, d)]):
                break
            await asyncio.sleep(0.05)
        await check_invariants(a, b, c, d)
        print("invariants: every journal verifies, every ledger sums to zero, lines mirror,"
              " transfer states agree on every node: OK")
        for node in (a, b, c, d):
            await node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=100)
    asyncio.run(main(parser.parse_args().payments))
