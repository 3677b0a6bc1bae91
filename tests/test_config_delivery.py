"""``federation.delivery_concurrency``: read from config.toml, checked, default 8."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from meshnode.config import Config, ConfigError, load_config, validate
from tests.conftest import make_config


def test_load_config__delivery_concurrency_read_from_the_federation_section(
        tmp_path: Path) -> None:
    # Given a node written by init (default 8), whose admin lowers it for a small peer
    assert make_config(tmp_path / "n").delivery_concurrency == 8
    path = tmp_path / "n" / "config.toml"
    path.write_text(path.read_text().replace("delivery_concurrency = 8",
                                             "delivery_concurrency = 2"))
    # Then the node reads it
    assert load_config(tmp_path / "n").delivery_concurrency == 2


@pytest.mark.parametrize("value", [0, -1, 65])
def test_validate__rejects_delivery_concurrency_outside_1_to_64(tmp_path: Path,
                                                                value: int) -> None:
    config = Config(data_dir=tmp_path, name="n", handle="n", public_url="http://h")
    with pytest.raises(ConfigError, match=r"federation\.delivery_concurrency must be 1-64"):
        validate(replace(config, delivery_concurrency=value))
