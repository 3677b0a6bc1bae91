"""Benchmark: committed, signed local payments per second (API and service layer).

Usage: ``python scripts/bench_ledger.py [--seconds 5] [--clients 32] [--members 20]
[--synchronous full|normal|both]``

For each storage mode it creates a throw-away node, then
1. starts a real ``meshnode run`` on 127.0.0.1 and drives ``POST /api/v1/transfers`` with
   ``--clients`` concurrent keep-alive clients (payments go round a ring of members so no
   limit is hit), counting 201 answers;
2. calls ``services.ledger.pay`` directly with the same concurrency in-process;
3. verifies the whole journal (hash chain, every signature, balances == entries, sum zero).
The load generator shares the machine's cores with the node, so API figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.config import Config, SyncMode  # noqa: E402
from meshnode.services import ledger, members  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
from meshnode.store.members import MemberRow  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _new_node(root: Path, name: str, synchronous: SyncMode) -> Config:
    port = _free_port()
    return init_node(Config(
        data_dir=root / name, name="Bench", handle="bench", public_url=f"http://127.0.0.1:{port}",
        port=port, synchronous=synchronous,
    ))


async def _members(ctx: NodeContext, count: int) -> tuple[list[MemberRow], list[str]]:
    rows, tokens = [], []
    for index in range(count):
        name = f"m{index:03d}"
        rows.append(await members.add_member(ctx, username=name, password=None))
        tokens.append((await members.create_token(ctx, name)).secret)
    return rows, tokens


async def _drive_api(url: str, names: list[str], tokens: list[str], clients: int,
                     seconds: float) -> tuple[int, int, float]:
    ok = failed = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(offset: int) -> None:
            nonlocal ok, failed
            index = offset
            while time.monotonic() < deadline:
                payer, payee = index % len(names), (index + 1) % len(names)
                index += clients
                async with session.post(
                    f"{url}/api/v1/transfers", json={"payee": names[payee], "amount": "0.01"},
                    headers={"Authorization": f"Bearer {tokens[payer]}"},
                ) as response:
                    await response.read()
                    if response.status == 201:
                        ok += 1
                    else:
                        failed += 1

        start = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.monotonic() - start
    return ok, failed, elapsed


async def _wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/") as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("node did not start")


def bench_api(root: Path, synchronous: SyncMode, args: argparse.Namespace) -> None:
    """Payments through a real node's HTTP API."""
    config = _new_node(root, f"api-{synchronous}", synchronous)

    async def setup() -> tuple[list[str], list[str]]:
        ctx = await NodeContext.open(config)
        try:
            rows, tokens = await _members(ctx, args.members)
            return [row.username for row in rows], tokens
        finally:
            await ctx.close()

    names, tokens = asyncio.run(setup())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING", "run", "--data-dir",
         str(config.data_dir)], env=env, cwd=REPO,
    )
    url = f"http://127.0.0.1:{config.port}"
    try:
        asyncio.run(_wait_ready(url))
        ok, failed, elapsed = asyncio.run(
            _drive_api(url, names, tokens, args.clients, args.seconds)
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
    print(f"[{synchronous:>6}] API:     {ok / elapsed:8.1f} committed signed payments/s"
          f" ({ok} in {elapsed:.1f}s, {failed} refused, {args.clients} clients)")
    asyncio.run(_verify(config, synchronous))


def bench_service(root: Path, synchronous: SyncMode, args: argparse.Namespace) -> None:
    """Payments through ``services.ledger.pay`` in-process (no HTTP)."""
    config = _new_node(root, f"svc-{synchronous}", synchronous)

    async def run() -> None:
        ctx = await NodeContext.open(config)
        try:
            rows, _ = await _members(ctx, args.members)
            done = 0
            deadline = time.monotonic() + args.seconds

            async def worker(offset: int) -> None:
                nonlocal done
                index = offset
                while time.monotonic() < deadline:
                    payer, payee = rows[index % len(rows)], rows[(index + 1) % len(rows)]
                    index += args.clients
                    await ledger.pay(ctx, payer, payee=payee.username, amount="0.01")
                    done += 1

            start = time.monotonic()
            await asyncio.gather(*(worker(i) for i in range(args.clients)))
            elapsed = time.monotonic() - start
            print(f"[{synchronous:>6}] service: {done / elapsed:8.1f} committed signed payments/s"
                  f" ({done} in {elapsed:.1f}s)")
        finally:
            await ctx.close()

    asyncio.run(run())
    asyncio.run(_verify(config, synchronous))


async def _verify(config: Config, synchronous: str) -> None:
    ctx = await NodeContext.open(replace(config))
    try:
        start = time.monotonic()
        result = await ledger.verify_journal(ctx, check_signatures=True)
        elapsed = time.monotonic() - start
    finally:
        await ctx.close()
    verdict = "OK" if result.ok else "FAILED"
    print(f"[{synchronous:>6}] invariants: {verdict} ({result.chain.entries} entries, sum"
          f" {result.balance_sum}, {len(result.balance_mismatches)} balance mismatches;"
          f" full verify with signatures took {elapsed:.2f}s)")
    if not result.ok:
        print(result.describe())


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--synchronous", choices=("full", "normal", "both"), default="both")
    args = parser.parse_args()
    modes: tuple[SyncMode, ...] = (
        ("full", "normal") if args.synchronous == "both" else (args.synchronous,))
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=args_dir()) as tmp:
        for mode in modes:
            bench_api(Path(tmp), mode, args)
            bench_service(Path(tmp), mode, args)
    return 0


def args_dir() -> str | None:
    """Where the throw-away nodes live: $BENCH_DIR, else the system temp dir."""
    return os.environ.get("BENCH_DIR")


if __name__ == "__main__":
    sys.exit(main())
