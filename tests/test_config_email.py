"""``[email]`` in config.toml: absent by default, read from TOML (``from`` included), written
back, and clear errors for bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from meshnode.config import ConfigError, EmailConfig, from_toml_dict, to_toml_dict
from tests.conftest import make_config

GOOD = {"host": "smtp.canal.example", "port": 587, "security": "starttls",
        "user": "voisins", "password": "s3cret", "from": "voisins@canal.example",
        "digest_hour": 8}


def _raw(tmp_path: Path, **email: Any) -> dict[str, Any]:
    raw = to_toml_dict(make_config(tmp_path / "node"))
    raw["email"] = email
    return raw


def test_email_config__absent_by_default_and_not_written(tmp_path: Path) -> None:
    config = make_config(tmp_path / "node")
    assert config.email is None
    assert "email" not in to_toml_dict(config)


def test_email_config__read_from_toml_and_written_back(tmp_path: Path) -> None:
    text = tomli_w.dumps(_raw(tmp_path, **GOOD))
    config = from_toml_dict(tmp_path, tomllib.loads(text))
    assert config.email == EmailConfig(host="smtp.canal.example", port=587,
                                       security="starttls", user="voisins", password="s3cret",
                                       from_address="voisins@canal.example", digest_hour=8)
    assert "s3cret" not in repr(config)  # never in logs or tracebacks
    assert to_toml_dict(config)["email"] == GOOD


def test_email_config__defaults_for_the_optional_keys(tmp_path: Path) -> None:
    config = from_toml_dict(tmp_path, _raw(tmp_path, host="localhost",
                                           **{"from": "a@canal.example"}))
    assert config.email == EmailConfig(host="localhost", from_address="a@canal.example")
    assert (config.email.port, config.email.security, config.email.digest_hour) == (
        587, "starttls", 7)


@pytest.mark.parametrize(("changes", "says"), [
    ({"security": "ssl"}, "email.security"),
    ({"port": 0}, "email.port"),
    ({"digest_hour": 24}, "email.digest_hour"),
    ({"from": "not an address"}, "email.from"),
    ({"from": "a@b.example\r\nBcc: x@y.example"}, "email.from"),
    ({"host": ""}, "email.host"),
    ({"password": ""}, "email.user and email.password"),
    ({"sender": "x"}, "unknown [email] settings: sender"),
])
def test_email_config__bad_values_are_refused_with_a_clear_message(
    tmp_path: Path, changes: dict[str, Any], says: str,
) -> None:
    with pytest.raises(ConfigError, match=rf"{says}".replace("[", r"\[").replace("]", r"\]")):
        from_toml_dict(tmp_path, _raw(tmp_path, **{**GOOD, **changes}))


def test_email_config__from_is_required(tmp_path: Path) -> None:
    values = {k: v for k, v in GOOD.items() if k != "from"}
    with pytest.raises(ConfigError, match="needs from"):
        from_toml_dict(tmp_path, _raw(tmp_path, **values))
