"""Messages across nodes: how fast a member's messages are signed and queued, delivered and
stored by the other node, and what a conversation list costs with many conversations.

Run: ``PYTHONPATH=. python scripts/bench_messages.py [--count N]``. Two nodes in one process
on 127.0.0.1 (client and servers share one event loop and one core); workers are stepped by
hand, so the figures are work done, not waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from pathlib import Path

from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config, InboxLimits, LimitsConfig
from meshnode.federation import messaging
from meshnode.federation.runtime import WORKERS
from meshnode.federation.state import FEDERATION
from meshnode.services import direct_messages, members
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT

NO_LIMITS = LimitsConfig(0, 0, 0, 0)
# alpha is a stranger to beta (not peers): lift the door's stranger quota (120 rows/h by
# default; beyond it beta answers 429 and alpha's delivery worker retries later).
OPEN_DOOR = InboxLimits(stranger_rows_per_hour=1_000_000,
                        stranger_bytes_per_hour=1024 * 1024 * 1024)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _node(root: Path, handle: str) -> web.AppRunner:
    port = _port()
    config = init_node(Config(data_dir=root / handle, name=handle, handle=handle,
                              public_url=f"http://127.0.0.1:{port}", port=port,
                              discovery_policy="off", limits=NO_LIMITS, inbox=OPEN_DOOR))
    runner = web.AppRunner(create_app(config, run_workers=False))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _settle(*runners: web.AppRunner) -> None:
    while sum([await r.app[WORKERS].step_all() for r in runners]):
        pass


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        alpha, beta = await _node(Path(tmp), "alpha"), await _node(Path(tmp), "beta")
        actx, bctx = alpha.app[CONTEXT], beta.app[CONTEXT]
        alice = await members.add_member(actx, username="alice", password=None)
        bob = await members.add_member(bctx, username="bob", password=None)
        host = bctx.config.base_url.removeprefix("http://")
        started = time.perf_counter()
        to = await messaging.resolve_member(alpha.app[FEDERATION], f"bob@{host}")
        print(f"WebFinger + actor fetch for bob@{host}: "
              f"{(time.perf_counter() - started) * 1000:.1f} ms")
        started = time.perf_counter()
        for n in range(count):
            await direct_messages.send_remote(actx, alice, to=to, body=f"Message {n}")
        sent = time.perf_counter() - started
        print(f"{count} messages signed, stored and queued: {sent * 1000 / count:.2f} ms each "
              f"({count / sent:.0f}/s)")
        started = time.perf_counter()
        await _settle(alpha, beta)
        done = time.perf_counter() - started
        received = await direct_messages.unread_count(bctx, bob)
        print(f"delivered, verified and stored on beta: {received} of {count}, "
              f"{done * 1000 / max(count, 1):.2f} ms each ({count / done:.0f}/s)")
        started = time.perf_counter()
        for _ in range(100):
            await direct_messages.conversations(actx, alice)
        print(f"conversation list (1 remote conversation, {count} messages): "
              f"{(time.perf_counter() - started) * 10:.2f} ms")
        await alpha.cleanup()
        await beta.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    asyncio.run(main(parser.parse_args().count))
