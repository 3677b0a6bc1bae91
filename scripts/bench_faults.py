"""Benchmark: what Idempotency-Key costs per payment, and how long SIGTERM takes on a full disk.

Usage: ``python scripts/bench_faults.py [--payments 300] [--clients 8] [--stops 5]``

1. Starts a real ``meshnode run`` on 127.0.0.1 and sends ``--payments`` payments through
   ``POST /api/v1/transfers`` with ``--clients`` concurrent clients, once without and once
   with a fresh ``Idempotency-Key`` each, then replays every keyed request once; prints
   payments per second for each and the replay rate.
2. As root only: mounts a 6 MiB tmpfs, runs a node on it, fills the disk, makes a write fail
   (507), sends SIGTERM and prints how long the process took to exit, ``--stops`` times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshnode.config import Config  # noqa: E402
from meshnode.services import members  # noqa: E402
from meshnode.services.context import NodeContext  # noqa: E402
from meshnode.services.node import init_node  # noqa: E402
from tests.diskfull import fill  # noqa: E402
from tests.nodeproc import free_port  # noqa: E402


def _new_node(root: Path) -> Config:
    port = free_port()
    return init_node(Config(data_dir=root / "node", name="Bench", handle="bench",
                            public_url=f"http://127.0.0.1:{port}", port=port,
                            discovery_policy="off"))


async def _tokens(config: Config, count: int) -> list[str]:
    ctx = await NodeContext.open(config)
    try:
        tokens = []
        for index in range(count):
            await members.add_member(ctx, username=f"m{index:02d}", password=None)
            tokens.append((await members.create_token(ctx, f"m{index:02d}")).secret)
        return tokens
    finally:
        await ctx.close()


def _start(config: Config) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "meshnode.cli", "--log-level", "ERROR", "run", "--data-dir",
         str(config.data_dir)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _ready(url: str, token: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/api/v1/me",
                                       headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise SystemExit("node did not start")


async def _pay_all(url: str, tokens: list[str], payments: int, clients: int,
                   keys: list[str] | None) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    queue = list(range(payments))

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            index = queue.pop()
            payer, payee = index % len(tokens), (index + 1) % len(tokens)
            headers = {"Authorization": f"Bearer {tokens[payer]}"}
            if keys is not None:
                headers["Idempotency-Key"] = keys[index]
            async with session.post(f"{url}/api/v1/transfers", headers=headers,
                                    json={"payee": f"m{payee:02d}", "amount": "0.01"}) as r:
                statuses[r.status] = statuses.get(r.status, 0) + 1
                await r.read()

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return payments / (time.perf_counter() - started), statuses


def bench_idempotency(payments: int, clients: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        config = _new_node(Path(root))
        tokens = asyncio.run(_tokens(config, 10))
        process = _start(config)
        try:
            asyncio.run(_ready(config.base_url, tokens[0]))
            keys = [f"bench-{index}" for index in range(payments)]
            for label, use in (("without key", None), ("with a new key", keys),
                               ("replayed key", keys)):
                rate, statuses = asyncio.run(_pay_all(config.base_url, tokens, payments,
                                                      clients, use))
                print(f"POST /api/v1/transfers {label:>15}: {rate:7.1f} per s  {statuses}")
        finally:
            process.terminate()
            process.wait(timeout=60)


def bench_stop_on_full_disk(stops: int) -> None:
    if os.geteuid() != 0:
        print("SIGTERM on a full disk: skipped (needs root to mount a tmpfs)")
        return
    with tempfile.TemporaryDirectory() as root:
        disk = Path(root) / "disk"
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6291456", "tmpfs", str(disk)],
                       check=True)
        try:
            config = _new_node(disk)
            tokens = asyncio.run(_tokens(config, 2))
            for _ in range(stops):
                process = _start(config)
                asyncio.run(_ready(config.base_url, tokens[0]))
                asyncio.run(_pay_all(config.base_url, tokens, 5, 1, None))
                filler = fill(disk)
                _, statuses = asyncio.run(_pay_all(config.base_url, tokens, 3, 1, None))
                started = time.perf_counter()
                process.send_signal(signal.SIGTERM)
                code = process.wait(timeout=120)
                print(f"SIGTERM on a full disk: exit {code} after "
                      f"{time.perf_counter() - started:.2f} s (writes answered {statuses})")
                filler.unlink()
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def main() -> None:
    """Parse arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--stops", type=int, default=5)
    args = parser.parse_args()
    bench_idempotency(args.payments, args.clients)
    bench_stop_on_full_disk(args.stops)


if __name__ == "__main__":
    main()
