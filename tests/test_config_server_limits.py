"""``[server]`` resource limits: written by init, read back, bad values refused by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import tomli_w

from meshnode.config import CONFIG_FILE, ConfigError, load_config
from tests.conftest import make_config


def test_load_config__server_limits_round_trip_with_their_defaults(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node", header_timeout=2.5, max_connections=64)
    server = tomllib.loads((config.data_dir / CONFIG_FILE).read_text())["server"]
    assert server["image_decode_mib"] == 80
    assert server["max_image_pixels"] == 24_000_000
    loaded = load_config(config.data_dir)
    assert (loaded.header_timeout, loaded.max_connections, loaded.body_timeout) == (
        2.5, 64, 60.0)


@pytest.mark.parametrize(("key", "value"), [
    ("max_connections", 0), ("header_timeout", 0), ("body_timeout", -1),
    ("image_decode_mib", 1), ("max_concurrent_uploads", 0), ("max_image_pixels", 10**10),
])
def test_load_config__out_of_range_server_limit_is_refused_by_name(
    tmp_path: Path, key: str, value: float
) -> None:
    config = make_config(tmp_path / "node")
    path = config.data_dir / CONFIG_FILE
    raw = tomllib.loads(path.read_text())
    raw["server"][key] = value
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(ConfigError, match=f"server.{key}"):
        load_config(config.data_dir)


FIT = textwrap.dedent("""
    import logging, resource, sys
    from meshnode.web.connections import FD_RESERVE, fit_connection_cap
    logging.basicConfig(level=logging.WARNING)
    soft, hard = (int(v) for v in sys.argv[1:3])
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    cap = fit_connection_cap(256)
    print(cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
""")


@pytest.mark.parametrize(("soft", "hard", "expected"), [
    (300, 4096, "256 448"),  # the soft limit is raised to fit the cap and the reserve
    (300, 300, "108 300"),   # the hard limit is too low: the cap is lowered, with a warning
])
def test_fit_connection_cap__raises_the_file_limit_or_lowers_the_cap(
    soft: int, hard: int, expected: str
) -> None:
    result = subprocess.run([sys.executable, "-c", FIT, str(soft), str(hard)],
                            capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == expected.split()
    assert ("max_connections lowered" in result.stderr) == (soft == hard)
