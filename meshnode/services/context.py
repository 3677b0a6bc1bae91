"""What every use case needs: configuration, store, the node's keys and a clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from meshnode.config import Config
from meshnode.keys import Identity, KeyVault, load_node_identity
from meshnode.services.images import ImageDecoder, ImageLimits
from meshnode.services.ratelimit import SlidingWindow
from meshnode.services.readcache import MAX_VIEWS, ReadCache
from meshnode.services.verified import VerifiedDocuments
from meshnode.store import Store
from meshnode.store.group import GroupCommit
from meshnode.store.match_counts import MatchCounts

T = TypeVar("T")


def utc_now() -> datetime:
    """The real clock, read only at the edges and passed inward."""
    return datetime.now(UTC).replace(microsecond=0)


def image_decoder(config: Config) -> ImageDecoder:
    """The node's one image decoder, with the limits of its ``[server]`` configuration."""
    limits = ImageLimits(max_bytes=config.max_image_bytes, max_pixels=config.max_image_pixels,
                         decode_budget=config.image_decode_mib * 1024 * 1024)
    return ImageDecoder(limits, max_uploads=config.max_concurrent_uploads)


@dataclass(frozen=True)
class NodeContext:
    """Dependencies of the service layer, built once per process (app or CLI command)."""

    config: Config
    store: Store
    identity: Identity = field(repr=False)
    vault: KeyVault = field(repr=False)
    clock: Callable[[], datetime] = utc_now
    images: ImageDecoder = field(
        default_factory=lambda: ImageDecoder(ImageLimits(max_bytes=5 * 1024 * 1024)),
        repr=False, compare=False)
    # What each member created lately, per kind (services/member_limits.py).
    member_limits: SlidingWindow[tuple[int, str]] = field(
        default_factory=SlidingWindow, repr=False, compare=False)
    # Rows every page reads, kept while the database is unchanged (services/readcache.py).
    reads: ReadCache = field(default_factory=ReadCache, repr=False, compare=False)
    views: ReadCache = field(default_factory=lambda: ReadCache(max_entries=MAX_VIEWS),
                             repr=False, compare=False)
    # Stored documents already verified with their author's key (services/verified.py).
    verified: VerifiedDocuments = field(default_factory=VerifiedDocuments, repr=False,
                                        compare=False)
    # Concurrent publishes share one transaction (services/listings.create_listing).
    listing_writes: GroupCommit[Any, Any] = field(default_factory=GroupCommit, repr=False,
                                                 compare=False)
    # Text searches' numbers of matches, for their plan choice (store/match_counts.py).
    match_counts: MatchCounts = field(default_factory=MatchCounts, repr=False, compare=False)

    @classmethod
    async def open(
        cls, config: Config, *, clock: Callable[[], datetime] = utc_now
    ) -> NodeContext:
        """Open the store and load the keys of the node described by ``config``."""
        identity = load_node_identity(config.keys_dir)
        vault = KeyVault.from_dir(config.keys_dir)
        store = await Store.open(config.database_path, synchronous=config.synchronous)
        return cls(config=config, store=store, identity=identity, vault=vault, clock=clock,
                   images=image_decoder(config))

    async def cached(self, key: Hashable, load: Callable[[], Awaitable[T]], *,
                     stamp: Hashable = None, view: bool = False) -> T:
        """``load()``'s value, read again only once anyone has committed since (or for
        another ``stamp``, such as the clock's second). ``key`` must name whose data it is
        (a member id...). ``view``: a whole page's reads, kept in the smaller cache."""
        cache = self.views if view else self.reads
        return await cache.get(self.store.data_version(), key, load, stamp=stamp)

    async def close(self) -> None:
        """Stop the image decoding thread and close the store."""
        self.images.close()
        await self.store.close()
