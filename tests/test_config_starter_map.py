"""``[trust.starter]`` and ``[map]`` in config.toml: written by init, defaults, clear errors."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshnode.config import (
    CONFIG_FILE,
    ConfigError,
    MapConfig,
    StarterLineConfig,
    from_toml_dict,
    load_config,
    to_toml_dict,
)
from tests.conftest import make_config


def test_starter_and_map__init_writes_the_defaults_off_and_private(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node")
    written = tomllib.loads((config.data_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    assert written["trust"]["starter"] == {"enabled": False, "limit_out": "20",
                                           "limit_in": "20", "rate": "1",
                                           "neighbours": ["mdns", "peered"]}
    assert written["map"] == {"public": True, "public_balances": False}
    assert load_config(config.data_dir).starter == StarterLineConfig()


def test_starter_and_map__round_trip_and_missing_sections(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node")
    changed = replace(config, starter=StarterLineConfig(enabled=True, limit_out="5.50",
                                                        neighbours=("mdns",)),
                      map=MapConfig(public=False))
    again = from_toml_dict(config.data_dir, to_toml_dict(changed))
    assert (again.starter, again.map) == (changed.starter, changed.map)
    raw = to_toml_dict(config)
    del raw["trust"], raw["map"]
    assert from_toml_dict(tmp_path, raw).starter == StarterLineConfig()
    assert from_toml_dict(tmp_path, raw).map == MapConfig()


@pytest.mark.parametrize(("section", "values", "says"), [
    ("starter", {"limit_out": "-5"}, "trust.starter.limit_out"),
    ("starter", {"limit_in": "lots"}, "trust.starter.limit_in"),
    ("starter", {"limit_in": "1.234"}, "more decimals than the currency"),
    ("starter", {"rate": "0"}, "trust.starter.rate"),
    ("starter", {"neighbours": ["everyone"]}, "trust.starter.neighbours"),
    ("starter", {"enabled": "yes"}, "trust.starter.enabled"),
    ("starter", {"limits": "20"}, "unknown [trust.starter] settings: limits"),
    ("map", {"public_balances": "no"}, "[map]"),
    ("map", {"balances": True}, "[map]"),
])
def test_starter_and_map__bad_values_are_refused_with_the_key_named(
    tmp_path: Path, section: str, values: dict[str, Any], says: str,
) -> None:
    raw = to_toml_dict(make_config(tmp_path / "node"))
    if section == "starter":
        raw["trust"]["starter"].update(values)
    else:
        raw["map"].update(values)
    with pytest.raises(ConfigError, match=rf".*{says.replace('[', '.').replace(']', '.')}"):
        from_toml_dict(tmp_path, raw)
