"""What a running node keeps in memory (issue 17): libraries loaded only when needed, the heap
handed back to the system.

The lazy imports are checked on a real ``meshnode run`` process through ``/proc/PID/maps``:
a Python extension module is mapped exactly when it has been imported.
"""

from __future__ import annotations

import abc
import asyncio
import gc
import os
import signal
import subprocess
import sys
import typing
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import yarl
from aiohttp.helpers import parse_mimetype

from meshnode.services import memory
from meshnode.services.memory import (
    abstract_classes,
    forget_abc_caches,
    forget_library_memos,
    library_memos,
)
from tests.memload import (
    REPO,
    MemNode,
    Tally,
    setup_node,
    small_jpeg,
    start_node,
    upload_image,
    wait_healthy,
)
from tests.nodeproc import free_port


@asynccontextmanager
async def running_node(folder: Path, *, discovery: bool
                       ) -> AsyncIterator[tuple[subprocess.Popen[bytes], MemNode]]:
    """A real ``meshnode run`` in ``folder``, answering, stopped with SIGTERM afterwards."""
    node = await setup_node(folder, free_port(), discovery=discovery)
    proc = start_node(node)
    try:
        await wait_healthy(node.url, proc)
        yield proc, node
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=45)


def mapped(pid: int, fragment: str) -> bool:
    """True if a file whose path contains ``fragment`` is mapped into process ``pid``."""
    return fragment in Path(f"/proc/{pid}/maps").read_text()


def mdns_socket_open(pid: int) -> bool:
    """True if process ``pid`` holds a UDP socket on the mDNS port (5353): zeroconf runs.

    (zeroconf is imported from its Python source, federation/zeroconf_source.py: no
    extension module of it is mapped to look for.)"""
    inodes = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = link.readlink().name
        except FileNotFoundError:
            continue  # closed between the listing and the read (the node is running)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":14E9") and fields[9] in inodes:
                return True
    return False


@pytest.mark.slow
async def test_memory__idle_node_without_mdns_maps_no_zeroconf_pillow_or_expat(
    tmp_path: Path,
) -> None:
    # Given a node with LAN discovery off, started and answering
    async with running_node(tmp_path / "n", discovery=False) as (proc, node):
        await asyncio.sleep(0.5)  # the start-up tasks (catch-up, sweeps) have run
        # Then zeroconf, Pillow, the XML parser, cryptography and orjson are not loaded
        assert not mapped(proc.pid, "site-packages/zeroconf/")
        assert not mdns_socket_open(proc.pid)
        assert not mapped(proc.pid, "site-packages/PIL/")
        assert not mapped(proc.pid, "pyexpat")
        assert not mapped(proc.pid, "site-packages/cryptography/")
        assert not mapped(proc.pid, "site-packages/orjson/")  # loaded by the first document
        # When a member uploads a photo
        tally = Tally()
        async with aiohttp.ClientSession() as http:
            status = await upload_image(http, node, small_jpeg(1), 1, tally)
        # Then it is stored, and Pillow is still not loaded: a child decoded it
        assert status == 201
        assert not mapped(proc.pid, "site-packages/PIL/")


@pytest.mark.slow
async def test_memory__node_with_mdns_on_loads_zeroconf(tmp_path: Path) -> None:
    # Given a node with LAN discovery on (the default)
    async with running_node(tmp_path / "n", discovery=True) as (proc, _):
        # Then zeroconf runs: laziness never turns discovery off
        assert mdns_socket_open(proc.pid)


@pytest.mark.slow
async def test_memory__idle_node_maps_no_cxx_frozenlist_or_argon2(tmp_path: Path) -> None:
    # Given a node started by meshnode run and answering
    async with running_node(tmp_path / "n", discovery=False) as (proc, _):
        await asyncio.sleep(0.5)  # the start-up tasks (catch-up, sweeps) have run
        # Then frozenlist's C++ build (and with it libstdc++) is not loaded: aiohttp runs on
        # its pure-Python lists; nor is argon2, before the first password
        assert not mapped(proc.pid, "_frozenlist")
        assert not mapped(proc.pid, "libstdc++")
        assert not mapped(proc.pid, "_argon2_cffi_bindings")


def test_memory__prefer_pure_frozenlist_before_aiohttp_is_imported() -> None:
    # Given a fresh interpreter running what meshnode run runs first: the command line
    code = ("import sys\n"
            "import meshnode.cli\n"
            "from meshnode.services.memory import prefer_pure_frozenlist\n"
            "print('aiohttp' in sys.modules, prefer_pure_frozenlist())\n"
            "import meshnode.serve, frozenlist\n"
            "print(frozenlist.FrozenList.__module__)\n")
    # When the switch is set, then the server is imported
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                         timeout=120).stdout.split()
    # Then the command line had not imported aiohttp, the switch could still act, and
    # aiohttp's frozen lists are frozenlist's Python ones
    assert out == ["False", "True", "frozenlist"]


def test_memory__trim_heap_returns_freed_pages_on_glibc() -> None:
    # Given glibc (this machine; musl or macOS would have no malloc_trim)
    if memory.heap_trimmer() is None:
        pytest.skip("no glibc malloc_trim on this system")
    # When 64 MiB of 64 KiB blocks (below the mmap threshold: heap memory) are freed
    blocks = [bytearray(64 * 1024) for _ in range(1024)]
    for block in blocks[::2]:
        block[0] = 1
    del blocks
    # Then trimming reports glibc did it (and nothing breaks afterwards)
    assert memory.trim_heap() is True
    assert memory.limit_arenas(memory.ARENAS) is True


def test_memory__trim_heap_makes_no_python_objects() -> None:
    # Given glibc and Python's object allocator (PYTHONMALLOC=malloc counts no blocks)
    if memory.heap_trimmer() is None or sys.getallocatedblocks() == 0:
        pytest.skip("no glibc malloc_trim, or no pymalloc to count blocks with")
    memory.trim_heap()
    gc.collect()
    gc.disable()
    try:
        # When the heap is trimmed ten times (an idle node: every give-back, every minute)
        before = sys.getallocatedblocks()
        for _ in range(10):
            memory.trim_heap()
        made = sys.getallocatedblocks() - before
    finally:
        gc.enable()
    # Then no Python objects were made for it (a ctypes.CDLL a call made ~20 blocks of
    # cyclic garbage, a class among them, each time: 207 for ten)
    assert made < 10


async def test_memory__trim_context_trims_then_stops_its_task_on_cleanup() -> None:
    # Given the cleanup_ctx entry with its periodic trim every 10 ms
    context = memory.trim_context(seconds=0.01)(object())
    # When the app starts, runs a moment and stops
    await context.__anext__()
    await asyncio.sleep(0.05)
    running = [t for t in asyncio.all_tasks() if t.get_name() == "heap-trim"]
    with pytest.raises(StopAsyncIteration):
        await context.__anext__()
    # Then the trim task ran alongside and is gone afterwards
    assert len(running) == 1
    assert running[0].done()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "heap-trim"]


async def test_memory__trim_context_without_workers_starts_no_task() -> None:
    # Given tests that step workers themselves (run_workers=False)
    context = memory.trim_context(run_workers=False)(object())
    # When the app starts
    await context.__anext__()
    # Then no periodic task runs
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "heap-trim"]
    with pytest.raises(StopAsyncIteration):
        await context.__anext__()


def test_memory__library_memos_are_found_and_emptied() -> None:
    # Given yarl, aiohttp and urllib.parse memoized a peer's URL and an upload's Content-Type
    yarl.URL("https://peer.example/listings/library-memos")
    parse_mimetype("multipart/form-data; boundary=----library-memos")
    urlsplit("https://peer.example/library-memos")
    names = {f"{memo.__module__}.{memo.__name__}" for memo in library_memos()}
    # Then the memos keyed by those strings are found (a library moving them fails here)
    assert {"yarl._url.encode_url", "yarl._url.pre_encoded_url", "yarl._parse.split_netloc",
            "aiohttp.helpers.parse_mimetype", "urllib.parse.urlsplit"} <= names
    # When they are forgotten
    held = forget_library_memos()
    # Then they held entries and hold none now
    assert held >= 3
    assert [memo.cache_info().currsize for memo in library_memos()] == [0] * len(
        library_memos())


def test_memory__library_memos_of_a_module_not_imported_are_not_imported() -> None:
    # Given a module name nobody imported
    name = "meshnode_no_such_library"
    # When its memos are asked for, then there are none and nothing is imported
    assert library_memos((name,)) == []
    assert forget_library_memos((name,)) == 0
    assert name not in sys.modules


def test_memory__abstract_classes_forget_their_subclass_checks() -> None:
    # Given an abstract class and a subclass of it, asked about two unrelated classes
    class Shape(abc.ABC):
        @abc.abstractmethod
        def area(self) -> float:
            """Its area."""

    class Round(Shape):
        def area(self) -> float:
            """A unit circle's."""
            return 3.14

    class Payload:
        pass

    assert not isinstance(Payload(), Shape)  # Shape asks Round too: both keep "no"
    assert isinstance(Round(), Shape)
    assert Payload in abc_negative(Round)
    assert Payload in abc_negative(Shape)
    # And a protocol (its metaclass derives from ABCMeta) asked about a class
    assert not isinstance(Payload(), typing.SupportsIndex)
    # When the abstract classes' caches are forgotten
    assert {Shape, Round, typing.SupportsIndex} <= set(abstract_classes())
    assert forget_abc_caches() >= 3
    # Then none keeps a reference to those classes
    for cls in (Shape, Round, typing.SupportsIndex, Mapping):
        _, cache, negative, _ = abc._get_dump(cls)  # type: ignore[attr-defined]
        assert not cache
        assert not negative
    # And their answers are the same when asked again
    assert not isinstance(Payload(), Shape)
    assert isinstance(Round(), Shape)
    assert isinstance({}, Mapping)
    assert not isinstance([], Mapping)


def abc_negative(cls: type) -> set[object]:
    """The classes ``cls`` remembers not being its subclasses."""
    return {ref() for ref in abc._get_dump(cls)[2]}  # type: ignore[attr-defined]
