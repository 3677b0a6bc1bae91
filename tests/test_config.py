"""Configuration: validation messages, TOML round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from meshnode.config import (
    Config,
    ConfigError,
    InboxLimits,
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


def test_load_config__inbox_limits_read_from_the_federation_section(tmp_path: Path) -> None:
    # Given an admin who shortened retention and tightened strangers' quota
    make_config(tmp_path / "n")
    path = tmp_path / "n" / "config.toml"
    text = path.read_text().replace("inbox_retention_days = 7", "inbox_retention_days = 2")
    path.write_text(text.replace("inbox_stranger_rows_per_hour = 120",
                                 "inbox_stranger_rows_per_hour = 10"))
    # Then the node reads them, and keeps the defaults for the rest
    limits = load_config(tmp_path / "n").inbox
    assert (limits.retention_days, limits.stranger_rows_per_hour) == (2, 10)
    assert limits.peer_rows_per_hour == InboxLimits().peer_rows_per_hour


@pytest.mark.parametrize("change", [{"retention_days": 0}, {"stranger_rows_per_hour": 0},
                                    {"key_fetches_per_hour": -1}])
def test_validate__rejects_inbox_limits_below_one(tmp_path: Path, change: dict[str, int]) -> None:
    config = Config(data_dir=tmp_path, name="n", handle="n", public_url="http://h")
    with pytest.raises(ConfigError, match=r"federation\.inbox_"):
        validate(replace(config, inbox=replace(config.inbox, **change)))


def test_write_config__file_is_private_to_the_node_user(tmp_path: Path) -> None:
    # An admin may add the SMTP password to config.toml later: nobody else may read it
    from meshnode.config import Config, write_config

    write_config(Config(data_dir=tmp_path, name="x", handle="x", public_url="http://127.0.0.1:1"))
    assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o600
