"""What every use case needs: configuration, store, the node's keys and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from meshnode.config import Config
from meshnode.keys import Identity, KeyVault, load_node_identity
from meshnode.services.ratelimit import SlidingWindow
from meshnode.store import Store


def utc_now() -> datetime:
    """The real clock, read only at the edges and passed inward."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class NodeContext:
    """Dependencies of the service layer, built once per process (app or CLI command)."""

    config: Config
    store: Store
    identity: Identity = field(repr=False)
    vault: KeyVault = field(repr=False)
    clock: Callable[[], datetime] = utc_now
    # What each member created lately, per kind (services/member_limits.py).
    member_limits: SlidingWindow[tuple[int, str]] = field(
        default_factory=SlidingWindow, repr=False, compare=False)

    @classmethod
    async def open(
        cls, config: Config, *, clock: Callable[[], datetime] = utc_now
    ) -> NodeContext:
        """Open the store and load the keys of the node described by ``config``."""
        identity = load_node_identity(config.keys_dir)
        vault = KeyVault.from_dir(config.keys_dir)
        store = await Store.open(config.database_path, synchronous=config.synchronous)
        return cls(config=config, store=store, identity=identity, vault=vault, clock=clock)

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()
