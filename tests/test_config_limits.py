"""``[limits]`` in config.toml: defaults, round trip, and clear errors for bad values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshnode.config import ConfigError, LimitsConfig, from_toml_dict, to_toml_dict
from tests.conftest import make_config


def _raw(tmp_path: Path, **limits: Any) -> dict[str, Any]:
    raw = to_toml_dict(make_config(tmp_path / "node"))
    raw["limits"] = limits
    return raw


def test_limits__defaults_are_generous_and_round_trip(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node")
    assert config.limits == LimitsConfig(listings_per_hour=60, messages_per_hour=300,
                                         payment_requests_per_hour=60)
    changed = replace(config, limits=LimitsConfig(listings_per_hour=5))
    assert from_toml_dict(config.data_dir, to_toml_dict(changed)).limits == changed.limits


def test_limits__missing_section_means_defaults(tmp_path: Path) -> None:
    raw = to_toml_dict(make_config(tmp_path / "node"))
    del raw["limits"]
    assert from_toml_dict(tmp_path, raw).limits == LimitsConfig()


@pytest.mark.parametrize(("limits", "says"), [
    ({"listings_per_hour": -1}, "limits.listings_per_hour"),
    ({"messages_per_hour": True}, "limits.messages_per_hour"),
    ({"payment_requests_per_hour": 10**7}, "limits.payment_requests_per_hour"),
    ({"listings_per_hour": "60"}, "limits.listings_per_hour"),
    ({"listing_per_hour": 60}, "listing_per_hour"),
])
def test_limits__bad_values_are_a_config_error_naming_the_key(
    tmp_path: Path, limits: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        from_toml_dict(tmp_path, _raw(tmp_path, **limits))
