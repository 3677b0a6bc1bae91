"""Shared fixtures for protocol tests: the published conformance vectors in tests/vectors/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Copies of the published vectors live inside the repository (tests/vectors/README.md).
VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"


def load_vector(name: str) -> dict[str, Any]:
    """Load one JSON vector file by name."""
    data: dict[str, Any] = json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def jcs_vector() -> dict[str, Any]:
    return load_vector("eddsa-jcs-2022.json")


@pytest.fixture(scope="session")
def fep_vector() -> dict[str, Any]:
    return load_vector("fep-8b32.json")


@pytest.fixture(scope="session")
def rfc9421_vector() -> dict[str, Any]:
    return load_vector("rfc9421-ed25519.json")
