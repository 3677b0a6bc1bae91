"""Benchmark startup: seconds from ``meshnode run`` to the first served page, 100,000 listings.

Usage: ``PYTHONPATH=. python scripts/bench_startup.py [--listings 100000] [--runs 3] [--quick]``

Creates a data directory with ``--listings`` really signed listings once (the same generator
as ``bench_web.py``), kept under the temporary directory
(``$TMPDIR/meshnode-bench-startup-<listings>``) for later runs. Each run copies it to a fresh
directory (so every start finds the same database), starts ``meshnode run`` as a separate
process on 127.0.0.1, polls ``/healthz`` every 5 ms until it answers, then fetches ``/``, and
prints the time to each. Baseline in the same run: an empty node started the same way.
The package's bytecode is compiled first, as ``pip install`` does (``PYTHONDONTWRITEBYTECODE``
would otherwise have every start compile every module again).
Target (issue 17): < 1 s to the first served page with 100,000 listings.
``--quick``: 10,000 listings, 2 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import aiohttp

import meshnode
from meshnode.config import Config
from meshnode.services.node import init_node
from meshnode.store.db import initialise_database

POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 120.0


def _bench_web() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_web", Path(__file__).with_name(
        "bench_web.py"))
    if spec is None or spec.loader is None:
        raise RuntimeError("scripts/bench_web.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def prepared_node(listings: int) -> Path:
    """The cached data directory with ``listings`` signed listings (created on first use)."""
    folder = Path(tempfile.gettempdir()) / f"meshnode-bench-startup-{listings}"
    ready = folder / "READY"
    if ready.exists():
        # Migrations added since it was made run once here, not in every measured start.
        if applied := initialise_database(folder / "node" / "meshnode.sqlite3"):
            print(f"applied {', '.join(applied)} to the kept {folder}")
        return folder / "node"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = init_node(Config(data_dir=folder / "node", name="Banc d'essai", handle="bench",
                              public_url="http://127.0.0.1:8080",
                              # Other benchmarks' nodes on this machine are not peers.
                              discovery_policy="off"))
    began = time.perf_counter()
    if listings:
        await _bench_web().seed(config, listings)
    ready.write_text(f"{listings} listings\n")
    print(f"created {folder} with {listings} signed listings in "
          f"{time.perf_counter() - began:.1f} s (kept for later runs)")
    return folder / "node"


async def _until_ok(session: aiohttp.ClientSession, url: str, deadline: float) -> None:
    while True:
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{url} did not answer within {GIVE_UP_SECONDS:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def one_start(source: Path) -> tuple[float, float]:
    """Copy ``source``, start a node on it; (seconds to /healthz, seconds to the first page)."""
    with tempfile.TemporaryDirectory(prefix="meshnode-start-") as tmp:
        data_dir = Path(tmp) / "node"
        shutil.copytree(source, data_dir)
        os.sync()  # the copy's dirty pages written out now, not during the measured start
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        headers = {"Accept": "text/html", "Accept-Language": "fr"}
        log = (Path(tmp) / "node.log").open("w")
        async with aiohttp.ClientSession(headers=headers) as session:
            began = time.perf_counter()
            process = subprocess.Popen(  # noqa: ASYNC220 - the start is what is measured
                [sys.executable, "-c",
                 "import sys; from meshnode.cli import main; sys.exit(main())",
                 "run", "--data-dir", str(data_dir), "--port", str(port)],
                stderr=log,
            )
            try:
                deadline = began + GIVE_UP_SECONDS
                await _until_ok(session, f"{url}/healthz", deadline)
                healthy = time.perf_counter() - began
                await _until_ok(session, f"{url}/", deadline)
                first_page = time.perf_counter() - began
            except RuntimeError:
                log.close()
                print((Path(tmp) / "node.log").read_text(), file=sys.stderr)
                raise
            finally:
                process.terminate()
                process.wait(timeout=30)
                log.close()
    return healthy, first_page


def _line(name: str, runs: list[tuple[float, float]]) -> str:
    health = [h for h, _ in runs]
    page = [p for _, p in runs]
    return (f"{name:22} {statistics.median(health):>10.3f} {statistics.median(page):>10.3f} "
            f"{min(page):>8.3f} {max(page):>8.3f}")


# In a fresh interpreter that has imported what ``meshnode run`` imports, the CPU each route
# module's first request pays to import it (web/lazyroutes.py), areas in the table's order.
LAZY_CHILD = r"""
import importlib, json, sys, time
import meshnode.cli
from meshnode.web.lazyroutes import PACKAGE
from meshnode.web.routes_table import ROUTES
costs = {}
for _, _, routes in ROUTES:
    for _, ref in routes:
        for side in ref.split("|"):
            module = PACKAGE + side.partition(":")[0]
            if side and module not in sys.modules:
                started = time.process_time()
                importlib.import_module(module)
                costs[module] = time.process_time() - started
print(json.dumps(costs))
"""


def lazy_import_costs() -> None:
    """Print what the first request to each lazily imported area costs once (CPU ms)."""
    costs: dict[str, float] = json.loads(subprocess.run(
        [sys.executable, "-c", LAZY_CHILD], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(Path(meshnode.__file__).parents[1])}).stdout)
    top = sorted(costs.items(), key=lambda item: -item[1])[:5]
    print(f"first request to a lazily imported route module (CPU, once per process):"
          f" {len(costs)} modules, {sum(costs.values()) * 1000:.0f} ms in all; the first page"
          f" ({next(iter(costs))}) {next(iter(costs.values())) * 1000:.0f} ms; largest: "
          + ", ".join(f"{name.removeprefix('meshnode.')} {cost * 1000:.0f} ms"
                      for name, cost in top))


async def main_async(args: argparse.Namespace) -> int:
    compileall.compile_dir(Path(meshnode.__file__).parent, quiet=1)
    empty = await prepared_node(0)
    full = await prepared_node(args.listings)
    size = (full / "meshnode.sqlite3").stat().st_size / 1e6
    print(f"database with {args.listings} listings: {size:.0f} MB; {args.runs} starts each, "
          "the data directory copied fresh before each")
    results: dict[str, list[tuple[float, float]]] = {"empty": [], "full": []}
    for _ in range(args.runs):  # alternate, so a busy moment on the machine hits both
        results["empty"].append(await one_start(empty))
        results["full"].append(await one_start(full))
    print(f"{'node':22} {'healthz s':>10} {'page s':>10} {'min s':>8} {'max s':>8}  (medians)")
    print(_line("empty (baseline)", results["empty"]))
    print(_line(f"{args.listings:,} listings", results["full"]))
    worst = max(p for _, p in results["full"])
    base = statistics.median(p for _, p in results["empty"])
    extra = statistics.median(p for _, p in results["full"]) - base
    print(f"the listings add {extra * 1000:+.0f} ms to the median start; "
          f"target < 1 s to the first page: {'met' if worst < 1 else 'NOT met'} "
          f"(slowest start {worst:.3f} s)")
    lazy_import_costs()
    return 0


def main() -> int:
    """Parse the flags and measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 listings, 2 runs")
    args = parser.parse_args()
    if args.quick:
        args.listings, args.runs = min(args.listings, 10_000), 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
