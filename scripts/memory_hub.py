"""What ``scripts/bench_memory.py`` reads from its hub (issue 17: memory).

The hub runs ``meshnode run`` through ``scripts/memory_probe.py``: ``Probe`` asks it for its
heap figures (SIGUSR1), ``Stage`` gathers them with the resident MB by mapping and prints
what grew between two stages; ``HubWatch`` reads the hub's delivery queue, inbox and log
while the soak runs; ``idle_sweep`` waits until the hub's own idle sweep has found it idle.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshnode.config import DATABASE_FILE
from meshnode.web.idle import IDLE_SECONDS
from scripts.memory_probe import SWEEP_MARKS
from tests.memload import MemNode

# The soak's RSS before and after are both read once the node's idle sweep (web/idle.py) has
# emptied the page caches and trimmed the heap: the same state. It runs once no request came
# for IDLE_SECONDS, and after the soak the peers' catch-ups may keep the hub busy for
# minutes, so the bench waits for the hub's own note of a sweep (memory_probe.SWEEP_MARKS),
# at most SWEEP_CAP, then SWEEP_SETTLE for what follows it (SQLite's caches, the trim).
SWEEP_CAP = 1200.0
SWEEP_SETTLE = 3.0


def probe_argv(node: MemNode, *, trace: bool, access_log: bool = False) -> list[str]:
    """``meshnode run`` for the hub, through ``scripts/memory_probe.py`` (with its access
    log in its log file if ``access_log``)."""
    return [sys.executable, "-m", "scripts.memory_probe", str(node.config.data_dir),
            "trace" if trace else "-", *(["access"] if access_log else [])]


OUTBOX_GET = re.compile(r'"GET \S*/outbox\?after=\S* HTTP/[\d.]+" (\d{3}) (\d+|-)')
# The hub's warning for each delivery POST a peer answered 429 / 503 (federation.delivery).
TOLD_TO_WAIT = re.compile(r"delivery to \S+ failed \(attempt \d+, \w+\): HTTP (429|503)")


class HubWatch:
    """What the hub's database and access log say while the soak runs: its delivery queue
    (due now, or deferred past a 429's Retry-After), unprocessed inbox rows, and the outbox
    pages it served since the last reading (catch-ups: summary and whole pages, MB), and the
    delivery POSTs peers answered 429 / 503 since the soak began (the hub's log warnings)."""

    def __init__(self, hub: MemNode) -> None:
        self.hub = hub
        self.offset = hub.log_path.stat().st_size if hub.log_path.exists() else 0
        self.told_to_wait: Counter[str] = Counter()

    def queues(self) -> dict[str, int]:
        """Pending deliveries (all, due within a minute, deferred by a 429), those left to
        the peers' catch-up (``state = 'left'``, in all) and inbox rows waiting for the
        worker."""
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        with sqlite3.connect(self.hub.config.data_dir / DATABASE_FILE, timeout=30) as db:
            pending, due, limited = db.execute(
                "SELECT count(*), sum(next_attempt_at <= ?), sum(last_error LIKE '%HTTP 429%')"
                " FROM deliveries WHERE state = 'pending'", (soon,)).fetchone()
            left = db.execute("SELECT count(*) FROM deliveries WHERE state = 'left'"
                              ).fetchone()[0]
            inbox = db.execute("SELECT count(*) FROM inbox_rows WHERE seq > (SELECT"
                               " coalesce(max(seq), 0) FROM inbox_marks)").fetchone()[0]
        return {"deliveries": pending, "due": due or 0, "429": limited or 0, "inbox": inbox,
                "left": left}

    def outbox_served(self) -> str:
        """Outbox pages served since the last call (empty without an access log); counts
        the POSTs answered 429 / 503 logged since then on the way."""
        if not self.hub.log_path.exists():
            return ""
        with self.hub.log_path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
            self.offset = log.tell()
        self.told_to_wait.update(match[1] for match in TOLD_TO_WAIT.finditer(text))
        counts: Counter[str] = Counter()
        size = 0
        for match in OUTBOX_GET.finditer(text):
            counts[match[1]] += 1
            size += int(match[2]) if match[2] != "-" else 0
        return (f"outbox pages {sum(counts.values())} ({dict(counts)}, {size / 2**20:.1f} MB)"
                if counts else "")

    def line(self) -> str:
        """One printable line."""
        queues = self.queues()
        served = self.outbox_served()
        return (f"hub deliveries pending {queues['deliveries']} (due {queues['due']}, after a"
                f" 429 {queues['429']}), left to catch-up {queues['left']}, inbox waiting"
                f" {queues['inbox']}; POSTs answered 429 so far {self.told_to_wait['429']}"
                f" (503 {self.told_to_wait['503']}); {served}")

    async def drained(self, cap: float) -> str:
        """Wait (at most ``cap`` seconds) until no delivery is due and the inbox is empty;
        what was waited and left."""
        started = time.monotonic()
        while time.monotonic() - started < cap:
            queues = self.queues()
            if not queues["due"] and not queues["inbox"]:
                break
            await asyncio.sleep(2)
        return (f"waited {time.monotonic() - started:.0f} s (cap {cap:.0f}) for the hub's"
                f" queues: {self.line()}")


async def idle_sweep(hub: MemNode, since: float, cap: float = SWEEP_CAP) -> str:
    """Wait until the hub's idle sweep, at a call after wall-clock time ``since``, finds it
    has had no request for ``IDLE_SECONDS`` (its caches emptied and heap trimmed in this idle
    stretch), at most ``cap`` seconds, and ``SWEEP_SETTLE`` more; what was waited."""
    marks = hub.config.data_dir / SWEEP_MARKS
    started = time.monotonic()
    while time.monotonic() - started < cap:
        lines = marks.read_text().splitlines() if marks.exists() else []
        wall, idle, _swept = (float(part) for part in lines[-1].split()) if lines else (0, 0, 0)
        if wall > since and idle >= IDLE_SECONDS:
            await asyncio.sleep(SWEEP_SETTLE)
            return (f"the hub had had no request for {idle:.0f} s and its idle sweep had run"
                    f" ({time.monotonic() - started:.0f} s waited)")
        await asyncio.sleep(1)
    return f"no idle sweep in {cap:.0f} s: the hub was still serving requests"


def keep_logs(nodes: list[MemNode], folder: Path) -> None:
    """Copy the nodes' logs into ``folder`` (the bench deletes its temporary directory)."""
    folder.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        if node.log_path.exists():
            shutil.copy(node.log_path, folder / f"{node.config.handle}.log")


class Probe:
    """Asks the hub for its heap figures (and tracemalloc snapshots under --trace)."""

    def __init__(self, proc: subprocess.Popen[bytes], hub: MemNode) -> None:
        self.proc = proc
        self.hub = hub
        self.count = 0

    async def heap(self, *, arenas: bool = False) -> dict[str, float]:
        """The hub's native heap figures now; with ``arenas`` (the soak's stages) its
        largest objects too, and under --trace its arenas' residents (a minute or more of
        the hub's time)."""
        self.count += 1
        if arenas:
            wanted = self.hub.config.data_dir / f"probe-{self.count}.arenas-wanted"
            wanted.touch()
        self.proc.send_signal(signal.SIGUSR1)
        target = self.hub.config.data_dir / f"probe-{self.count}.json"
        for _ in range(9000):  # tracemalloc's snapshots take minutes on a loaded machine
            if target.exists():
                heap: dict[str, float] = json.loads(target.read_text())
                return heap
            await asyncio.sleep(0.1)
        raise RuntimeError("the hub wrote no heap figures")

    async def line(self, *, arenas: bool = False) -> str:
        """The heap figures as one printable line."""
        heap = await self.heap(arenas=arenas)
        return ", ".join(f"{name} {value:.1f}" for name, value in heap.items())

    def types(self) -> dict[str, int]:
        """How many objects of each type the garbage collector tracked at the last figures."""
        kinds: dict[str, int] = json.loads(
            (self.hub.config.data_dir / f"probe-{self.count}.types").read_text())
        return kinds

    def allocators(self) -> dict[str, float]:
        """pymalloc's and glibc's arena figures at the last figures (MB, or counts)."""
        base = self.hub.config.data_dir / f"probe-{self.count}"
        found: dict[str, float] = {}
        for line in Path(f"{base}.pymalloc").read_text().splitlines():
            if line.startswith("# ") and "=" in line:
                name, value = line[2:].split("=", 1)
                number = float(value.strip().replace(",", ""))
                found["py " + name.strip()] = number / 2**20 if "bytes" in name else number
        xml = Path(f"{base}.malloc.xml").read_text()
        for heap in re.finditer(r'<heap nr="(\d+)">(.*?)</heap>', xml, re.S):
            nr, body = heap.groups()
            rest = re.search(r'<total type="rest" count="\d+" size="(\d+)"', body)
            system = re.search(r'<system type="current" size="(\d+)"', body)
            found[f"glibc arena {nr} free"] = int(rest.group(1)) / 2**20 if rest else 0.0
            found[f"glibc arena {nr} system"] = int(system.group(1)) / 2**20 if system else 0.0
        mmap = re.search(r'</heap>\s*(?:.*\n)*?<total type="mmap" count="(\d+)" size="(\d+)"',
                         xml)
        if mmap:
            found["glibc mmapped blocks"] = float(mmap.group(1))
            found["glibc mmapped MB"] = int(mmap.group(2)) / 2**20
        return found

    def arenas(self) -> dict[str, dict[str, int]]:
        """Under --trace: each pymalloc arena's live objects by allocation site and type at
        the last figures (``memory_probe.arena_residents``)."""
        residents: dict[str, dict[str, int]] = json.loads(
            (self.hub.config.data_dir / f"probe-{self.count}.arenas").read_text())
        return residents

    def largest(self) -> list[tuple[int, str, str]]:
        """The hub's largest objects at the last stage's figures (size, what, held by)."""
        path = self.hub.config.data_dir / f"probe-{self.count}.large"
        if not path.exists():
            return []
        return [tuple(item) for item in json.loads(path.read_text())]

    def snapshot(self) -> tracemalloc.Snapshot:
        """The tracemalloc snapshot taken with the last heap figures."""
        return tracemalloc.Snapshot.load(
            str(self.hub.config.data_dir / f"probe-{self.count}.snap"))


def mapping_rss(pid: int) -> dict[str, float]:
    """Resident MB by what is mapped (``/proc/PID/smaps``): each shared library or file by
    name, glibc's main heap ``[heap]``, and anonymous mappings (other malloc arenas, large
    blocks, Python's object arenas) as ``[anonymous]``."""
    found: dict[str, float] = {}
    name = "[anonymous]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            name = fields[5].rsplit("/", 1)[-1] if len(fields) > 5 else "[anonymous]"
        elif fields[0] == "Rss:":
            found[name] = found.get(name, 0.0) + int(fields[1]) / 1024
    return found


def print_changes(title: str, before: Mapping[str, float], after: Mapping[str, float],
                  *, unit: str = "MB", count: int = 12, floor: float = 0.05) -> None:
    """The ``count`` biggest changes between two {name: amount} readings."""
    deltas = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in {*before, *after}),
                    key=lambda item: -abs(item[0]))
    shown = [f"{name} {delta:+.{1 if unit == 'MB' else 0}f}" for delta, name in deltas[:count]
             if abs(delta) >= floor]
    print(f"   {title} ({unit}): {', '.join(shown) or 'nothing'}")


def print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, *,
                 during: str = "the soak", key: str = "lineno") -> None:
    """The 15 biggest growths between two snapshots, by line (or by file)."""
    print(f"   tracemalloc: biggest growths during {during} (by {key})")
    for stat in after.compare_to(before, key)[:15]:
        frame = stat.traceback[0]
        print(f"     {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks "
              f" {frame.filename.split('site-packages/')[-1]}:{frame.lineno}")


def print_pinners(before: Mapping[str, Mapping[str, int]],
                  after: Mapping[str, Mapping[str, int]], *, during: str,
                  top: int = 20) -> None:
    """Who keeps the pymalloc arenas in use after ``during`` that were not before: for each
    allocation site, in how many of them it has live objects (and how many objects), then
    each such arena's residents."""
    added = {arena: counts for arena, counts in after.items() if arena not in before}
    print(f"   pymalloc arenas holding live objects: {len(before)} -> {len(after)}"
          f" ({len(added)} not in use before {during}; ? = made before tracing)")
    pinned: Counter[str] = Counter()
    objects: Counter[str] = Counter()
    for counts in added.values():
        for site, number in counts.items():
            pinned[site] += 1
            objects[site] += number
    print("   arena count pinned by site (arenas, objects):")
    for site, arenas in pinned.most_common(top):
        print(f"     {arenas:3d} {objects[site]:7d}  {site}")
    for arena, counts in sorted(added.items(), key=lambda item: int(item[0])):
        sites = sorted(counts.items(), key=lambda item: -item[1])[:8]
        print(f"     arena {arena}: " + "; ".join(f"{n} {site}" for site, n in sites))


@dataclass
class Stage:
    """What the hub holds at one moment: resident MB by mapping, its heap figures, its
    Python objects by type and (under --trace) a tracemalloc snapshot."""

    mapped: dict[str, float]
    heap: str
    types: dict[str, int]
    snapshot: tracemalloc.Snapshot | None
    allocators: dict[str, float]
    arenas: dict[str, dict[str, int]]
    largest: list[tuple[int, str, str]]

    @classmethod
    async def read(cls, probe: Probe, *, trace: bool, arenas: bool = False) -> Stage:
        """Read them now (the resident figures first: the probe itself allocates); under
        --trace with ``arenas``, the arenas' residents too (minutes of the hub's time)."""
        mapped = mapping_rss(probe.proc.pid)
        heap = await probe.line(arenas=arenas)
        return cls(mapped, heap, probe.types(), probe.snapshot() if trace else None,
                   probe.allocators(), probe.arenas() if arenas and trace else {},
                   probe.largest() if arenas else [])

    def print_since(self, earlier: Stage, during: str) -> None:
        """What grew from ``earlier`` to this stage."""
        print(f"   {during}: heap {self.heap}")
        print_changes("resident", earlier.mapped, self.mapped)
        print_changes("Python objects", earlier.types, self.types, unit="objects", floor=50)
        print("   allocators (before -> after): " + ", ".join(
            f"{name} {earlier.allocators.get(name, 0):.2f} -> {value:.2f}"
            for name, value in self.allocators.items()))
        for title, largest in (("before", earlier.largest), ("after", self.largest)):
            if largest:
                print(f"   largest objects {title}: " + "; ".join(
                    f"{size / 1024:.0f} KiB {what} <- {held}" for size, what, held in largest))
        if earlier.snapshot is not None and self.snapshot is not None:
            print_growth(earlier.snapshot, self.snapshot, during=during, key="filename")
            if earlier.arenas and self.arenas:
                print_pinners(earlier.arenas, self.arenas, during=during)
