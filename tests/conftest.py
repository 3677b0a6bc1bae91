"""Shared fixtures: a real node (real SQLite file, real keys) behind an aiohttp test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.services.node import init_node
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT

START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class FakeClock:
    """A clock tests move by hand; passed to create_app(clock=...)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class TestMember:
    """A member created for a test, with a working API token."""

    __test__ = False  # not a test class, despite the name

    row: MemberRow
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeMember = Callable[..., Awaitable[TestMember]]


def make_config(data_dir: Path, **overrides: object) -> Config:
    """Create a fresh node on disk and return its config."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "name": "Les Voisins du Canal",
        "handle": "voisins",
        "public_url": "http://127.0.0.1:8080",
        # Single-node tests need no mDNS; tests/federation/test_discovery_*.py turn it on.
        "discovery_policy": "off",
    }
    values.update(overrides)
    return init_node(Config(**values))  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def node_config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "node")


@pytest.fixture
async def client(aiohttp_client, node_config: Config, clock: FakeClock) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(node_config, clock=clock))


@pytest.fixture
def ctx(client: TestClient) -> NodeContext:
    return client.app[CONTEXT]


@pytest.fixture
def make_member(ctx: NodeContext) -> MakeMember:
    async def factory(username: str = "alice", *, admin: bool = False) -> TestMember:
        row = await members.add_member(ctx, username=username, password=PASSWORD, is_admin=admin)
        token = await members.create_token(ctx, username)
        return TestMember(row=row, token=token.secret)

    return factory


@pytest.fixture
async def alice(make_member: MakeMember) -> TestMember:
    return await make_member("alice", admin=True)


@pytest.fixture
async def bob(make_member: MakeMember) -> TestMember:
    return await make_member("bob")


def ride_listing(**overrides: object) -> dict[str, object]:
    """A valid ride offer relative to the FakeClock start."""
    listing: dict[str, object] = {
        "kind": "offer",
        "category": "ride",
        "title": "Covoiturage vers Lyon, départ du canal",
        "description": "Trois places, **vélo** pliant accepté.",
        "price": {"mode": "amount", "amount": "4.50"},
        "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357},
        "details": {"from": "Canal", "to": "Lyon", "departure": "2026-12-05T09:00:00+01:00",
                    "seats": 3},
    }
    listing.update(overrides)
    return listing
