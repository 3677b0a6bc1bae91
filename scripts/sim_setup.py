"""Cheaper set-up for many simulated nodes: what every node would compute alike, computed once.

``fast_setup`` patches three things for the duration of a simulation, and only there:

* **keys**: RSA-2048 generation (about 56 ms a key, two keys a node: the community and its
  first member) runs in one child process while this one sets nodes up, so it overlaps the
  rest of the set-up instead of adding to it. Each key is still fresh and distinct.
* **database**: the migrations run once into a template file; each node's database starts
  as a copy of it made with SQLite's backup API (``sqlite3.Connection.backup``), and the
  node's own ``initialise_database`` then finds nothing left to apply.
* **translations**: the catalogues are compiled once and shared by every app (the compiled
  ``GNUTranslations`` are only read after they are built).

Everything else (config, key files, create_app, peering over HTTP) is each node's own.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import nacl.utils

from meshnode.keys import RSA_BITS, Identity
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


class KeyPool:
    """RSA keys made ahead in a child process; ``identity()`` replaces ``generate_identity``."""

    def __init__(self, executor: ProcessPoolExecutor, count: int) -> None:
        self.jobs: deque[Future[list[bytes]]] = deque(
            executor.submit(rsa_pems, CHUNK) for _ in range(-(-count // CHUNK)))
        self.ready: deque[bytes] = deque()
        self.executor = executor

    def identity(self) -> Identity:
        """A fresh identity (Ed25519 seed made here, RSA key from the child process)."""
        if not self.ready:
            job = self.jobs.popleft() if self.jobs else self.executor.submit(rsa_pems, CHUNK)
            self.ready.extend(job.result())
        return Identity(ed25519_seed=nacl.utils.random(32), rsa_private_pem=self.ready.popleft())


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


@contextmanager
def fast_setup(root: Path, nodes: int) -> Iterator[None]:
    """Within this block, nodes are set up with pooled keys, a template database and shared
    catalogues (see the module docstring); everything is restored on leaving it."""
    catalogs = i18n.load_catalogs()
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor, \
            ExitStack() as stack:
        pool = KeyPool(executor, 2 * nodes)
        stack.enter_context(mock.patch("meshnode.keys.generate_identity", pool.identity))
        stack.enter_context(mock.patch("meshnode.services.members.generate_identity",
                                       pool.identity))
        stack.enter_context(mock.patch("meshnode.services.node.initialise_database",
                                       template_copier(root / "template.sqlite3")))
        stack.enter_context(mock.patch("meshnode.web.i18n.load_catalogs", lambda: catalogs))
        yield
        for job in pool.jobs:
            job.cancel()
