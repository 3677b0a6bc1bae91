"""meshnode/protocol stays pure: no I/O frameworks, no clock, no ambient randomness."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "meshnode" / "protocol"
REPO_ROOT = PACKAGE_DIR.parents[1]
BLOCKED = ("aiohttp", "aiosqlite", "zeroconf", "sqlite3", "asyncio", "socket")
FORBIDDEN_CALLS = re.compile(
    r"datetime\.now|datetime\.utcnow|time\.time|time\.monotonic|date\.today|"
    r"\bimport\s+(random|secrets|time)\b|from\s+(random|secrets|time)\s+import|os\.urandom"
)


def _protocol_modules() -> list[str]:
    # Sub-packages too (protocol/iou/...): every module file, recursively.
    return sorted(
        ".".join(("meshnode", "protocol", *p.relative_to(PACKAGE_DIR).with_suffix("").parts))
        .removesuffix(".__init__")
        for p in PACKAGE_DIR.rglob("*.py")
    )


def test_purity__modules_import_with_io_modules_blocked() -> None:
    # Given a fresh interpreter where importing any I/O module fails
    script = "\n".join(
        [
            "import importlib, sys",
            *(f"sys.modules[{name!r}] = None" for name in BLOCKED),
            f"for name in {_protocol_modules()!r}:",
            "    importlib.import_module(name)",
            "print('ok')",
        ]
    )
    # When every protocol module is imported, Then nothing reaches for them
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_purity__module_list_is_complete() -> None:
    expected = {"jsonparse", "canonical", "multikey", "proofs", "httpsig", "errors",
                "iou.states", "iou.messages"}
    assert {f"meshnode.protocol.{name}" for name in expected} <= set(_protocol_modules())


def test_purity__no_clock_or_randomness_in_source() -> None:
    offenders = [
        f"{path.name}:{lineno}: {line.strip()}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN_CALLS.search(line)
    ]
    assert offenders == []
