"""Reads that rarely change, kept between requests while the database has not changed.

Every member page used to ask the reader thread for the same rows on every request: the
session and its member, the navigation badges, the peers' community actors, the community
settings, and the page's own reads (wallet, "Mes réservations"). Each ask is a thread hop;
under 50 connections the hops were a good part of a page's CPU (issue 17).

An entry is kept with the database's ``data_version`` read *before* loading it
(``Store.data_version``: it changes when anyone commits, this process or another) and is
served only while that number is unchanged, so a payment, a new message, a logout or a
``meshnode`` command run beside the node shows on the very next page. Entries that depend on
the clock also carry a ``stamp`` (the clock's second they were read for) and are served
only for that same stamp. Keys name whose data it is (a member id, a session id): one
member's entry is never another's. A new version empties the cache (everything in it was
read before the commit), so it holds only what was read since the last commit, and at most
``max_entries`` entries (least recently used dropped first): the node keeps one cache of
small rows and a smaller one of page views.

A key being read is read once: requests that miss it while its read is on the way wait for
that read instead of starting their own (a shared entry such as home's cards, reloaded each
second, would otherwise be read by every request in flight at that moment: a stampede).
If that read fails or its request is cancelled, each waiter reads for itself.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")

MAX_ENTRIES = 512
MAX_VIEWS = 32  # whole page views (a wallet's 60 entries...): fewer
_NO_VALUE = object()  # what a failed or cancelled read gives those waiting for it


@dataclass(frozen=True)
class _Entry:
    stamp: Hashable
    value: Any


class ReadCache:
    """A bounded map of key -> value read from the store, valid for one ``data_version``."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._version = -1  # the data_version every kept entry was read at
        # reads on the way, by (key, stamp, version): at most one per key being read
        self._loading: dict[tuple[Hashable, Hashable, int], asyncio.Future[Any]] = {}
        self.loads = 0  # reads that went to the store (for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, version: int, key: Hashable, load: Callable[[], Awaitable[T]], *,
                  stamp: Hashable = None) -> T:
        """The value for ``key`` read at database ``version`` (and for ``stamp``); ``load()``
        when absent or read at another version or stamp. ``None`` is never kept."""
        if version != self._version:  # every entry was read before a commit: all stale
            self._entries.clear()
            self._version = version
        entry = self._entries.get(key)
        if entry is not None and entry.stamp == stamp:
            self._entries.move_to_end(key)
            value: T = entry.value
            return value
        flight = (key, stamp, version)
        if (pending := self._loading.get(flight)) is not None:
            shared = await asyncio.shield(pending)
            if shared is not _NO_VALUE:
                return cast("T", shared)
            return await self._load(version, key, load, stamp)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[flight] = done
        try:
            value = await self._load(version, key, load, stamp)
        except BaseException:
            done.set_result(_NO_VALUE)
            raise
        else:
            done.set_result(value)
        finally:
            del self._loading[flight]
        return value

    async def _load(self, version: int, key: Hashable, load: Callable[[], Awaitable[T]],
                    stamp: Hashable) -> T:
        """``load()``, its value kept unless None or read across a commit."""
        value = await load()
        self.loads += 1
        # None is not kept: made-up keys (a random cookie) push nothing out. A value whose
        # read began before the latest commit another page saw is not kept either.
        if value is None or version != self._version:
            return value
        self._entries[key] = _Entry(stamp, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything (the next read of each key goes to the store)."""
        self._entries.clear()
