"""Inbox door benchmark: what a stranger and a quota-bound peer get stored, and how fast the
door refuses strangers' Creates.

Run: ``PYTHONPATH=. python scripts/bench_inbox_quota.py [--quick]``. Two in-process nodes on
127.0.0.1 (one event loop, one core; workers off): alpha's member signs real requests,
beta receives them with the default ``[federation]`` quotas. Figures:

1. refusals per second of validly signed ``Create``s from an origin that is not a peer
   (small listings and 250 KB Notes: the issue's flood), and whether anything was stored;
2. rows and bytes a stranger origin gets stored in one hour (small Follows, then 250 KB
   Follows) before 429;
3. the same for a peer origin (small Creates, then 250 KB Creates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.protocol.signing import signed_post_headers
from meshnode.services import members
from meshnode.services.node import init_node
from meshnode.store import federation as fq
from meshnode.web.appkeys import CONTEXT

CONCURRENCY = 16
BIG = 250_000


class Node:
    """One node served in this process on a free 127.0.0.1 port."""

    def __init__(self, root: Path, handle: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.config = init_node(Config(data_dir=root / handle, name=handle, handle=handle,
                                       public_url=f"http://127.0.0.1:{port}", port=port,
                                       discovery_policy="off"))
        self.runner = web.AppRunner(create_app(self.config, run_workers=False),
                                    access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def count(self, sql: str) -> int:
        async with self.runner.app[CONTEXT].store.reader.execute(sql) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise RuntimeError(f"no row from {sql!r}")
        return int(row[0])


class Sender:
    """alpha's member alice, signing requests to one inbox."""

    def __init__(self, alpha: Node, seed: bytes, inbox: str) -> None:
        self.actor = f"{alpha.config.base_url}/users/alice"
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        self.inbox = inbox

    def request(self, activity: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(activity).encode()
        headers = signed_post_headers("rfc9421-ed25519", self.inbox, body, key=self.key,
                                      key_id=f"{self.actor}#ed25519-key",
                                      now=int(time.time()))
        return body, headers

    def create(self, n: int, *, kind: str, padding: int = 0) -> tuple[bytes, dict[str, str]]:
        obj = {"id": f"{self.actor}/objects/{kind}-{n}", "type": kind,
               "attributedTo": self.actor, "content": "x" * padding}
        return self.request({"id": f"{self.actor}/activities/c-{kind}-{n}-{padding}",
                             "type": "Create", "actor": self.actor, "object": obj})

    def follow(self, n: int, target: str, *, padding: int = 0) -> tuple[bytes, dict[str, str]]:
        return self.request({"id": f"{self.actor}/follows/{n}-{padding}", "type": "Follow",
                             "actor": self.actor, "object": target, "padding": "x" * padding})


async def send_all(session: aiohttp.ClientSession, url: str,
                   requests: list[tuple[bytes, dict[str, str]]]) -> tuple[list[int], float]:
    """POST every request, CONCURRENCY at a time; statuses and elapsed seconds."""
    statuses: list[int] = []
    started = time.perf_counter()
    for first in range(0, len(requests), CONCURRENCY):
        async def one(body: bytes, headers: dict[str, str]) -> int:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        statuses += await asyncio.gather(*(one(b, h) for b, h in
                                           requests[first:first + CONCURRENCY]))
    return statuses, time.perf_counter() - started


async def until_429(session: aiohttp.ClientSession, url: str, make: Any, limit: int) -> int:
    """Send ``make(n)`` one by one until a 429 (or ``limit``); return how many got 202."""
    accepted = 0
    for n in range(limit):
        body, headers = make(n)
        async with session.post(url, data=body, headers=headers) as response:
            if response.status == 429:
                return accepted
            if response.status != 202:
                raise RuntimeError(f"unexpected {response.status}: {await response.text()}")
            accepted += 1
    return accepted


async def stored(beta: Node) -> tuple[int, int]:
    rows = await beta.count("SELECT count(*) FROM inbox_activities")
    size = await beta.count("SELECT coalesce(sum(size), 0) FROM inbox_activities")
    return rows, size


async def main(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        alpha, beta = Node(Path(tmp), "alpha"), Node(Path(tmp), "beta")
        await alpha.start()
        await beta.start()
        ctx = alpha.runner.app[CONTEXT]
        alice = await members.add_member(ctx, username="alice", password=None)
        url = f"{beta.config.base_url}/inbox"
        sender = Sender(alpha, members.member_identity(ctx, alice).ed25519_seed, url)
        group = f"{beta.config.base_url}/groups/beta"
        async with aiohttp.ClientSession() as session:
            print("1. door refusals of a stranger's signed Creates (alpha is not beta's peer)")
            for label, total, padding in (("small listing", 400 if quick else 2000, 0),
                                          ("250 KB Note", 40 if quick else 400, BIG)):
                kind = "Proposal" if padding == 0 else "Note"
                requests = [sender.create(n, kind=kind, padding=padding) for n in range(total)]
                statuses, elapsed = await send_all(session, url, requests)
                print(f"   {label:>14}: {total} sent, {statuses.count(403)} refused (403) in"
                      f" {elapsed:.2f} s = {total / elapsed:,.0f} refusals/s;"
                      f" stored rows {(await stored(beta))[0]}")
            print("2. what a stranger origin gets stored per hour (then 429)")
            small = await until_429(session, url, lambda n: sender.follow(n, group), 10_000)
            _, size = await stored(beta)
            print(f"   small Follows: {small} stored ({size:,} bytes)")
            async with beta.runner.app[CONTEXT].store.transaction() as tx:
                await tx.execute("DELETE FROM inbox_rows")
            big = await until_429(session, url,
                                  lambda n: sender.follow(n, group, padding=BIG), 10_000)
            _, size = await stored(beta)
            print(f"   250 KB Follows: {big} stored ({size / 2**20:.2f} MiB)")
            print("3. what a peer origin gets stored per hour (then 429)")
            async with beta.runner.app[CONTEXT].store.transaction() as tx:
                await tx.execute("DELETE FROM inbox_rows")
                await fq.insert_peer(tx, origin=alpha.config.base_url,
                                     requested=alpha.config.base_url, out_state="peered",
                                     now="2026-01-01T00:00:00Z")
            started = time.perf_counter()
            big = await until_429(session, url,
                                  lambda n: sender.create(n, kind="Proposal", padding=BIG),
                                  10_000)
            _, size = await stored(beta)
            print(f"   250 KB Creates: {big} stored ({size / 2**20:.1f} MiB) in"
                  f" {time.perf_counter() - started:.1f} s")
            if not quick:
                async with beta.runner.app[CONTEXT].store.transaction() as tx:
                    await tx.execute("DELETE FROM inbox_rows")
                small = await until_429(session, url,
                                        lambda n: sender.create(n, kind="Proposal"), 10_000)
                _, size = await stored(beta)
                print(f"   small Creates: {small} stored ({size / 2**20:.2f} MiB)")
        await beta.runner.cleanup()
        await alpha.runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    asyncio.run(main(parser.parse_args().quick))
