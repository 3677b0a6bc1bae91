"""A node with mDNS discovery stops promptly, whenever it is stopped (real multicast on lo).

Each test stops a node at an awkward moment and checks the stop is bounded, leaves no task
of ours behind and logs no error. Foreign services announced on lo by other test runs are
harmless here: they only add resolutions to cancel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import ServiceStateChange

from meshnode.protocol.discovery import SERVICE_TYPE, Advert
from meshnode.services import neighbours
from meshnode.services.neighbours import SeenAdvert
from tests.federation.mdns_nodes import Node, ensure_loopback_multicast, start_node, wait_until

pytestmark = pytest.mark.timeout(30)

STOP_BOUND = 3.0  # seconds; a stop used to hang for ever when a cancel was lost
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _multicast() -> None:
    ensure_loopback_multicast()


async def _stop_promptly(node: Node, before: set[asyncio.Task[object]],
                         caplog: pytest.LogCaptureFixture) -> None:
    """Stop ``node`` within :data:`STOP_BOUND`; no task it started may outlive the stop."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(STOP_BOUND):
        await node.stop()
    assert loop.time() - started < STOP_BOUND
    for _ in range(3):  # done callbacks run on the next iterations
        await asyncio.sleep(0)
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    assert not left, f"tasks left running after the stop: {left}"
    errors = [r for r in caplog.records
              if r.levelno >= logging.ERROR and r.name.startswith("meshnode")]
    assert not errors, [r.getMessage() for r in errors]


def _tasks() -> set[asyncio.Task[object]]:
    return set(asyncio.all_tasks())


async def test_mdns_shutdown__immediately_after_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node whose registration is still probing (that takes ~1 s)
    before = _tasks()
    node = await start_node(tmp_path, "alpha")
    assert node.runtime.discovery.registered_name is None
    # When it is stopped at once, Then it stops promptly and cleanly
    await _stop_promptly(node, before, caplog)


async def test_mdns_shutdown__right_after_registration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node whose advert is registered (announcements and goodbyes are sent by
    # zeroconf tasks that the node must await, not leave behind)
    before = _tasks()
    node = await start_node(tmp_path, "alpha")
    async with asyncio.timeout(10):
        await node.runtime.discovery.async_wait_registered()
    # When it stops, Then its goodbyes are sent within the bound and no task outlives it
    await _stop_promptly(node, before, caplog)


async def test_mdns_shutdown__during_a_resolve_burst(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node flooded with adverts it must query for (nobody will answer)
    before = _tasks()
    node = await start_node(tmp_path, "alpha")
    discovery = node.runtime.discovery
    for i in range(100):
        discovery._on_service_state_change(
            discovery.aiozc.zeroconf, SERVICE_TYPE, f"Ghost {i}.{SERVICE_TYPE}",
            ServiceStateChange.Added)
    await wait_until(lambda: _true(discovery.stats.queries >= 2), timeout=5)
    assert len(discovery.queue) > 0
    # When it is stopped while resolvers wait for answers, Then it stops promptly
    await _stop_promptly(node, before, caplog)


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
def silent_neighbour() -> Iterator[tuple[int, threading.Event]]:
    """A 127.0.0.1 port that accepts the verifier's connection and never answers it.

    Served from a thread, so that its own work is not counted among the loop's tasks.
    """
    asked = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    connections: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connections.append(connection)
            asked.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], asked
    finally:
        stop.set()
        thread.join(2)
        for connection in connections:
            connection.close()
        server.close()


async def test_mdns_shutdown__while_the_verifier_is_fetching(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
    silent_neighbour: tuple[int, threading.Event],
) -> None:
    # Given a node verifying a neighbour whose HTTP server never answers
    port, asked = silent_neighbour
    before = _tasks()
    node = await start_node(tmp_path, "alpha")
    advert = Advert(bytes(range(32)), "/groups/silent", "Silent")
    seen = SeenAdvert(f"Silent.{SERVICE_TYPE}", advert, ("127.0.0.1",), port)
    assert await neighbours.record_advert(node.ctx, seen, max_neighbours=10) is not None
    node.runtime.discovery._on_discovered()  # wake the verifier, as a resolution does
    await wait_until(lambda: _true(asked.is_set()), timeout=5, interval=0.01)
    # When the node stops mid-request, Then the request is abandoned and the stop is prompt
    await _stop_promptly(node, before, caplog)


@pytest.mark.parametrize("mode", ["abandon", "cancel"])
def test_mdns_shutdown__loop_closed_without_a_clean_stop(tmp_path: Path, mode: str) -> None:
    # Given a process that ends its event loop with the node not (or not fully) cleaned up
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.federation.abandoned_node", str(tmp_path / "n"), mode],
        capture_output=True, text=True, timeout=20, env=env, cwd=REPO, check=False,
    )
    # Then it exits promptly, and the loop's own clean-up of our contexts raises nothing
    assert result.returncode == 0, result.stderr
    assert "exited" in result.stdout
    assert "error occurred during closing" not in result.stderr, result.stderr
    assert "didn't stop after athrow" not in result.stderr, result.stderr
    assert "Task was destroyed but it is pending" not in result.stderr, result.stderr
