"""Two ``meshnode run`` processes in separate network namespaces joined by a veth pair.

As on a real LAN: each node has its own interface and address (10.x.y.1 / 10.x.y.2), no
shared loopback, and mDNS crosses the link. Needs root and ``ip netns`` (CI runs as root);
skipped elsewhere. Names carry the pid so parallel runs never collide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshnode.config import Config
from meshnode.services.node import init_node
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.timeout(40), pytest.mark.slow]
PORT = 8080


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def lan() -> Iterator[tuple[tuple[str, str], tuple[str, str]]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):  # CI runs as root: the LAN test must run there
            pytest.fail("network namespaces need root and iproute2")
        pytest.skip("network namespaces need root and iproute2")
    tag = f"{os.getpid() % 100000}"
    subnet = f"10.{os.getpid() % 200 + 20}.{os.getpid() % 250}"
    spaces = (f"mnA{tag}", f"mnB{tag}")
    links = (f"mnva{tag}", f"mnvb{tag}")
    if _ip("netns", "add", spaces[0], check=False).returncode != 0:
        pytest.skip("cannot create network namespaces here")
    try:
        _ip("netns", "add", spaces[1])
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for index, (space, link) in enumerate(zip(spaces, links, strict=True)):
            _ip("link", "set", link, "netns", space)
            _ip("-n", space, "addr", "add", f"{subnet}.{index + 1}/24", "dev", link)
            _ip("-n", space, "link", "set", link, "up", "multicast", "on")
            _ip("-n", space, "link", "set", "lo", "up")
        yield (spaces[0], f"{subnet}.1"), (spaces[1], f"{subnet}.2")
    finally:
        for space in spaces:
            _ip("netns", "del", space, check=False)


def _cli(*args: str, stdin: str | None = None, space: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", space] if space else []
    result = subprocess.run([*prefix, sys.executable, "-m", "meshnode.cli", *args],
                            input=stdin, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def _node(base: Path, name: str, address: str) -> tuple[Path, str]:
    data_dir = base / name
    init_node(Config(data_dir=data_dir, name=f"Voisins {name}", handle=name,
                     public_url=f"http://{address}:{PORT}", host=address, port=PORT,
                     discovery_interfaces=(address,)))
    _cli("member", "add", "--data-dir", str(data_dir), "--username", "admin", "--admin",
         "--password-stdin", stdin=PASSWORD + "\n")
    return data_dir, _cli("token", "create", "--data-dir", str(data_dir), "--username", "admin")


def _neighbours(space: str, address: str, token: str) -> list[dict[str, object]]:
    script = (
        "import sys, urllib.request\n"
        f"req = urllib.request.Request('http://{address}:{PORT}/api/v1/neighbours',"
        f" headers={{'Authorization': 'Bearer {token}'}})\n"
        "try:\n"
        "    print(urllib.request.urlopen(req, timeout=2).read().decode())\n"
        "except OSError:\n"
        "    print('{\"neighbours\": []}')\n"
    )
    out = subprocess.run(["ip", "netns", "exec", space, sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return list(json.loads(out)["neighbours"])


def test_netns__two_nodes_on_a_veth_lan_verify_each_other(
    tmp_path: Path, lan: tuple[tuple[str, str], tuple[str, str]]
) -> None:
    (space_a, addr_a), (space_b, addr_b) = lan
    dir_a, token_a = _node(tmp_path, "alpha", addr_a)
    dir_b, token_b = _node(tmp_path, "beta", addr_b)
    procs = [
        subprocess.Popen(["ip", "netns", "exec", space, sys.executable, "-m", "meshnode.cli",
                          "run", "--data-dir", str(data_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for space, data_dir in ((space_a, dir_a), (space_b, dir_b))
    ]
    try:
        deadline = time.monotonic() + 25
        seen: dict[str, list[dict[str, object]]] = {}
        while time.monotonic() < deadline:
            seen = {"a": _neighbours(space_a, addr_a, token_a),
                    "b": _neighbours(space_b, addr_b, token_b)}
            if all(rows and rows[0]["status"] == "peered" for rows in seen.values()):
                break
            time.sleep(0.3)
        assert [(r["address"], r["status"]) for r in seen["a"]] == [
            (addr_b, "peered")]
        assert [(r["address"], r["status"]) for r in seen["b"]] == [
            (addr_a, "peered")]
        assert seen["a"][0]["actor"] == f"http://{addr_b}:{PORT}/groups/beta"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            _, stderr = proc.communicate(timeout=20)
            assert proc.returncode == 0, stderr
