"""Helpers to run a real ``meshnode run`` process on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import Config
from meshnode.services import members
from meshnode.services.context import NodeContext

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``meshnode ARGS`` as a subprocess (the real console entry point)."""
    result = subprocess.run(
        [sys.executable, "-m", "meshnode.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"meshnode {' '.join(args)} failed: {result.stderr}")
    return result


class NodeProcess:
    """A ``meshnode run`` subprocess; stop it with SIGTERM or kill it with SIGKILL."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.startup_seconds = 0.0

    def start(self, timeout: float = 15.0) -> NodeProcess:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meshnode.cli",
                "run",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"node exited early: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        self.startup_seconds = time.monotonic() - started
                        return self
            except OSError:
                time.sleep(0.05)
        pytest.fail("node did not start in time")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Send ``sig`` and wait; return (exit code, stderr)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        _, stderr = self.proc.communicate(timeout=30)
        return self.proc.returncode, stderr

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


async def member_tokens(config: Config, names: tuple[str, ...] = ("alice", "bob")
                        ) -> dict[str, str]:
    """Add ``names`` as members of the (stopped) node and return an API token for each."""
    ctx = await NodeContext.open(config)
    try:
        tokens = {}
        for name in names:
            await members.add_member(ctx, username=name, password=None)
            tokens[name] = (await members.create_token(ctx, name)).secret
        return tokens
    finally:
        await ctx.close()


def start_quiet_node(config: Config) -> subprocess.Popen[bytes]:
    """``meshnode run`` for ``config`` as a subprocess with its output discarded (kill tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING", "run", "--data-dir",
         str(config.data_dir)], env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def wait_healthy(url: str, tries: int = 300) -> None:
    """Wait until the node at ``url`` answers ``/healthz`` (``tries`` × 50 ms)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(tries):
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not start")
