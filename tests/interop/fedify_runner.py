"""Running the Node scripts under ``tests/interop/fedify/`` (Fedify 2.3.6, pinned by
package-lock.json) from pytest.

Outside CI these tests skip only when Node.js is missing; under CI (``CI=true``) a missing Node
is a failure, since ``scripts/test.sh`` installs it. When Node is present but the packages are
not, they are installed here with ``npm ci`` (from the npm registry, the lock file's versions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

FEDIFY_DIR = Path(__file__).parent / "fedify"


def node_or_skip() -> str:
    """Path of ``node`` with Fedify installed next to the scripts; skips when Node is missing."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Node.js is missing: scripts/test.sh should have installed it")
        pytest.skip("Node.js is not installed (the Fedify interop tests need node and npm)")
    if not (FEDIFY_DIR / "node_modules" / "@fedify" / "vocab").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install @fedify/vocab")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FEDIFY_DIR, check=True,
                       capture_output=True, timeout=300)
    return node


def run_script(script: str, payload: Any, *, timeout: float = 60) -> Any:
    """Run ``fedify/SCRIPT`` with ``payload`` as JSON on stdin; return its stdout parsed."""
    node = node_or_skip()
    done = subprocess.run([node, script], cwd=FEDIFY_DIR, input=json.dumps(payload).encode(),
                          capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}): {done.stderr.decode()}")
    return json.loads(done.stdout)
