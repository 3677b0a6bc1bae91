#!/usr/bin/env python3
"""Memory of a real ``meshnode run`` process (issue 17): imports, idle, peers, a soak, a Pi.

Prints, each figure next to a baseline measured in the same run:
1. what each big import of ``meshnode run`` costs: RSS deltas in one fresh interpreter,
   importing in dependency order (standard library first, then each third-party package as
   ``python -X importtime`` finishes them, then our layers), then what is loaded only on
   demand (Pillow, cryptography, …);
2. idle RSS of a fresh node (``/proc/PID/status`` VmRSS once ``/healthz`` answers and the
   RSS has settled), with mDNS on (the default) and off, next to a bare aiohttp server;
3. RSS after peering with 10 real nodes (``/api/v1/peers`` both ways, each peer publishing
   listings the hub ingests) and serving 1,000 pages, anonymous and member pages mixed:
   settled right after the last page, and ``QUIET_WAIT`` seconds later;
4. a mixed-load soak on that hub (page views, listings, searches, photo uploads, a burst of
   6 concurrent worst-case image uploads each minute, peers publishing to it), RSS before,
   every minute and after (settled), and the ratio after/before;
5. the hub runs inside a 256 MB memory cgroup when one can be made (``--cgroup-mb``): the
   cgroup's peak and its OOM-kill counter. The hub's image decoding children
   (``services/images.py``) are in its cgroup: the cgroup's figures count them; the RSS
   figures of sections 3 and 4 are the hub's own process (``scripts/bench_limits.py`` prints
   a child's peak per image).

At each stage (fresh, peered, after the pages, before and after the soak) it also prints
where the memory went: resident MB by mapping (``/proc/PID/smaps``: each shared library,
glibc's main heap, anonymous mappings), the heap figures (SQLite's own heap, and its page
caches, schemas and prepared statements summed over the connections; glibc's arenas; Python
blocks; threads) and Python objects by type. ``--trace`` runs the hub under tracemalloc and
adds the 15 biggest growths by file or line (tracemalloc inflates RSS: its figures are not
comparable).
What it reads from the hub (the probe's figures, its queues, its idle sweeps) is in
``scripts/memory_hub.py``.

    PYTHONPATH=. python scripts/bench_memory.py [--minutes 30] [--quick] [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshnode.config import write_config
from scripts.memory_hub import HubWatch, Probe, Stage, idle_sweep, keep_logs, probe_argv
from tests.memload import (
    REPO,
    CgroupUnavailableError,
    MemNode,
    MemoryCgroup,
    Tally,
    api,
    create_listing,
    mixed_round,
    proc_mb,
    settled_rss,
    setup_node,
    start_node,
    upload_image,
    view_pages,
    wait_healthy,
    worst_png,
)
from tests.nodeproc import free_port

# Loaded on demand only (first upload, first RSA signature, …): their cost is shown apart.
ON_DEMAND = ("PIL.Image", "PIL.PngImagePlugin", "PIL.JpegImagePlugin", "PIL.WebPImagePlugin",
             "cryptography.hazmat.primitives.asymmetric.rsa", "argon2", "zeroconf", "babel.dates",
             "jinja2", "zipfile")
# After a burst of requests the node trims its heap once it has been quiet for a moment
# (web/idle.py, QUIET_SECONDS): section 3 also reads the RSS this long after the last page.
QUIET_WAIT = 5.0
# At most this long is waited after the soak for the hub's queues to empty (--drain on).
DRAIN_CAP = 600.0
LAYERS = ("protocol", "store", "services", "federation", "web")

IMPORT_CHILD = r"""
import importlib, json, os, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
rows = [("interpreter start", rss(), 0)]
start = rss()  # as meshnode run (cli.cmd_run): counted with the standard library below
from meshnode.services.memory import defer_ca_certificates, prefer_pure_frozenlist
prefer_pure_frozenlist()
defer_ca_certificates()
for group in json.loads(sys.argv[1]):
    before, count = (start, 0) if start else (rss(), 0)
    start = 0
    for name in group["modules"]:
        if name in sys.modules:
            continue
        try:
            if name == "zeroconf":  # as the node loads it (federation/zeroconf_source.py)
                from meshnode.federation.zeroconf_source import load_zeroconf
                load_zeroconf()
            else:
                importlib.import_module(name)
            count += 1
        except Exception:
            pass
    rows.append((group["label"], rss() - before, count))
print(json.dumps(rows))
"""

# What ``meshnode run`` imports: the command line, then the server (cli.cmd_run).
RUN_IMPORTS = ("from meshnode.services.memory import defer_ca_certificates,"
               " prefer_pure_frozenlist; prefer_pure_frozenlist(); defer_ca_certificates();"
               " import meshnode.cli, meshnode.serve")
LOADED_CHILD = r"""
import json, sys
""" + RUN_IMPORTS + r"""
print(json.dumps(list(sys.modules)))
"""


def _import_order() -> list[str]:
    """Top-level packages in the order ``python -X importtime`` finishes them when importing
    what ``meshnode run`` imports (a package's dependencies come before it)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", RUN_IMPORTS],
                            capture_output=True, text=True, check=True, cwd=REPO)
    order: list[str] = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            top = line.rsplit("|", 1)[1].strip().split(".")[0]
            if top not in order:
                order.append(top)
    return order


def _import_groups() -> list[dict[str, object]]:
    loaded = json.loads(subprocess.run([sys.executable, "-c", LOADED_CHILD], cwd=REPO,
                                       capture_output=True, text=True, check=True).stdout)
    stdlib = [m for m in loaded if m.split(".")[0] in sys.stdlib_module_names]
    groups: list[dict[str, object]] = [{"label": "standard library (asyncio, ssl, sqlite3…)",
                                        "modules": stdlib}]
    for top in _import_order():
        if top in sys.stdlib_module_names or top == "meshnode" or top.startswith("_"):
            continue
        groups.append({"label": top, "modules": [m for m in loaded if m.split(".")[0] == top]})
    for layer in LAYERS:
        prefix = f"meshnode.{layer}"
        groups.append({"label": prefix, "modules": [
            m for m in loaded if m == prefix or m.startswith(prefix + ".")]})
    groups.append({"label": "meshnode (app, cli, serve, config, keys)",
                   "modules": [m for m in loaded if m.split(".")[0] == "meshnode"]})
    groups.extend({"label": f"on demand: {name}", "modules": [name]} for name in ON_DEMAND
                  if name not in loaded)
    return groups


def bench_imports() -> None:
    """Section 1: the import cost table."""
    groups = _import_groups()
    rows = json.loads(subprocess.run([sys.executable, "-c", IMPORT_CHILD, json.dumps(groups)],
                                     cwd=REPO, capture_output=True, text=True,
                                     check=True).stdout)
    print("1. import costs (RSS deltas in one fresh interpreter, in import order)")
    total, totalled = 0.0, False
    for label, delta, count in rows:
        if label.startswith("on demand") and not totalled:
            print(f"   {'= RSS once meshnode run has imported':<48} {total:6.1f} MB")
            totalled = True
        if count or label == "interpreter start":
            total += delta
            print(f"   {label:<48} {delta:+6.1f} MB  ({count} modules)")
    big = [name for name in ON_DEMAND if any(r[0] == f"on demand: {name}" for r in rows)]
    print(f"   (not imported by an idle node: {', '.join(big) or 'none'})")


BARE_SERVER = r"""
import sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


async def bare_aiohttp_rss() -> float:
    """Baseline: an aiohttp server with one route, idle."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])  # noqa: ASYNC220
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        return await settled_rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def fresh_idle(tmp: Path, *, discovery: bool) -> tuple[float, float]:
    """(VmRSS, RssAnon) of a fresh node once it answers and settles."""
    node = await setup_node(tmp / f"idle-{discovery}", free_port(), discovery=discovery)
    proc = start_node(node)
    try:
        await wait_healthy(node.url, proc)
        await asyncio.sleep(1.0)
        return await settled_rss(proc.pid), proc_mb(proc.pid, "RssAnon")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


async def bench_idle(tmp: Path) -> None:
    """Section 2: fresh idle RSS, with and without mDNS, next to a bare aiohttp server."""
    bare = await bare_aiohttp_rss()
    on, on_anon = await fresh_idle(tmp, discovery=True)
    off, off_anon = await fresh_idle(tmp, discovery=False)
    print("2. fresh node, idle (VmRSS after /healthz, settled)")
    print(f"   bare aiohttp server (baseline)                   {bare:6.1f} MB")
    print(f"   meshnode run, defaults (mDNS on)                 {on:6.1f} MB  (anonymous"
          f" {on_anon:.1f} MB; +{on - bare:.1f} over the baseline; target < 50 MB)")
    print(f"   meshnode run, discovery off                      {off:6.1f} MB  (anonymous"
          f" {off_anon:.1f} MB)")


async def peer_all(http: aiohttp.ClientSession, hub: MemNode, peers: list[MemNode],
                   seconds: float = 120) -> float:
    """Peer ``hub`` with every node of ``peers`` both ways; the seconds it took."""
    started = time.monotonic()
    for peer in peers:
        await api(http, hub, "POST", "/api/v1/peers", {"target": peer.url})
        await api(http, peer, "POST", "/api/v1/peers", {"target": hub.url})
    wanted = {peer.url for peer in peers}
    while time.monotonic() - started < seconds:
        listed = (await api(http, hub, "GET", "/api/v1/peers"))["peers"]
        if not isinstance(listed, list):
            raise TypeError(f"/api/v1/peers answered {listed!r} as its peers")
        done = {p["peer"] for p in listed
                if p["ours"] == "peered" and p["theirs"] == "accepted"}
        if wanted <= done:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"peering incomplete after {seconds:.0f} s: {len(done)}/{len(wanted)}")


class Nodes:
    """The hub (measured, in a cgroup when one can be made) and its peers, as processes."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cgroup: MemoryCgroup | None = None

    def start(self, node: MemNode, *, cgroup: MemoryCgroup | None = None,
              argv: list[str] | None = None) -> subprocess.Popen[bytes]:
        proc = start_node(node, cgroup=cgroup, argv=argv)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.communicate(timeout=60)
        if self.cgroup is not None:
            self.cgroup.remove()


async def publish_from_peer(http: aiohttp.ClientSession, peer: MemNode, number: int,
                            tally: Tally) -> None:
    """A peer's member publishes a listing (the hub ingests it through its inbox)."""
    body = {"kind": "request", "category": "give", "title": f"Voisinage {number}",
            "description": "Publié par un nœud voisin", "price": {"mode": "free"},
            "location": {"name": "Croix-Rousse"}}
    async with http.post(f"{peer.url}/api/v1/listings", json=body,
                         headers={"Authorization": f"Bearer {peer.token}"}) as response:
        tally.record("peer POST /api/v1/listings", response.status)


async def remote_count(http: aiohttp.ClientSession, hub: MemNode) -> int:
    """How many of the peers' listings the hub has (first 100)."""
    async with http.get(f"{hub.url}/api/v1/listings", params={"q": "voisinage", "limit": "100"},
                        headers={"Authorization": f"Bearer {hub.token}"}) as response:
        return len((await response.json())["items"])


async def bench_peers(http: aiohttp.ClientSession, hub: MemNode, peers: list[MemNode],
                      probe: Probe, pages: int, *, trace: bool = False) -> float:
    """Section 3: peer with every node, ingest their listings, serve ``pages`` pages."""
    print(f"3. after peering with {len(peers)} nodes and serving {pages} pages")
    pid = probe.proc.pid
    idle = await settled_rss(pid)
    fresh = await Stage.read(probe, trace=trace)
    took = await peer_all(http, hub, peers)
    tally = Tally()
    for number in range(10 * len(peers)):
        await publish_from_peer(http, peers[number % len(peers)], number, tally)
    for number in range(50):
        await create_listing(http, hub, number, tally)
    for _ in range(120):
        if await remote_count(http, hub) >= min(100, 10 * len(peers)):
            break
        await asyncio.sleep(0.5)
    peered = await settled_rss(pid)
    peered_stage = await Stage.read(probe, trace=trace)
    served, number = 0, 0
    while served < pages:
        served += await view_pages(http, hub, number, tally)
        number += 1
    after = await settled_rss(pid)
    await asyncio.sleep(QUIET_WAIT)
    quiet = await settled_rss(pid)
    print(f"   fresh {idle:.1f} MB; peered with {len(peers)} in {took:.1f} s, their"
          f" {await remote_count(http, hub)} listings ingested: {peered:.1f} MB")
    print(f"   after {served} pages (anonymous and member pages, French and English):"
          f" {after:.1f} MB, {quiet:.1f} MB {QUIET_WAIT:.0f} s later (target < 60 MB);"
          f" requests {tally.statuses}, unexpected {tally.unexpected[:3]}")
    print(f"   fresh: heap {fresh.heap}")
    peered_stage.print_since(fresh, "peering")
    (await Stage.read(probe, trace=trace)).print_since(peered_stage, "pages")
    return quiet


async def burst(http: aiohttp.ClientSession, hub: MemNode, worst: bytes, number: int,
                tally: Tally) -> list[int]:
    """Six concurrent uploads of the worst accepted image."""
    return list(await asyncio.gather(*(upload_image(http, hub, worst, number + n, tally)
                                       for n in range(6))))


async def load_minute(http: aiohttp.ClientSession, hub: MemNode, peers: list[MemNode],
                      minute: int, worst: bytes | None, tally: Tally) -> list[int]:
    """One minute of mixed load; the statuses of its burst of worst-case uploads (no upload
    at all when ``worst`` is None)."""
    deadline = time.monotonic() + 60
    counter = [minute * 100_000]

    async def member() -> None:
        while time.monotonic() < deadline:
            counter[0] += 1
            try:
                await mixed_round(http, hub, counter[0], tally, upload=worst is not None)
            except (TimeoutError, aiohttp.ClientError) as error:  # counted, and the load goes on
                tally.unexpected.append(f"round {counter[0]}: {error!r} at {time.strftime('%X')}")

    async def neighbours() -> None:
        while time.monotonic() < deadline:
            counter[0] += 1
            await publish_from_peer(http, peers[counter[0] % len(peers)], counter[0], tally)
            await asyncio.sleep(0.2)

    try:
        uploads = [] if worst is None else await burst(http, hub, worst, counter[0], tally)
    except (TimeoutError, aiohttp.ClientError) as error:
        tally.unexpected.append(f"burst: {error!r} at {time.strftime('%X')}")
        uploads = []
    await asyncio.gather(member(), member(), member(), neighbours())
    return uploads


async def bench_soak(http: aiohttp.ClientSession, hub: MemNode, peers: list[MemNode],
                     probe: Probe, minutes: int, *, trace: bool, uploads: bool = True,
                     cgroup: MemoryCgroup | None = None, drain: bool = True) -> None:
    """Section 4: ``minutes`` of mixed load, RSS before, every minute and after; with no
    image upload at all unless ``uploads`` (to split Pillow's part of the growth). With
    ``drain``, "after" is read once the hub has no delivery due and an empty inbox (waiting
    at most ``DRAIN_CAP``); both are read once the hub's idle sweep ran (``idle_sweep``)."""
    worst = worst_png() if uploads else None
    proc = probe.proc
    busy = proc_mb(proc.pid)
    swept = await idle_sweep(hub, time.time())
    before = await settled_rss(proc.pid)
    first = await Stage.read(probe, trace=trace, arenas=True)
    what = ("a photo upload per round; a neighbour publishing 5/s; 6 concurrent uploads of the"
            " worst image each minute" if uploads else "no upload (--uploads off); a neighbour"
            " publishing 5/s")
    print(f"4. soak: {minutes} min of mixed load (3 members: a listing, a search, 13 pages and"
          f" {what}); RSS before {before:.1f} MB, read once {swept} ({busy:.1f} MB while"
          f" busy) ({first.heap})")
    tally = Tally()
    watch = HubWatch(hub)
    for minute in range(1, minutes + 1):
        statuses = await load_minute(http, hub, peers, minute, worst, tally)
        print(f"   minute {minute:>2}: RSS {proc_mb(proc.pid):6.1f} MB, {tally.total} requests"
              f" so far, burst {sorted(statuses)}; {await probe.line()}", flush=True)
        print(f"     {watch.line()}", flush=True)
        if cgroup is not None:
            print(f"     {cgroup.usage()}, OOM kills {cgroup.oom_kills()}", flush=True)
        if tally.unexpected:
            print(f"     unexpected so far: {len(tally.unexpected)}, last {tally.unexpected[-1]}")
    busy = proc_mb(proc.pid)
    if drain:  # deliveries due and the inbox done first (not those a 429 put off an hour)
        print(f"   {await watch.drained(DRAIN_CAP)}", flush=True)
    swept = await idle_sweep(hub, time.time())
    after = await settled_rss(proc.pid, seconds=30)
    print(f"   after (settled once {swept}; {busy:.1f} MB at the end of the load):"
          f" {after:.1f} MB, {after / before:.3f} × before (target within"
          f" 10%); statuses {dict(sorted(tally.statuses.items()))}, unexpected"
          f" {tally.unexpected[:5]}")
    watch.outbox_served()  # the warnings logged while the hub drained and idled
    print(f"   delivery POSTs the peers answered 429 in all: {watch.told_to_wait['429']}"
          f" (503: {watch.told_to_wait['503']}; the hub's warnings, soak, drain and idle)")
    (await Stage.read(probe, trace=trace, arenas=True)).print_since(first, "the soak")


def make_cgroup(megabytes: int) -> MemoryCgroup | None:
    """The Pi-sized cgroup for the hub, or None (and why) where none can be made."""
    if megabytes <= 0:
        return None
    try:
        return MemoryCgroup.create(megabytes * 2**20)
    except CgroupUnavailableError as error:
        print(f"5. no {megabytes} MB cgroup for the hub: {error}")
        return None


async def bench_network(tmp: Path, args: argparse.Namespace) -> None:
    """Sections 3, 4 and 5 on one hub and its peers."""
    nodes = Nodes()
    try:
        hub = await setup_node(tmp / "hub", free_port(), handle="hub")
        peers = [await setup_node(tmp / f"peer{n}", free_port(), handle=f"peer{n}")
                 for n in range(args.peers)]
        if args.peer_inbox_rows:  # the peers' hourly quota for the hub's origin
            for node in peers:
                write_config(replace(node.config, inbox=replace(
                    node.config.inbox, peer_rows_per_hour=args.peer_inbox_rows)))
        nodes.cgroup = make_cgroup(args.cgroup_mb)
        proc = nodes.start(hub, cgroup=nodes.cgroup,
                           argv=probe_argv(hub, trace=args.trace, access_log=args.access_log))
        for peer in peers:
            nodes.start(peer)
        for node, started in zip([hub, *peers], nodes.procs, strict=True):
            await wait_healthy(node.url, started, seconds=180)  # 11 nodes start at once
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            probe = Probe(proc, hub)
            await bench_peers(http, hub, peers, probe, args.pages, trace=args.trace)
            await bench_soak(http, hub, peers, probe, args.minutes,
                             trace=args.trace, uploads=args.uploads == "on",
                             cgroup=nodes.cgroup, drain=args.drain == "on")
        if nodes.cgroup is not None:
            print(f"5. the hub ran in a {args.cgroup_mb} MB memory cgroup: peak"
                  f" {nodes.cgroup.peak_mb():.1f} MB (RSS and page cache, its image decoding"
                  f" children included), OOM kills"
                  f" {nodes.cgroup.oom_kills()}, node {'alive' if proc.poll() is None else 'DEAD'}")
    finally:
        nodes.stop()
        if args.keep_logs:
            keep_logs([hub, *peers], Path(args.keep_logs))
            print(f"   the nodes' logs were copied to {args.keep_logs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30, help="soak length")
    parser.add_argument("--quick", action="store_true", help="a 2-minute soak")
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--peer-inbox-rows", type=int, default=0, metavar="N",
                        help="the peers' inbox_peer_rows_per_hour (0: the default, 3,600):"
                        " a lower one runs their quota for the hub out sooner")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--cgroup-mb", type=int, default=256, help="0: no cgroup")
    parser.add_argument("--trace", action="store_true", help="tracemalloc diff of the soak")
    parser.add_argument("--uploads", choices=("on", "off"), default="on",
                        help="off: the soak uploads no image (splits Pillow's part)")
    parser.add_argument("--only", choices=("imports", "idle", "network"), default=None)
    parser.add_argument("--access-log", action="store_true",
                        help="the hub logs every request (outbox pages counted each minute)")
    parser.add_argument("--keep-logs", default=None, metavar="DIR",
                        help="copy the nodes' logs to DIR before the temporary one goes")
    parser.add_argument("--drain", choices=("on", "off"), default="on",
                        help="read 'after' once the hub's queues are empty (at most 600 s)")
    args = parser.parse_args()
    if args.quick:
        args.minutes = 2
    if args.trace:  # tracemalloc's 25 frames a block: 261 MB resident, OOM-killed at 256
        args.cgroup_mb = 0
    if args.only in (None, "imports"):
        bench_imports()
    with tempfile.TemporaryDirectory(prefix="meshnode-mem-") as tmp:
        if args.only in (None, "idle"):
            asyncio.run(bench_idle(Path(tmp)))
        if args.only in (None, "network"):
            asyncio.run(bench_network(Path(tmp), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
