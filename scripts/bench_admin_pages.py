"""Benchmark the federation admin pages with many peers and trust lines (in process).

Usage: ``PYTHONPATH=. python scripts/bench_admin_pages.py [--rows 200] [--requests 100]``

Seeds a fresh node with ``rows`` peers and ``rows`` proposed trust lines through the
services, signs an admin in, and times sequential GETs of ``/admin/peers`` and
``/admin/trustlines`` (p50/p95 ms). Target: p95 < 200 ms with 200 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.federation import peering
from meshnode.services import iou, members
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT

PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html", "Accept-Language": "en"}


async def main(rows: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = init_node(Config(data_dir=Path(tmp), name="Bench", handle="bench",
                                  public_url="http://127.0.0.1:8080", discovery_policy="off"))
        async with TestClient(TestServer(create_app(config))) as client:
            ctx = client.app[CONTEXT]
            await members.add_member(ctx, username="root", password=PASSWORD, is_admin=True)
            for i in range(rows):
                await peering.add_peer(ctx, f"https://node{i}.example")
                await iou.propose_line(ctx, None, peer=f"https://node{i}.example",
                                       limit_out="100", limit_in="50", rate="1.5")
            login = await (await client.get("/login", headers=HTML)).text()
            match = re.search(r'name="csrf" value="([^"]+)"', login)
            assert match
            await client.post("/login", data={"username": "root", "password": PASSWORD,
                                              "csrf": match.group(1), "next": "/"})
            for path in ("/admin/peers", "/admin/trustlines"):
                times = []
                for _ in range(requests):
                    start = time.perf_counter()
                    response = await client.get(path, headers=HTML)
                    await response.read()
                    assert response.status == 200
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                p95 = times[int(len(times) * 0.95) - 1]
                print(f"{path:20} {rows} rows: p50 {statistics.median(times):6.1f} ms"
                      f"  p95 {p95:6.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.requests))
