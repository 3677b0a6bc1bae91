"""``meshnode demo`` run for real: three node processes that find each other over mDNS."""

from __future__ import annotations

import html
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from meshnode import demo
from meshnode.config import load_config
from tests.federation.mdns_nodes import ensure_loopback_multicast
from tests.nodeproc import free_port

NODES = 3


def free_base_port(count: int) -> int:
    """A port p such that p .. p+count-1 are all free on 127.0.0.1 right now."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    pytest.fail("no run of free ports")


class Demo:
    """``meshnode demo`` as a subprocess, its output in files (no pipe can fill up)."""

    def __init__(self, data_dir: Path, base_port: int, run: int, *,
                 command: tuple[str, ...] = (sys.executable, "-m", "meshnode.cli"),
                 cwd: Path | None = None, nodes: int = NODES) -> None:
        self.out = data_dir.parent / f"demo-{run}.out"
        self.err = data_dir.parent / f"demo-{run}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*command, "demo", "--nodes", str(nodes),
                 "--base-port", str(base_port), "--data-dir", str(data_dir)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def output(self) -> str:
        return self.out.read_text("utf-8") + self.err.read_text("utf-8")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"demo did not start:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return html.unescape(response.read().decode("utf-8"))


def wait_all_listings_everywhere(base_port: int, timeout: float = 20.0) -> None:
    expected = [title for i in range(NODES) for title in demo.listing_titles(i)]
    deadline = time.monotonic() + timeout
    while True:
        pages = [get(f"http://127.0.0.1:{base_port + i}/") for i in range(NODES)]
        missing = [(i, t) for i, page in enumerate(pages) for t in expected if t not in page]
        if not missing:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"listings missing after {timeout} s (node, title): {missing}")
        time.sleep(0.2)


def local_listing_counts(data_dir: Path) -> list[int]:
    counts = []
    for i in range(NODES):
        db = sqlite3.connect(load_config(demo.node_dir(data_dir, i)).database_path)
        try:
            counts.append(db.execute("SELECT count(*) FROM listings WHERE is_local = 1")
                          .fetchone()[0])
        finally:
            db.close()
    return counts


def fingerprints(base_port: int) -> list[str]:
    return [json.loads(get(f"http://127.0.0.1:{base_port + i}/.well-known/meshnode"))
            ["fingerprint"] for i in range(NODES)]


@pytest.mark.timeout(90)
def test_demo__nodes_share_listings_stop_cleanly_and_resume(tmp_path: Path) -> None:
    ensure_loopback_multicast()
    data_dir = tmp_path / "meshnode-demo"
    base_port = free_base_port(NODES)
    # Given a first run of the demo
    first = Demo(data_dir, base_port, 1)
    try:
        first.wait_ready()
        # Then it prints every node's URL and logins
        for i in range(NODES):
            assert f"http://127.0.0.1:{base_port + i}/" in first.output()
            for person in demo.community(i).members:
                assert f"login {person.username} / {person.password}" in first.output()
        # And every node's home page soon shows every node's listings (no URL configured)
        wait_all_listings_everywhere(base_port)
        keys = fingerprints(base_port)
    finally:
        code = first.stop()
    # When stopped with Ctrl-C, Then it exits cleanly
    assert code == 0, first.output()
    assert "Traceback" not in first.output()
    assert "stopped" in first.output()
    assert "not cleanly" not in first.output()
    seeded = local_listing_counts(data_dir)
    assert seeded == [len(demo.community(i).listings) for i in range(NODES)]

    # When run again on the same directory, Then it resumes: same keys, no re-seeding
    second = Demo(data_dir, base_port, 2)
    try:
        second.wait_ready()
        assert "resumed" in second.output()
        assert fingerprints(base_port) == keys
        wait_all_listings_everywhere(base_port)
    finally:
        code = second.stop()
    assert code == 0, second.output()
    assert "Traceback" not in second.output()
    assert local_listing_counts(data_dir) == seeded


def console_script() -> tuple[str, ...]:
    """How a user starts meshnode: the venv's console script (``python -P -m`` without one)."""
    script = Path(sys.executable).parent / "meshnode"
    return (str(script),) if script.exists() else (sys.executable, "-P", "-m", "meshnode.cli")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("shadow_init", [None, "raise ImportError('the shadow was imported')\n"],
                         ids=["folder", "package"])
def test_demo__runs_from_a_folder_holding_an_unrelated_meshnode_directory(
    tmp_path: Path, shadow_init: str | None,
) -> None:
    ensure_loopback_multicast()
    # Given a current directory with a ``meshnode/`` folder that is not this package (e.g.
    # the parent of a checkout named meshnode, or an old copy): a child started with
    # ``python -m`` from there would import it instead of the real package
    workdir = tmp_path / "parent"
    (workdir / "meshnode").mkdir(parents=True)
    if shadow_init is not None:
        (workdir / "meshnode" / "__init__.py").write_text(shadow_init, encoding="utf-8")
    base_port = free_base_port(2)
    # When the demo is started from there
    run = Demo(tmp_path / "meshnode-demo", base_port, 1, command=console_script(),
               cwd=workdir, nodes=2)
    try:
        run.wait_ready()
        # Then every node started and serves its home page
        for i in range(2):
            assert demo.listing_titles(i)[0] in get(f"http://127.0.0.1:{base_port + i}/")
    finally:
        code = run.stop()
    assert code == 0, run.output()
    assert "ImportError" not in run.output()
    assert "stopped unexpectedly" not in run.output()


def test_demo__bad_node_count_is_refused_without_creating_nodes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "meshnode.cli", "demo", "--nodes", "0",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 1
    assert "--nodes" in result.stderr
    assert not (tmp_path / "d").exists()


def test_demo__next_saturday_is_in_the_future_and_a_saturday() -> None:
    from datetime import UTC, datetime

    for day in range(1, 15):
        now = datetime(2026, 11, day, 8, 30, tzinfo=UTC)
        when = demo.next_saturday(now, demo.PARIS)
        assert when.weekday() == 5
        assert when > now
        assert (when - now).days < 8
