"""A small real disk for tests: a tmpfs mounted by the test (as root), and a way to fill it.

Skipped when it cannot mount, except in CI (``CI=true``), where the tests must run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DISK_BYTES = 6 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_BYTES mounted under tmp_path for this test only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs",
         str(mount_point)], capture_output=True, text=True, check=False,
    ) if os.geteuid() == 0 else None
    if result is None or result.returncode != 0:
        reason = "cannot mount a tmpfs (needs root)" + (f": {result.stderr}" if result else "")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk is full; return it (delete it to free space)."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with pytest.raises(OSError, match="No space left") as raised, filler.open("wb") as out:  # noqa: PT012
        while True:
            out.write(chunk)
            out.flush()
    assert raised.value.errno == errno.ENOSPC
    with contextlib.suppress(OSError), filler.open("ab") as out:  # fill the last block too
        while True:
            out.write(b"\0")
            out.flush()
    return filler
