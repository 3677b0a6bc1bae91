#!/usr/bin/env python3
"""What a member or a visitor can make a real ``meshnode run`` process hold (issue 12).

Prints, for a node with the default ``[server]`` limits:
- idle RSS, then the peak RSS increase (VmHWM, reset before each case through
  ``/proc/PID/clear_refs``) for each hostile or large image, the worst accepted one, and six
  concurrent uploads of it; the RSS left once they are done. Target: < 100 MB above idle.
  Each upload is decoded by a short-lived child of the node (``services/images.py``): its
  memory counts. The figure is the node's own peak above idle plus the largest peak of its
  children (VmHWM, the most a child held, read from ``/proc`` every 2 ms while the uploads
  run: a child decodes at most a few hundred ms, then encodes a small JPEG, so its peak is
  read before it ends; one child runs at a time). Both RSS figures count each process's
  copies of shared pages (the interpreter's), so the sum overstates the machine's cost: the
  child's file-backed pages are printed too (most are the node's as well).
- slow-connection survival: /healthz latency while K connections trickle request heads and
  bodies (K = 200 and 1,030 as in the issue), and how many the node closed meanwhile.
- the inbox quota figures (``scripts/bench_inbox_quota.py --quick``, run from here).

    PYTHONPATH=. python scripts/bench_limits.py [--slow 200,1030] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

from meshnode.config import Config
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.services.images import DEFAULT_DECODE_BUDGET, decode_cost
from meshnode.services.node import init_node

RIDE = {
    "kind": "offer", "category": "give", "title": "Bench listing for images",
    "description": "x", "price": {"mode": "free"}, "location": {"name": "Canal"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_mb(pid: int, key: str) -> float:
    """``VmRSS`` or ``VmHWM`` of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0, own processes)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 128)[: len(mode)] if mode != "P" else 3).save(
        out, format=fmt)
    return out.getvalue()


def largest_square(mode: str, *, alpha: bool) -> int:
    """The largest square side a PNG of ``mode`` may have under the default budget."""
    low, high = 1600, 6000
    while low < high:
        mid = (low + high + 1) // 2
        if decode_cost(mid, mid, mode, alpha=alpha) <= DEFAULT_DECODE_BUDGET:
            low = mid
        else:
            high = mid - 1
    return low


def cases() -> list[tuple[str, bytes]]:
    rgb = largest_square("RGB", alpha=False)
    rgba = largest_square("RGBA", alpha=True)
    return [
        ("issue: PNG 6300×6300 (refused by the pixel cap)", encoded("RGB", (6300, 6300), "PNG")),
        ("PNG RGBA 4000×3000 (refused by the budget)", encoded("RGBA", (4000, 3000), "PNG")),
        (f"PNG RGB {rgb}×{rgb} (largest accepted)", encoded("RGB", (rgb, rgb), "PNG")),
        (f"PNG RGBA {rgba}×{rgba} (largest accepted)", encoded("RGBA", (rgba, rgba), "PNG")),
        ("JPEG 6000×4000 (24 Mpx, reduced on load)", encoded("RGB", (6000, 4000), "JPEG")),
        ("JPEG 3199×3199 (worst JPEG: no reduction)", encoded("RGB", (3199, 3199), "JPEG")),
    ]


async def setup_node(data_dir: Path, port: int) -> str:
    config = init_node(Config(data_dir=data_dir, name="Bench", handle="bench",
                              public_url=f"http://127.0.0.1:{port}", port=port,
                              discovery_policy="off"))
    ctx = await NodeContext.open(config)
    try:
        await members.add_member(ctx, username="alice", password="benchmark password")
        return (await members.create_token(ctx, "alice")).secret
    finally:
        await ctx.close()


def start_node(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING",
                             "run", "--data-dir", str(data_dir), "--port", str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("node did not start")


async def upload(session: aiohttp.ClientSession, url: str, token: str, data: bytes) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{url}/api/v1/listings", json=RIDE, headers=headers) as made:
        listing_id = (await made.json())["id"]
    form = aiohttp.FormData()
    form.add_field("image", data, filename="x", content_type="application/octet-stream")
    async with session.post(f"{url}/api/v1/listings/{listing_id}/images", data=form,
                            headers=headers) as response:
        return response.status


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (Linux ≥ 3.5: ``/proc/PID/task/TID/children``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def decoding_child_peak(pid: int) -> tuple[float, float] | None:
    """An image decoding child's VmHWM and RssFile (MB: its peak, and the file-backed part of
    its resident memory now: the interpreter's and libraries' pages, mostly shared with the
    node); None for another child, one not yet past its exec (its memory is then the node's,
    shared) or one that has ended."""
    try:
        if b"image_codec" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
        return proc_mb(pid, "VmHWM"), proc_mb(pid, "RssFile")
    except OSError:  # ended between the listing and the read
        return None


class ChildPeaks:
    """The largest VmHWM of the node's children (its image decoding children) while it runs:
    ``/proc`` read every ``seconds``."""

    def __init__(self, pid: int, seconds: float = 0.002) -> None:
        self.pid = pid
        self.seconds = seconds
        self.peak = 0.0
        self.file_backed = 0.0
        self.seen: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            for child in children(self.pid):
                if (read := decoding_child_peak(child)) is not None:
                    self.seen.add(child)
                    self.peak = max(self.peak, read[0])
                    self.file_backed = max(self.file_backed, read[1])
            await asyncio.sleep(self.seconds)

    async def __aenter__(self) -> ChildPeaks:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def bench_images(url: str, token: str, pid: int) -> None:
    idle = proc_mb(pid, "VmRSS")
    print(f"idle RSS: {idle:.1f} MB (peaks below: the node's own + its decoding child's)")
    worst: tuple[float, str, bytes] | None = None
    async with aiohttp.ClientSession() as session:
        for name, data in cases():
            reset_peak(pid)
            async with ChildPeaks(pid) as child:
                started = time.perf_counter()
                status = await upload(session, url, token, data)
                took = (time.perf_counter() - started) * 1000
            own = proc_mb(pid, "VmHWM") - idle
            peak = own + child.peak
            print(f"  {name}: {len(data) // 1024} KB, {status} in {took:.0f} ms, peak"
                  f" +{peak:.1f} MB above idle (node +{own:.1f}, child {child.peak:.1f} MB of which"
                  f" {child.file_backed:.1f} file-backed,"
                  f" {len(child.seen)} children seen), RSS after {proc_mb(pid, 'VmRSS'):.1f} MB")
            if status == 201 and (worst is None or peak > worst[0]):
                worst = (peak, name, data)
        if worst is None:
            return
        print(f"worst accepted image: {worst[1]}: peak +{worst[0]:.1f} MB above idle"
              f" (target < 100 MB)")
        before = proc_mb(pid, "VmRSS")
        reset_peak(pid)
        async with ChildPeaks(pid) as child:
            statuses = await asyncio.gather(*(upload(session, url, token, worst[2])
                                              for _ in range(6)))
        own = proc_mb(pid, "VmHWM")
        print(f"6 concurrent uploads of it: statuses {sorted(statuses)}, peak"
              f" +{own - idle + child.peak:.1f} MB above idle (node +{own - idle:.1f}, +"
              f"{own - before:.1f} above the RSS before; the largest child {child.peak:.1f} MB,"
              f" {len(child.seen)} children seen, one at a time), RSS after"
              f" {proc_mb(pid, 'VmRSS'):.1f} MB")


async def slow_client(port: int, index: int, stop: asyncio.Event, closed: list[int]) -> None:
    """Trickle a request head (even index) or body (odd), one byte a second."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed[0] += 1
        return
    head = (b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " if index % 2 == 0 else
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: 100000\r\n\r\nu=")
    try:
        writer.write(head)
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            try:
                async with asyncio.timeout(1.0):
                    if await reader.read(4096) == b"":
                        closed[0] += 1
                        return
            except TimeoutError:
                pass
    except OSError:
        closed[0] += 1
    finally:
        writer.close()


async def bench_slow(url: str, port: int, count: int, seconds: float) -> None:
    stop = asyncio.Event()
    closed = [0]
    clients = [asyncio.create_task(slow_client(port, i, stop, closed)) for i in range(count)]
    await asyncio.sleep(1.0)
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                async with session.get(f"{url}/healthz") as response:
                    await response.read()
                    latencies.append((time.perf_counter() - started) * 1000)
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
            await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*clients)
    if latencies:
        print(f"{count} slow connections: /healthz {len(latencies)} answered, {failures} failed,"
              f" p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms;"
              f" {closed[0]} slow connections closed by the node in {seconds + 1:.0f} s")
    else:
        print(f"{count} slow connections: /healthz never answered ({failures} failures)")


def bench_inbox_quota() -> None:
    """Inbox quota figures: ``scripts/bench_inbox_quota.py --quick`` in its own process (its
    two in-process nodes need a loop of their own)."""
    print("inbox quota (scripts/bench_inbox_quota.py --quick):", flush=True)
    script = Path(__file__).with_name("bench_inbox_quota.py")
    subprocess.run([sys.executable, str(script), "--quick"], check=True,
                   env={**os.environ, "PYTHONPATH": str(script.parent.parent)})


def raise_own_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", default="200,1030", help="slow connection counts")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    raise_own_file_limit()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        data_dir = Path(tmp) / f"node-{secrets.token_hex(2)}"
        token = await setup_node(data_dir, port)
        proc = start_node(data_dir, port)
        url = f"http://127.0.0.1:{port}"
        try:
            await bench_images(url, token, proc.pid)
            for count in (int(n) for n in args.slow.split(",")):
                await bench_slow(url, port, count, args.seconds)
            print(f"node RSS at the end: {proc_mb(proc.pid, 'VmRSS'):.1f} MB")
            bench_inbox_quota()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
