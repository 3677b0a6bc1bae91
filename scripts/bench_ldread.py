#!/usr/bin/env python3
"""What reading inbound JSON-LD in our compact names costs (issue 15, ``protocol/ldread.py``).

Prints, per document, in the same run: the baseline every inbox request pays anyway (parsing
the body with ``loads_capped``), the fast-path check for one of our own listing Creates
(``needs_normalising``: no JSON-LD work), the slow path for the Create Fedify's
``sendActivity`` wrote (``normalise``), PyLD's expand + compact of that same Create with the
vendored contexts (the library we did not put on the inbox path, when installed), and the
refusal of a 10,000-term context. Medians and p95 in microseconds, with ratios to the
baseline. Also the import cost of PyLD, measured in a fresh interpreter.

    PYTHONPATH=. python scripts/bench_ldread.py [--quick] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshnode.protocol import ldread
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.vocab import AS_CONTEXT, LISTING_CONTEXT
from scripts import make_examples

ROOT = Path(__file__).resolve().parent.parent
FEDIFY = ROOT / "tests" / "protocol" / "captured" / "fedify-send-activity-create.json"


def timed(rounds: int, work: Callable[[], object]) -> tuple[float, float]:
    """Median and p95 of ``work()`` in microseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _pyld_round_trip(document: dict[str, Any]) -> Callable[[], object] | None:
    try:
        from pyld import jsonld  # type: ignore[import-untyped]
    except ImportError:
        return None
    contexts = Path(ldread.__file__).parent / "contexts"

    def loader(url: str, _options: object = None) -> dict[str, Any]:
        text = (contexts / ldread.CONTEXT_FILES[url]).read_text(encoding="utf-8")
        return {"contentType": "application/ld+json", "contextUrl": None,
                "documentUrl": url, "document": json.loads(text)}

    options = {"documentLoader": loader}
    return lambda: jsonld.compact(jsonld.expand(document, options), LISTING_CONTEXT, options)


def pyld_import_cost() -> str:
    """Import time and resident-memory growth (VmRSS, not ru_maxrss: a forked child starts
    with its parent's peak) of ``pyld.jsonld`` in a fresh interpreter."""
    script = ("import re, time\n"
              "def rss():\n"
              "    text = open('/proc/self/status').read()\n"
              "    return int(re.search(r'VmRSS:\\s+(\\d+)', text).group(1)) / 1024\n"
              "r0 = rss(); t = time.perf_counter()\n"
              "import pyld.jsonld\n"
              "print(f'{(time.perf_counter() - t) * 1000:.0f} ms, +{rss() - r0:.1f} MB')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or f"not importable ({done.stderr.strip()[-80:]})"


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 rounds")
    args = parser.parse_args()
    rounds = 200 if args.quick else args.rounds
    ours = make_examples.build_examples()["listing-create"]
    ours_bytes = json.dumps(ours).encode()
    fedify = json.loads(FEDIFY.read_text(encoding="utf-8"))
    fedify_bytes = json.dumps(fedify).encode()
    hostile = {"@context": [AS_CONTEXT, {f"t{n}": f"e:{n}" for n in range(10_000)}],
               "type": "Create"}

    def refuse() -> None:
        try:
            ldread.normalise(hostile)
        except ldread.ContextError:
            return
        raise AssertionError("the 10,000-term context was not refused")

    base = timed(rounds, lambda: loads_capped(ours_bytes, max_depth=32))
    rows = [
        ("baseline: loads_capped(our listing Create)", base),
        ("fast path: needs_normalising(our Create)", timed(rounds, lambda: (
            ldread.needs_normalising(ours)))),
        ("baseline: loads_capped(Fedify's Create)", timed(rounds, lambda: loads_capped(
            fedify_bytes, max_depth=32))),
        ("slow path: normalise(Fedify's Create)", timed(rounds, lambda: (
            ldread.normalise(fedify)))),
        ("refusal: normalise(10,000-term context)", timed(max(rounds // 20, 10), refuse)),
    ]
    pyld = _pyld_round_trip(fedify)
    if pyld is not None:
        rows.append(("PyLD expand+compact(Fedify's Create)",
                     timed(max(rounds // 20, 10), pyld)))
    print(f"{'':44} {'median µs':>10} {'p95 µs':>10} {'× baseline':>11}")
    for label, (median, p95) in rows:
        print(f"{label:44} {median:10.1f} {p95:10.1f} {median / base[0]:11.2f}")
    print(f"PyLD import (fresh interpreter): {pyld_import_cost()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
