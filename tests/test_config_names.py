"""``[federation] actor_refresh_hours``: default, round trip, clear error when out of range."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshnode.config import ConfigError, from_toml_dict, to_toml_dict
from tests.conftest import make_config


def test_actor_refresh_hours__a_day_by_default_and_round_trips(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node")
    assert config.actor_refresh_hours == 24.0
    raw = to_toml_dict(config)
    raw["federation"]["actor_refresh_hours"] = 6
    assert from_toml_dict(config.data_dir, raw).actor_refresh_hours == 6.0


@pytest.mark.parametrize("hours", [0, -1, 10_000])
def test_actor_refresh_hours__out_of_range_is_a_config_error_naming_the_key(
    tmp_path: Path, hours: float
) -> None:
    raw = to_toml_dict(make_config(tmp_path / "node"))
    raw["federation"]["actor_refresh_hours"] = hours
    with pytest.raises(ConfigError, match=r"federation\.actor_refresh_hours"):
        from_toml_dict(tmp_path, raw)
