#!/usr/bin/env python3
"""Login timing by account kind, and the login throttle's cost at full capacity.

Prints the median and p95 time of a failed ``services/sessions.login`` (real SQLite file, real
Argon2id) for: an existing account with a wrong password, an unknown username, a disabled
account; and, for comparison, what an unknown username cost before issue 12 (the database
lookup alone, no verify). Then fills every table of a ``LoginThrottle`` to capacity and
prints its memory (tracemalloc) and the time of one check + one recorded failure.

    PYTHONPATH=. python scripts/bench_login.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from meshnode.config import Config
from meshnode.errors import AuthenticationError
from meshnode.services import members, sessions
from meshnode.services.accounts import MemberChange, admin_change_member
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.services.ratelimit import LoginThrottle
from meshnode.store import members as member_q


async def _timed(rounds: int, attempt: Callable[[int], Awaitable[object]]) -> list[float]:
    times = []
    for n in range(rounds):
        start = time.perf_counter()
        with contextlib.suppress(AuthenticationError):  # every attempt here fails
            await attempt(n)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _line(label: str, times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    return f"{label:<42} median {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms"


async def login_timings(data_dir: Path, rounds: int) -> list[str]:
    config = init_node(Config(data_dir=data_dir, name="Bench", handle="bench",
                              public_url="http://127.0.0.1:8080", discovery_policy="off"))
    ctx = await NodeContext.open(config)
    try:
        admin = await members.add_member(ctx, username="alice", password="benchmark password",
                                         is_admin=True)
        await members.add_member(ctx, username="bob", password="benchmark password")
        await admin_change_member(ctx, admin, "bob", MemberChange(disabled=True))

        def attempt(username: str) -> Callable[[int], Awaitable[object]]:
            async def one(n: int) -> object:  # a fresh throttle: measure the check, not 429s
                return await sessions.login(ctx, LoginThrottle(), username=username,
                                            password="wrong password", address=f"10.0.0.{n}")
            return one

        async def old_unknown(n: int) -> object:
            return await member_q.get_member_by_username(ctx.store.reader, f"nobody{n}")

        await _timed(2, attempt("alice"))  # warm up
        return [
            _line("existing account, wrong password", await _timed(rounds, attempt("alice"))),
            _line("unknown username (dummy verify)", await _timed(rounds, attempt("nobody"))),
            _line("disabled account (dummy verify)", await _timed(rounds, attempt("bob"))),
            _line("unknown username before (lookup only)", await _timed(rounds, old_unknown)),
        ]
    finally:
        await ctx.close()


def throttle_at_capacity() -> list[str]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    throttle = LoginThrottle()
    now = datetime.now(UTC)
    capacity = throttle.policy.capacity
    for n in range(capacity * 2):  # every tier of every table full
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        for _ in range(throttle.policy.per_address if n < capacity else 1):
            throttle.record_failure(f"user{n:06d}", address, now)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    start = time.perf_counter()
    for n in range(10_000):
        throttle.retry_after(f"spray{n}", "192.0.2.1", now)
        throttle.record_failure(f"spray{n}", f"192.0.2.{n & 255}", now)
    per_call = (time.perf_counter() - start) / 10_000 * 1e6
    sizes = ", ".join(f"{name} {len(table):,}" for name, table in (
        ("pairs", throttle.pairs), ("addresses", throttle.addresses),
        ("accounts", throttle.accounts)))
    return [f"throttle full ({sizes} keys): {used / 2**20:.1f} MiB",
            f"one check + one recorded failure: {per_call:.1f} µs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for line in asyncio.run(login_timings(Path(tmp) / "node", args.rounds)):
            print(line)
    for line in throttle_at_capacity():
        print(line)


if __name__ == "__main__":
    main()
