"""Cheaper set-up for many simulated nodes: what every node would compute alike, computed once.

``fast_setup`` patches these things for the duration of a simulation, and only there:

* **keys**: RSA-2048 generation (about 56 ms a key, two keys a node: the community and its
  first member) runs in one child process while this one sets nodes up, so it overlaps the
  rest of the set-up instead of adding to it. Each key is still fresh and distinct.
* **database**: the migrations run once into a template file; each node's database starts
  as a copy of it made with SQLite's backup API (``sqlite3.Connection.backup``), and the
  node's own ``initialise_database`` then finds nothing left to apply.
* **translations**: the catalogues are compiled once and shared by every app (the compiled
  ``GNUTranslations`` are only read after they are built).
* **SQLite on the event loop** (``InlineConnection``): each node opens two aiosqlite
  connections, and aiosqlite runs each in its own thread (2,000 threads at 1,000 nodes);
  every statement is a hop to that thread and back through the loop's self-pipe, which
  costs more than the statement itself on tmpfs. Here the same statements run on the
  loop's thread, in the same order, on the same files. In a simulation only one thing
  runs at a time anyway (the scheduler awaits each step), so what changes is the cost of
  the hop; ``--sqlite-threads`` keeps aiosqlite's threads.
* **start-up collection**: each app's last ``cleanup_ctx`` (``services.memory``) runs a full
  ``gc.collect()`` and a heap trim, a cost that grows with everything already in the process
  (125 ms a node at 40 nodes, quadratic over a run); here it is done once, when every node
  is up, and the survivors are frozen out of later collections (``gc.freeze``).

Everything else (config, key files, create_app, peering over HTTP) is each node's own.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import aiosqlite
import aiosqlite.core
import nacl.utils

from meshnode.keys import RSA_BITS, Identity
from meshnode.services.memory import trim_heap
from meshnode.store.db import initialise_database
from meshnode.web import i18n

CHUNK = 16  # keys per job sent to the child process


def rsa_pems(count: int) -> list[bytes]:
    """``count`` fresh RSA private keys as PKCS#8 PEM (runs in the child process)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return [rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()) for _ in range(count)]


def read_key_cache(path: Path | None) -> list[bytes]:
    """The RSA keys a previous run left in ``path`` (PEM blocks), or none."""
    if path is None or not path.exists():
        return []
    marker = b"-----END PRIVATE KEY-----\n"
    return [block + marker for block in path.read_bytes().split(marker) if block.strip()]


def write_key_cache(path: Path, pems: list[bytes]) -> None:
    """Keep ``pems`` for the next run (mode 0600: simulation keys, but private keys)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.touch(mode=0o600)
    partial.write_bytes(b"".join(pems))
    partial.replace(path)


class KeyPool:
    """RSA keys made ahead in a child process (or read from a previous run's cache);
    ``identity()`` replaces ``generate_identity``. Keys are never handed out twice in a run."""

    def __init__(self, executor: ProcessPoolExecutor, count: int,
                 cached: list[bytes] | None = None) -> None:
        self.ready: deque[bytes] = deque(cached or ())
        missing = max(0, count - len(self.ready))
        self.jobs: deque[Future[list[bytes]]] = deque(
            executor.submit(rsa_pems, CHUNK) for _ in range(-(-missing // CHUNK)))
        self.executor = executor
        self.used: list[bytes] = []

    def identity(self) -> Identity:
        """A fresh identity (Ed25519 seed made here, RSA key from the child process)."""
        if not self.ready:
            job = self.jobs.popleft() if self.jobs else self.executor.submit(rsa_pems, CHUNK)
            self.ready.extend(job.result())
        self.used.append(self.ready.popleft())
        return Identity(ed25519_seed=nacl.utils.random(32), rsa_private_pem=self.used[-1])


def template_copier(template: Path) -> Callable[[Path, str], list[str]]:
    """An ``initialise_database`` that starts from a copy of the migrated ``template``."""
    initialise_database(template, "normal")

    def initialise(path: Path, synchronous: str = "full") -> list[str]:
        if not path.exists():
            with sqlite3.connect(template) as source, sqlite3.connect(path) as target:
                source.backup(target)
            target.close()
            source.close()
        return initialise_database(path, synchronous)
    return initialise


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection with every call run on the event loop, no thread (see the
    module docstring). The sqlite3 connection is made and used on the loop's thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread started

    def stop(self) -> None:
        """Close the sqlite3 connection (there is no thread to stop)."""
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextmanager
def fast_setup(root: Path, nodes: int, key_cache: Path | None = None, *,
               sqlite_threads: bool = False) -> Iterator[None]:
    """Within this block, nodes are set up with pooled keys, a template database and shared
    catalogues (see the module docstring); everything is restored on leaving it. With
    ``key_cache``, RSA keys are read from and saved to that file (one run's keys are reused
    by the next run; within a run every key is distinct). ``sqlite_threads``: keep
    aiosqlite's thread per connection (default: ``InlineConnection``)."""
    catalogs = functools.cache(i18n.compile_catalog)  # each language compiled once for all
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor, \
            ExitStack() as stack:
        pool = KeyPool(executor, 2 * nodes, read_key_cache(key_cache))
        stack.enter_context(mock.patch("meshnode.keys.generate_identity", pool.identity))
        stack.enter_context(mock.patch("meshnode.services.members.generate_identity",
                                       pool.identity))
        stack.enter_context(mock.patch("meshnode.services.node.initialise_database",
                                       template_copier(root / "template.sqlite3")))
        stack.enter_context(mock.patch("meshnode.web.i18n.compile_catalog", catalogs))
        stack.enter_context(mock.patch("meshnode.app.trim_context", _no_trim))
        if not sqlite_threads:
            stack.enter_context(mock.patch.object(aiosqlite.core, "Connection",
                                                  InlineConnection))
        yield
        for job in pool.jobs:
            job.cancel()
        if key_cache is not None:
            write_key_cache(key_cache, pool.used + list(pool.ready))
    gc.collect()
    trim_heap()
    gc.freeze()


def _no_trim(**_: object) -> Callable[[object], AsyncIterator[None]]:
    """``services.memory.trim_context`` without its per-app collection (done once instead)."""

    async def context(app: object) -> AsyncIterator[None]:
        yield
    return context
