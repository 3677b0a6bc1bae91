"""The hub of ``scripts/bench_memory.py``: ``meshnode run`` plus a probe (issue 17: memory).

Run as ``python -m scripts.memory_probe DATA_DIR trace|- [access]``
(``bench_memory.probe_argv``; ``access``: with the access log). On
SIGUSR1 the probe writes, beside the node's data as ``probe-N.*``: the native heap figures
(SQLite's heap and its connections' caches, glibc's, Python's blocks, threads), Python
objects by type, pymalloc's and glibc's arena statistics and, under ``trace``
(tracemalloc from the first instruction, ``TRACE_FRAMES`` deep), a snapshot and the
**arenas' residents**: for each pymalloc arena in use, its live objects grouped by the
place that allocated them (``pinners``), so that ``bench_memory.py`` can name who keeps
each arena the soak added (CPython frees an arena only when every pool in it is empty).
Only small standard modules are added to the node's process, so its RSS is the node's. Each
idle sweep that emptied the node's caches is noted in ``idle-sweeps.txt`` beside its data
(``SWEEP_MARKS``): the bench reads the soak's "before" and "after" once one has run.

With ``MEMORY_PROBE_KEEP=DIR`` in its environment (diagnosis: each dump then costs the hub
seconds and inflates its RSS while it runs) the probe also writes ``DIR/probe-N.survivors``
(and a copy of its ``.types`` and ``.pymalloc``), without tracemalloc: the collector's weak
references, builtin and bound methods, functions and cells counted by what they refer to or
belong to, with referrer chains; each ABC's subclass-check caches by class; each arena's
residents by type, and for each sparse arena (fewer than ``SPARSE`` live objects: one kept
in use by a few survivors) every resident described with its holders. Diffing two dumps
named the soak's survivors in session 12 (``docs/benchmarks.md``)::

    MEMORY_PROBE_KEEP=/tmp/keep PYTHONPATH=. python scripts/bench_memory.py \
        --only network --minutes 3
"""

from __future__ import annotations

import collections
import ctypes
import gc
import heapq
import importlib.abc
import importlib.util
import json
import os
import signal
import sqlite3
import sys
import time
import tracemalloc
import weakref
from pathlib import Path
from types import FrameType
from typing import Any

TRACE_FRAMES = 25
# Beside the node's data: a line at each of the node's idle sweeps (``web/idle.sweep``, every
# ``SWEEP_SECONDS``): the wall-clock time, the seconds since the node's last request and
# whether this sweep emptied the caches, so that the bench reads "after" once the hub has
# really been idle, not a fixed time after its own last request (peers may be catching up).
SWEEP_MARKS = "idle-sweeps.txt"
# pymalloc's geometry on 64-bit CPython 3.10+ (Objects/obmalloc.c): 16 KiB pools, each
# starting with a ``pool_header`` (ref.count, freeblock, nextpool, prevpool, arenaindex,
# szidx, …), blocks of at most 512 bytes in 16-byte size classes.
POOL_SIZE = 16 * 1024
SMALL_REQUEST = 512
POOL_COUNT, POOL_ARENA_INDEX, POOL_SIZE_INDEX = 0, 32, 36
SITE_FRAMES = 3


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc >= 2.33)."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


# sqlite3_db_status counters (https://sqlite.org/c3ref/c_dbstatus_options.html), summed over
# the process's open sqlite3 connections (noted as they are made: the node freezes its
# start-up objects out of gc.get_objects' reach). CPython's pysqlite_Connection holds its
# ``sqlite3 *`` right after the object header (NULL once closed).
DB_STATUS = {"SQLite caches": 1, "SQLite schemas": 2, "SQLite statements": 3}
CONNECTIONS: list[sqlite3.Connection] = []
_CONNECT = sqlite3.connect


def noted_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect``, keeping the connection for ``connection_heap``."""
    conn: sqlite3.Connection = _CONNECT(*args, **kwargs)
    CONNECTIONS.append(conn)
    return conn


def connection_heap(sqlite: ctypes.CDLL) -> dict[str, float]:
    """SQLite's page caches, schemas and statements (MB) summed over the open connections."""
    sqlite.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_int),
                                         ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    totals = dict.fromkeys(DB_STATUS, 0.0)
    totals["connections"] = 0
    for number, conn in enumerate(CONNECTIONS, 1):
        db = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
        for name, op in DB_STATUS.items():
            current, high = ctypes.c_int(), ctypes.c_int()
            if db and sqlite.sqlite3_db_status(db, op, current, high, 0) == 0:
                totals[name] += current.value / 2**20
                if name == "SQLite caches":  # which connection holds them (opened in order)
                    totals[f"cache of connection {number}"] = current.value / 2**20
        totals["connections"] += bool(db)
    return totals


def native_heap(*, trace: bool) -> dict[str, float]:
    """SQLite's heap, glibc's in use and free, Python's blocks, threads (and traced MB)."""
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    heap = {"SQLite": sqlite.sqlite3_memory_used() / 2**20,
            "malloc in use": (info.uordblks + info.hblkhd) / 2**20,
            "malloc free": info.fordblks / 2**20,
            "Python kblocks": sys.getallocatedblocks() / 1000}
    heap.update(connection_heap(sqlite))
    with open("/proc/self/status") as status:
        heap["threads"] = next(int(line.split()[1]) for line in status
                               if line.startswith("Threads:"))
    if trace:
        heap["traced"] = tracemalloc.get_traced_memory()[0] / 2**20
    return heap


def allocator_stats(base: str) -> None:
    """pymalloc's arenas (``sys._debugmallocstats``, written to fd 2) and glibc's arenas
    (``malloc_info``'s XML), each to a file beside the probe's figures."""
    saved = os.dup(2)
    with open(base + ".pymalloc", "w") as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    handle = libc.fopen((base + ".malloc.xml").encode(), b"w")
    libc.malloc_info(0, handle)
    libc.fclose(handle)


def anonymous_ranges() -> list[tuple[int, int]]:
    """The process's anonymous read-write mappings (where pymalloc's arenas are)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) == 5 and fields[1].startswith("rw"):
                start, end = (int(part, 16) for part in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def live_objects() -> list[object]:
    """Every object reachable from the collector's lists and the modules, each once: those
    ``gc.freeze`` took out of ``gc.get_objects``' reach (the node freezes its start-up
    objects) and those the collector does not track (strings, numbers, atomic tuples, …)."""
    found: dict[int, object] = {}
    layer: list[object] = [*gc.get_objects(), sys.modules]
    own = {id(found), id(layer)}  # this walk's own containers are not the node's
    while layer:
        fresh = [obj for obj in layer if id(obj) not in found and id(obj) not in own]
        own.add(id(fresh))
        found.update((id(obj), obj) for obj in fresh)
        layer = gc.get_referents(*fresh)
        own.add(id(layer))
    everything = list(found.values())
    found.clear()  # the walk found its own closure's cells, which hold ``found``: a cycle
    return everything


def block_size(obj: object) -> int:
    """Bytes of ``obj``'s own allocation (its variable parts kept apart are not counted)."""
    kind = type(obj)
    if kind.__itemsize__:
        return sys.getsizeof(obj)
    return kind.__basicsize__ + (16 if gc.is_tracked(obj) else 0)


def arena_of(obj: object, ranges: list[tuple[int, int]], pools: dict[int, int | None]
             ) -> int | None:
    """The index of the pymalloc arena holding ``obj``, read from its pool's header (once
    per pool, remembered in ``pools``); None for an object outside pymalloc (static, or
    bigger than ``SMALL_REQUEST``)."""
    if block_size(obj) > SMALL_REQUEST:
        return None
    pool = id(obj) & ~(POOL_SIZE - 1)
    if pool not in pools:
        pools[pool] = pool_arena(pool, ranges)
    return pools[pool]


def pool_arena(pool: int, ranges: list[tuple[int, int]]) -> int | None:
    """The arena index in the header of the pymalloc pool at ``pool`` (None if it is not in
    an anonymous mapping or its header does not look like a used pool's)."""
    if not any(start <= pool < end for start, end in ranges):
        return None
    count = ctypes.c_uint.from_address(pool + POOL_COUNT).value
    size_index = ctypes.c_uint.from_address(pool + POOL_SIZE_INDEX).value
    if count == 0 or size_index >= SMALL_REQUEST // 16:
        return None
    return ctypes.c_uint.from_address(pool + POOL_ARENA_INDEX).value


def site_of(obj: object, names: dict[tracemalloc.Traceback, str]) -> str:
    """Where ``obj`` was allocated (the innermost ``SITE_FRAMES`` frames, each traceback
    named once in ``names``); ``"?"`` if it was made before tracing, ``"probe"`` by this
    probe."""
    traceback = tracemalloc.get_object_traceback(obj)
    if traceback is None:
        return "?"
    if traceback not in names:
        frames = list(traceback)[-SITE_FRAMES:][::-1]  # innermost first
        names[traceback] = "probe" if frames[0].filename == __file__ else " < ".join(
            f"{os.path.basename(frame.filename)}:{frame.lineno}" for frame in frames)
    return names[traceback]


def arena_residents() -> dict[str, dict[str, int]]:
    """For each pymalloc arena holding a live object: its objects counted by allocation
    site (``"?"``: made before tracing) and by type (``"type:NAME"``)."""
    ranges = anonymous_ranges()
    residents: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter)
    pools: dict[int, int | None] = {}
    names: dict[tracemalloc.Traceback, str] = {}
    for obj in live_objects():
        arena = arena_of(obj, ranges, pools)
        site = "probe" if arena is None else site_of(obj, names)
        if site == "probe":
            continue
        where = residents[str(arena)]
        where[site] += 1
        where["type:" + type(obj).__qualname__] += 1
    return {arena: dict(counts) for arena, counts in residents.items()}


LARGE_COUNT = 12  # the largest objects listed at each stage


def largest_objects() -> list[tuple[int, str, str]]:
    """The ``LARGE_COUNT`` largest live objects by ``sys.getsizeof`` (frozen and untracked
    ones included), each with its size in bytes, its description and a few holders': a dict
    or list keeps the table it once grew to while its entries go one by one (only ``clear``
    or a resize on insertion gives it back), which glibc then serves from its own mapping."""
    everything = live_objects()
    sized = heapq.nlargest(LARGE_COUNT, ((sys.getsizeof(obj), id(obj), obj)
                                         for obj in everything))
    holders = referrers_of({id(obj): obj for _, _, obj in sized}, everything)
    found = [(size, describe(obj), " | ".join(describe(ref) for ref in holders[key][:3]
                                              if ref is not everything))
             for size, key, obj in sized]
    return found


SURVIVOR_KINDS = ("weakref", "builtin_function_or_method", "method", "function", "cell")
CHAIN_DEPTH = 4
CHAIN_SAMPLES = 3
SPARSE = 400  # an arena with fewer live objects is kept by them


def describe(obj: object) -> str:
    """A short name for ``obj``: its type, and for a weak reference what it refers to and
    its callback, for a builtin or bound method its owner's type and its name."""
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(obj, weakref.ReferenceType):
        target = obj()
        callback = obj.__callback__
        return (f"{name} -> {describe(target) if isinstance(target, type) else type(target)}"
                f" callback={getattr(callback, '__qualname__', type(callback).__name__)}")
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    if kind is tuple:
        return f"tuple({', '.join(type(item).__name__ for item in obj[:5])})"  # type: ignore
    if kind.__name__ in ("TimerHandle", "Handle"):
        return f"{name} {getattr(obj, '_callback', None)!r:.80}"
    if kind.__name__ in ("builtin_function_or_method", "method"):
        owner = getattr(obj, "__self__", None)
        return f"{name} {type(owner).__module__}.{type(owner).__qualname__}" \
               f".{getattr(obj, '__name__', '?')}"
    if kind is dict:
        keys = [str(key)[:30] for key in list(obj)[:4]]  # type: ignore[call-overload]
        return f"{name}[{len(obj)}] keys={keys}"  # type: ignore[arg-type]
    if kind in (list, set, collections.deque):
        return f"{name}[{len(obj)}]"  # type: ignore[arg-type]
    if kind.__name__ == "function":
        return f"{name} {getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
    if kind.__name__ == "cell":
        try:
            return f"{name} of {describe(obj.cell_contents)}"  # type: ignore[attr-defined]
        except ValueError:
            return f"{name} (empty)"
    return name


def referrers_of(targets: dict[int, object], everything: list[object]) -> dict[int, list[object]]:
    """For each target (by id), the live objects that refer to it (frozen ones included,
    which ``gc.get_referrers`` does not see)."""
    found: dict[int, list[object]] = collections.defaultdict(list)
    for obj in everything:
        for ref in gc.get_referents(obj):
            if id(ref) in targets and ref is not obj:
                found[id(ref)].append(obj)
    return found


def survivors(base: str) -> None:
    """The collector's objects of ``SURVIVOR_KINDS`` by description, with referrer chains
    (``CHAIN_DEPTH`` levels) for ``CHAIN_SAMPLES`` of each description, and every live
    object's arena (counts of types per arena), to ``base + .survivors``."""
    ranges = anonymous_ranges()
    pools: dict[int, int | None] = {}
    everything = live_objects()
    mine = {id(everything)}
    counts: collections.Counter[str] = collections.Counter()
    samples: dict[str, list[object]] = collections.defaultdict(list)
    for obj in gc.get_objects():
        if type(obj).__name__ in SURVIVOR_KINDS or isinstance(obj, weakref.ReferenceType):
            key = describe(obj)
            counts[key] += 1
            if len(samples[key]) < CHAIN_SAMPLES:
                samples[key].append(obj)
    chains: dict[str, list[list[str]]] = {}
    layer = {id(o): o for objs in samples.values() for o in objs}
    mine.update(id(objs) for objs in samples.values())
    mine.update((id(samples), id(layer)))
    paths: dict[int, list[str]] = {i: [] for i in layer}
    parent: dict[int, int] = {}
    for _ in range(CHAIN_DEPTH):
        found = referrers_of(layer, everything)
        nxt: dict[int, object] = {}
        for target, refs in found.items():
            refs = [r for r in refs if id(r) not in mine]
            root = parent.get(target, target)
            paths.setdefault(root, []).append(
                " | ".join(sorted({describe(r) for r in refs})[:4]) + f" ({len(refs)})")
            for ref in refs[:1]:
                parent[id(ref)] = root
                nxt[id(ref)] = ref
        layer = nxt
    for key, objs in samples.items():
        chains[key] = [paths.get(id(o), []) for o in objs]
    arenas: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    residents: dict[str, list[object]] = collections.defaultdict(list)
    for obj in everything:
        arena = arena_of(obj, ranges, pools)
        if arena is not None:
            arenas[str(arena)][type(obj).__qualname__] += 1
            residents[str(arena)].append(obj)
    sparse = {arena: objs for arena, objs in residents.items() if len(objs) < SPARSE}
    mine.update(id(objs) for objs in sparse.values())
    mine.update(id(objs) for objs in residents.values())
    mine.update((id(sparse), id(residents)))
    targets = {id(o): o for objs in sparse.values() for o in objs}
    holders = referrers_of(targets, everything)
    lines = {arena: collections.Counter(
        describe(o) + " <- " + " | ".join(sorted({describe(r) for r in holders.get(id(o), [])
                                                   if id(r) not in mine})[:3])
        for o in objs) for arena, objs in sparse.items()}
    Path(base + ".survivors").write_text(json.dumps(
        {"counts": counts, "chains": chains, "abc": abc_caches(everything),
         "sparse": {a: c.most_common(40) for a, c in lines.items()},
         "arenas": {a: dict(c.most_common(15)) for a, c in arenas.items()}}, indent=1))


def abc_caches(everything: list[object]) -> dict[str, dict[str, list[str]]]:
    """Each ABC's positive and negative caches (the classes in them, by name)."""
    import abc
    found = {}
    for obj in everything:
        if isinstance(obj, abc.ABCMeta):
            _, cache, negative, _ = abc._get_dump(obj)  # type: ignore[attr-defined]
            found[describe(obj)] = {
                "cache": sorted(describe(ref()) for ref in cache),
                "negative": sorted(describe(ref()) for ref in negative)}
    return found


class Probe:
    """Writes ``probe-N.*`` under ``data_dir`` at each SIGUSR1."""

    def __init__(self, data_dir: str, *, trace: bool) -> None:
        self.data_dir = Path(data_dir)
        self.trace = trace
        self.dumps = 0

    def dump(self, signum: int, frame: FrameType | None) -> None:
        """The figures now; ``probe-N.json`` last (the bench waits for it)."""
        self.dumps += 1
        base = str(self.data_dir / f"probe-{self.dumps}")
        if self.trace:
            tracemalloc.take_snapshot().dump(base + ".snap")
        if Path(base + ".arenas-wanted").exists():  # a stage of the soak, not a minute
            Path(base + ".large").write_text(json.dumps(largest_objects()))
            if self.trace:
                Path(base + ".arenas").write_text(json.dumps(arena_residents()))
        kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}"
                                    for o in gc.get_objects())
        Path(base + ".types").write_text(json.dumps(kinds))
        allocator_stats(base)
        if keep := os.environ.get("MEMORY_PROBE_KEEP"):  # diagnosis: survivors' names
            survivors(os.path.join(keep, f"probe-{self.dumps}"))
            for suffix in (".types", ".pymalloc"):
                Path(keep, f"probe-{self.dumps}{suffix}").write_text(
                    Path(base + suffix).read_text())
        Path(base + ".part").write_text(json.dumps(native_heap(trace=self.trace)))
        Path(base + ".part").rename(base + ".json")


class SweepNoter(importlib.abc.MetaPathFinder):
    """Wrap the node's idle sweep, once ``meshnode.web.idle`` is imported by the node itself
    (importing it here would import aiohttp before ``meshnode run`` prepares it: libstdc++
    and the whole CA bundle, 3 MB), so that each call appends ``wall-clock idle-seconds
    swept`` to ``marks`` (``web/idle.py`` looks ``sweep`` up at each call)."""

    MODULE = "meshnode.web.idle"

    def __init__(self, marks: Path) -> None:
        self.marks = marks

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        """The module's own spec, its loader made to wrap ``sweep`` once it has run."""
        if name != self.MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run_module = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                run_module(module)
                self.wrap(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def wrap(self, idle: Any) -> None:
        """Replace ``idle.sweep`` by one that notes each call."""
        sweep, marks = idle.sweep, self.marks
        cache_key = idle.PAGE_CACHE

        def noted(app: Any, now: float, **options: Any) -> bool:
            swept = sweep(app, now, **options)
            with marks.open("a") as lines:
                lines.write(f"{time.time():.3f} {now - app[cache_key].last_request:.1f}"
                            f" {int(swept)}\n")
            return bool(swept)

        idle.sweep = noted


def main(argv: list[str]) -> int:
    """``meshnode run --data-dir DATA_DIR`` with the probe on SIGUSR1."""
    data_dir, trace = argv[0], argv[1] == "trace"
    sqlite3.connect = noted_connect  # type: ignore[assignment]
    sys.meta_path.insert(0, SweepNoter(Path(data_dir) / SWEEP_MARKS))
    from meshnode.cli import main as run_node  # after the patch: the node's connections
    probe = Probe(data_dir, trace=trace)
    signal.signal(signal.SIGUSR1, probe.dump)
    if len(argv) > 2 and argv[2] == "access":  # the access log: INFO lines on stderr
        return run_node(["--log-level", "INFO", "run", "--data-dir", data_dir, "--access-log"])
    return run_node(["--log-level", "WARNING", "run", "--data-dir", data_dir])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "trace":
        tracemalloc.start(TRACE_FRAMES)
    raise SystemExit(main(sys.argv[1:]))
