"""The read cache behind the members' pages (issue 17): what it serves, and when it reloads."""

from __future__ import annotations

import asyncio

import pytest

from meshnode.services.readcache import ReadCache


class Loader:
    """Counts loads and hands back the value it holds now (the "database")."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        return self.value


async def test_readcache__serves_the_entry_while_the_version_is_unchanged() -> None:
    # Given an entry read at version 2
    cache, load = ReadCache(), Loader({"balance": 5})
    await cache.get(2, ("wallet", 1), load)
    # When it is asked again at the same version
    load.value = {"balance": 9}
    found = await cache.get(2, ("wallet", 1), load)
    # Then the store is not read again
    assert found == {"balance": 5}
    assert load.calls == 1


async def test_readcache__reloads_once_anyone_committed() -> None:
    # Given an entry read at version 2, then a commit (version 4)
    cache, load = ReadCache(), Loader(5)
    await cache.get(2, "k", load)
    load.value = 9
    # When it is asked at the new version
    found = await cache.get(4, "k", load)
    # Then the new value is read
    assert (found, load.calls) == (9, 2)


async def test_readcache__reloads_for_another_stamp() -> None:
    # Given an entry read for the clock's second "10:00:00"
    cache, load = ReadCache(), Loader(1)
    await cache.get(2, "k", load, stamp="10:00:00")
    load.value = 2
    # Then the same second is served, the next one is read again
    assert await cache.get(2, "k", load, stamp="10:00:00") == 1
    assert await cache.get(2, "k", load, stamp="10:00:01") == 2


async def test_readcache__keys_are_kept_apart() -> None:
    # Given alice's wallet cached
    cache = ReadCache()
    await cache.get(2, ("wallet", 1), Loader("alice's"))
    # When bob's is asked for at the same version
    found = await cache.get(2, ("wallet", 2), Loader("bob's"))
    # Then bob gets his own
    assert found == "bob's"


async def test_readcache__none_is_not_kept() -> None:
    # Given a load that finds nothing (an unknown session cookie)
    cache, load = ReadCache(), Loader(None)
    await cache.get(2, "made-up", load)
    await cache.get(2, "made-up", load)
    # Then nothing was stored and each ask reads again
    assert len(cache) == 0
    assert load.calls == 2


async def test_readcache__size_is_capped_dropping_the_least_recently_used() -> None:
    # Given a cache of 3 entries filled with a, b, c, then a used again
    cache = ReadCache(max_entries=3)
    for key in "abc":
        await cache.get(2, key, Loader(key))
    await cache.get(2, "a", Loader("a"))
    # When a fourth key comes
    await cache.get(2, "d", Loader("d"))
    # Then b (the least recently used) went, and the cache holds 3
    assert len(cache) == 3
    load = Loader("b again")
    assert await cache.get(2, "b", load) == "b again"
    assert load.calls == 1


async def test_readcache__a_commit_empties_it() -> None:
    # Given three entries read at version 2
    cache = ReadCache()
    for key in "abc":
        await cache.get(2, key, Loader(key))
    # When a page asks for one key at version 4 (someone committed)
    await cache.get(4, "a", Loader("a"))
    # Then only what was read since the commit is held
    assert len(cache) == 1


async def test_readcache__a_read_begun_before_a_commit_is_not_kept() -> None:
    # Given a slow read begun at version 2, and another page that saw version 4 meanwhile
    cache = ReadCache()

    async def slow() -> str:
        await cache.get(4, "other", Loader("new"))
        return "old"

    # When the slow read ends
    found = await cache.get(2, "k", slow)
    # Then its value is returned but not kept
    assert found == "old"
    load = Loader("fresh")
    assert await cache.get(4, "k", load) == "fresh"
    assert load.calls == 1


class SlowLoader(Loader):
    """A load that waits for ``release`` before answering (a read on its way)."""

    def __init__(self, value: object, *, fail: bool = False) -> None:
        super().__init__(value)
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> object:
        self.calls += 1
        await self.release.wait()
        if self.fail and self.calls == 1:
            raise OSError("disk I/O error")
        return self.value


async def test_readcache__requests_missing_a_key_being_read_share_that_read() -> None:
    # Given fifty requests that miss the same entry at the same moment (home's cards when
    # the clock's second turns)
    cache, load = ReadCache(), SlowLoader(["card"])
    waiting = [asyncio.create_task(cache.get(3, "home", load, stamp=7)) for _ in range(50)]
    await asyncio.sleep(0)
    # When the one read on its way answers
    load.release.set()
    found = await asyncio.gather(*waiting)
    # Then the store was read once and every request got its value
    assert load.calls == 1
    assert found == [["card"]] * 50


async def test_readcache__a_failed_shared_read_lets_each_waiter_read_for_itself() -> None:
    # Given a read that fails while two other requests wait for it
    cache, load = ReadCache(), SlowLoader(5, fail=True)
    first = asyncio.create_task(cache.get(3, "k", load))
    others = [asyncio.create_task(cache.get(3, "k", load)) for _ in range(2)]
    await asyncio.sleep(0)
    load.release.set()
    # Then the first request gets the error and the waiters read again themselves
    with pytest.raises(OSError, match="disk I/O error"):
        await first
    assert await asyncio.gather(*others) == [5, 5]
    assert load.calls == 3


async def test_readcache__a_cancelled_shared_read_does_not_cancel_its_waiters() -> None:
    # Given a read whose request goes away (a closed connection) while another waits for it
    cache, load = ReadCache(), SlowLoader(5)
    first = asyncio.create_task(cache.get(3, "k", load))
    other = asyncio.create_task(cache.get(3, "k", load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    load.release.set()
    # Then the waiter reads for itself and gets the value; nothing is left on its way
    assert await other == 5
    assert first.cancelled()
    assert cache._loading == {}
