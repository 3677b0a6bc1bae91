"""Configuration: validation messages, TOML round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from meshnode.config import (
    Config,
    ConfigError,
    load_config,
    validate,
    validate_handle,
    validate_public_url,
)
from tests.conftest import make_config


@pytest.mark.parametrize("handle", ["", "Voisins", "-x", "a" * 31, "voi sins", "é"])
def test_validate_handle__rejects_bad_handles(handle: str) -> None:
    with pytest.raises(ConfigError, match="invalid handle"):
        validate_handle(handle)


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "http://", "localhost:8080", "http://h/?q=1", "http://u:p@h", "http://h:99999"],
)
def test_validate_public_url__rejects_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        validate_public_url(url)


def test_validate_public_url__strips_trailing_slash() -> None:
    assert validate_public_url("https://voisins.example/") == "https://voisins.example"


def test_load_config__round_trips_what_init_wrote(tmp_path: Path) -> None:
    config = make_config(tmp_path / "n", port=8123, default_locale="en")
    loaded = load_config(tmp_path / "n")
    assert loaded == config
    assert loaded.currency.decimals == 2


def test_load_config__missing_directory_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="meshnode init"):
        load_config(tmp_path / "nothing")


def test_load_config__missing_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[community]\nname = "x"\n')
    with pytest.raises(ConfigError, match="handle"):
        load_config(tmp_path)


def test_validate__rejects_bad_currency_decimals(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, name="n", handle="n", public_url="http://h")
    bad = replace(config, currency=replace(config.currency, decimals=5))
    with pytest.raises(ConfigError, match="decimals"):
        validate(bad)
