"""Giving memory back: a Raspberry Pi shares its RAM with everything else it runs.

CPython frees its small objects in 1 MiB arenas it unmaps once empty, but everything larger
(rows SQLite hands back, rendered pages, request bodies, image buffers) goes through glibc's
``malloc``, which keeps freed memory for reuse, in one arena per thread that allocated it.
After a burst of work (a page storm, a catch-up, six uploads) that memory stays resident.
Three process-wide settings bring it back (``scripts/bench_memory.py`` prints the figures):

* ``limit_arenas``: at most two glibc arenas, so the store's and the executor's threads do
  not each keep a fragmented heap of their own;
* ``trim_heap``: ``malloc_trim(0)`` returns the free pages of every arena, including those in
  the middle of a heap (glibc ≥ 2.8); it takes microseconds on a node-sized heap;
* ``prefer_pure_frozenlist``: aiohttp's frozen lists (its signals and middleware lists,
  read a few times per request) in Python rather than frozenlist's C++ build, which loads
  libstdc++ (1.1 MB resident);
* ``defer_ca_certificates``: the system's CA certificates looked up by hash in its certificate
  directory when a TLS connection needs them, rather than the whole bundle parsed into every
  TLS context at start (aiohttp makes its default one when imported: 1.9 MB resident);
* ``trim_context``: once the node has started (the start-up's garbage collected first), and
  then every ``TRIM_SECONDS`` while it runs.

Where there is no glibc (musl, macOS) each of these does nothing and says so.
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import functools
import gc
import logging
import os
import re
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from meshnode.services.background import BackgroundTask

log = logging.getLogger(__name__)

# mallopt parameter numbers (glibc malloc.h).
M_ARENA_MAX = -8
ARENAS = 2
TRIM_SECONDS = 60.0

Trimmer = Callable[[int], object]


@functools.cache
def heap_trimmer() -> Trimmer | None:
    """glibc's ``malloc_trim``, which returns freed arena pages to the system, if present.

    Looked up once: each ``ctypes.CDLL`` makes a class of its own (its ``_FuncPtr``) with
    its dictionaries and descriptors, ~20 of Python's small blocks of cyclic garbage a
    trim, made after the idle sweep into whatever partly used pools a load left (issue 17:
    the soak's arenas; ``scripts/memory_probe.py`` found them there)."""
    try:
        trim: Trimmer = ctypes.CDLL(None).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): the allocator decides
        return None


def trim_heap() -> bool:
    """Return glibc's free pages to the system now; False where there is no glibc."""
    trim = heap_trimmer()
    if trim is None:
        return False
    trim(0)
    return True


def limit_arenas(count: int = ARENAS) -> bool:
    """Have glibc keep at most ``count`` malloc arenas (process-wide, before threads start).

    False where there is no glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))


FROZENLIST_SWITCH = "FROZENLIST_NO_EXTENSIONS"  # frozenlist's documented switch


def prefer_pure_frozenlist() -> bool:
    """Have frozenlist use its pure-Python ``FrozenList`` (its C++ build loads libstdc++:
    1.1 MB of resident memory for lists aiohttp freezes once at start-up). Process-wide, and
    only effective before frozenlist is first imported (by aiohttp): whether it will be.
    https://frozenlist.aio-libs.org/en/latest/#implementation"""
    os.environ.setdefault(FROZENLIST_SWITCH, "1")
    return "frozenlist" not in sys.modules


CA_FILE_SWITCH = "SSL_CERT_FILE"  # OpenSSL's documented override of its default CA bundle
HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")  # c_rehash / update-ca-certificates links
PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def hashed_certificates(directory: str | None) -> int:
    """How many subject-hash links (``1a2b3c4d.0``) ``directory`` holds; 0 if none or absent."""
    if directory is None:
        return 0
    try:
        return sum(1 for entry in os.scandir(directory) if HASHED_NAME.fullmatch(entry.name))
    except OSError:
        return 0


def bundle_certificates(path: str | None) -> int:
    """How many PEM certificates the CA bundle at ``path`` holds; 0 if none or unreadable."""
    if path is None:
        return 0
    try:
        return Path(path).read_bytes().count(PEM_BEGIN)
    except OSError:
        return 0


def defer_ca_certificates(paths: ssl.DefaultVerifyPaths | None = None) -> bool:
    """Have OpenSSL find the system's CA certificates in its hashed certificate directory,
    one by one when a peer's chain needs them, instead of parsing the whole bundle into every
    TLS context (issue 17: aiohttp's default context, made at its import, held 144
    certificates, 1.9 MB, on a node that may never call an HTTPS peer).

    Only when the bundle is the system's own (no ``SSL_CERT_FILE``, or one naming OpenSSL's
    default bundle: an operator's own bundle is kept) and the directory holds at least as
    many hashed certificates as the bundle (both list the same CAs, as
    ``update-ca-certificates`` keeps them on Debian and Raspberry Pi OS); the bundle is then
    replaced by an empty file for this process. Verification is unchanged: OpenSSL's default
    paths are the bundle *and* the directory, "looked up when required"
    (https://docs.openssl.org/3.0/man3/SSL_CTX_load_verify_locations/). Process-wide and
    only effective for TLS contexts made afterwards (before aiohttp is imported): whether
    it was done. ``paths``: OpenSSL's (``ssl.get_default_verify_paths()``) unless given."""
    paths = paths or ssl.get_default_verify_paths()
    chosen = os.environ.get(CA_FILE_SWITCH)
    if chosen is not None and os.path.realpath(chosen) != os.path.realpath(paths.openssl_cafile):
        return False
    bundle = bundle_certificates(paths.cafile)
    if hashed_certificates(paths.capath) < max(bundle, 1):
        return False
    os.environ[CA_FILE_SWITCH] = os.devnull
    return True


# Libraries' memos keyed by what peers and visitors send (issue 17: the soak), each a
# ``functools.lru_cache`` in the module's namespace: yarl's parsed URLs (``encode_url``,
# ``pre_encoded_url``, ``from_parts``, ``split_netloc``, …: 128 whole URLs each, with their
# cached parts; ``yarl.cache_clear`` empties only its IDNA and host memos), aiohttp's
# parsed Content-Types (``parse_mimetype``: one entry per multipart boundary) and
# ``urllib.parse``'s ``urlsplit``. Each refills at a few microseconds an entry.
LIBRARY_MEMO_MODULES = ("yarl._url", "yarl._parse", "aiohttp.helpers", "urllib.parse")


def library_memos(modules: tuple[str, ...] = LIBRARY_MEMO_MODULES
                  ) -> list[functools._lru_cache_wrapper[object]]:
    """The memos (``functools.lru_cache``) at the top of each of ``modules`` already
    imported (none is imported here), each once."""
    found: dict[int, functools._lru_cache_wrapper[object]] = {}
    for name in modules:
        module = sys.modules.get(name)
        for value in vars(module).values() if module is not None else ():
            if isinstance(value, functools._lru_cache_wrapper):
                found[id(value)] = value
    return list(found.values())


def forget_library_memos(modules: tuple[str, ...] = LIBRARY_MEMO_MODULES) -> int:
    """Empty the libraries' memos (``LIBRARY_MEMO_MODULES``); how many entries they held."""
    held = 0
    for memo in library_memos(modules):
        held += memo.cache_info().currsize
        memo.cache_clear()
    return held


def abstract_classes() -> list[abc.ABCMeta]:
    """Every abstract base class (``abc.ABCMeta`` or a subclass of it as metaclass) reachable
    from ``object`` through ``__subclasses__``, each once."""
    found: list[abc.ABCMeta] = []
    seen = {id(object)}
    stack: list[type] = [object]
    while stack:
        cls = stack.pop()
        if isinstance(cls, abc.ABCMeta):
            found.append(cls)
        subclasses: list[type] = type.__subclasses__(cls)
        for sub in subclasses:
            if id(sub) not in seen:
                seen.add(id(sub))
                stack.append(sub)
    return found


def forget_abc_caches() -> int:
    """Empty every abstract base class's subclass-check caches; how many classes had any.

    ``isinstance(x, Mapping)`` with ``x`` a list, a string or a tuple (how a peer's JSON is
    checked) asks each of ``Mapping``'s ~80 subclasses in turn (aiohttp's requests,
    responses, HTTP exceptions, …: ``abc``'s recursive ``__subclasscheck__``), and each
    keeps the answer for ever: a weak reference and its callback in the class's negative
    cache. Any ``ABC.register`` (a module imported on first use) invalidates those caches,
    and the next checks build them again, so a load after such an import leaves ~260 small
    long-lived objects scattered among its garbage, each keeping a 1 MiB arena of Python's
    allocator from being given back (issue 17: the soak; ``scripts/memory_probe.py``).
    Emptied at the idle sweep, they are built again by the next load, whose arenas are in
    use anyway, and go at the sweep after it; a check refills an entry in microseconds."""
    emptied = 0
    for cls in abstract_classes():
        _, cache, negative, _ = abc._get_dump(cls)  # type: ignore[attr-defined]
        if cache or negative:
            cls._abc_caches_clear()  # type: ignore[attr-defined]
            emptied += 1
    return emptied


async def trim_forever(seconds: float = TRIM_SECONDS) -> None:
    """Trim the heap every ``seconds`` (cancel to stop)."""
    while True:
        await asyncio.sleep(seconds)
        trim_heap()


def trim_context(*, run_workers: bool = True, seconds: float = TRIM_SECONDS
                 ) -> Callable[[object], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry, appended last: once every resource is open, collect the
    start-up's garbage and trim; then trim every ``seconds`` (unless ``run_workers`` is
    False: tests call ``trim_heap`` themselves)."""

    async def context(app: object) -> AsyncIterator[None]:
        gc.collect()
        if not trim_heap():
            log.info("no glibc malloc_trim here: freed memory stays with the allocator")
        async with BackgroundTask(lambda: trim_forever(seconds), name="heap-trim",
                                  run=run_workers):
            yield

    return context
