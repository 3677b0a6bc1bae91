"""Throttles: failed logins, and what one member may create per hour.

Both live in memory. A node is one process (``services/node.exclusive_lock`` refuses a second
``meshnode run`` on the same data directory), so there is nobody to share the counts with,
and a failed login does not cost a database write. A restart forgets the counts; an
attacker cannot cause one.

Every table is bounded and evicts its least recently used entry; none is ever cleared. The
login tables keep two LRU tiers: keys still under their limit, and keys at it. A spray of
one-off keys (random usernames) can only push out other one-off keys, never a key that is
holding someone back (issue 12: 10,400 failures for random usernames from 520 addresses used
to clear the whole table and let a locked account be guessed again).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from meshnode.errors import RateLimitedError
from meshnode.protocol.translatable import Text

K = TypeVar("K", bound=Hashable)

LOGIN_WINDOW = timedelta(minutes=15)
TABLE_CAPACITY = 10_000
IPV6_PREFIX = 64  # one IPv6 subscriber gets a whole /64: count it as one address


@dataclass(slots=True)
class Strikes:
    """Failures of one key: how many, and when the last one was (they expire together)."""

    count: int
    last: datetime


class StrikeTable:
    """Failure counts per key, forgotten ``window`` after the key's last failure.

    Two LRU tiers of ``capacity`` keys each: ``counting`` (below ``limit``) and ``held``
    (at or above it). A key moves to ``held`` when it reaches ``limit``.
    """

    def __init__(self, *, limit: int, window: timedelta, capacity: int = TABLE_CAPACITY) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._counting: OrderedDict[str, Strikes] = OrderedDict()
        self._held: OrderedDict[str, Strikes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counting) + len(self._held)

    def get(self, key: str, now: datetime) -> Strikes | None:
        """The key's live strikes (None if it has none, or they expired)."""
        for tier in (self._held, self._counting):
            strikes = tier.get(key)
            if strikes is None:
                continue
            if now - strikes.last >= self.window:
                del tier[key]
                return None
            tier.move_to_end(key)
            return strikes
        return None

    def add(self, key: str, now: datetime) -> Strikes:
        """Count one failure for ``key``."""
        strikes = self.get(key, now)
        if strikes is None:
            strikes = Strikes(0, now)
        self._counting.pop(key, None)
        self._held.pop(key, None)
        strikes.count += 1
        strikes.last = now
        tier = self._held if strikes.count >= self.limit else self._counting
        tier[key] = strikes
        if len(tier) > self.capacity:
            tier.popitem(last=False)
        return strikes

    def forget(self, key: str) -> None:
        """Drop a key's strikes (after a successful login)."""
        self._counting.pop(key, None)
        self._held.pop(key, None)


def address_key(address: str) -> str:
    """The throttled unit of a client address: IPv4 as is, IPv6 by its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


@dataclass(frozen=True)
class LoginPolicy:
    """The login throttle's numbers. Per-pair lockout and a per-account delay rather than an
    account lockout, which would let anyone lock the owner out: OWASP Authentication Cheat
    Sheet, https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html
    ("Login Throttling", "Account Lockout")."""

    window: timedelta = LOGIN_WINDOW
    # One address guessing one account: refused for ``window`` after this many failures.
    per_pair: int = 5
    # One address, any accounts: refused for ``window`` after this many failures.
    per_address: int = 20
    # One account, all addresses: after this many failures each further attempt waits
    # 1, 2, 4… seconds after the last failure, at most ``max_account_delay``. Never a
    # lockout: the owner at a fresh address waits at most that long.
    account_free: int = 10
    max_account_delay: timedelta = timedelta(seconds=60)
    capacity: int = TABLE_CAPACITY


def _wait(until: datetime, now: datetime) -> int:
    seconds = (until - now).total_seconds()
    return 0 if seconds <= 0 else int(seconds) + (0 if seconds.is_integer() else 1)


class LoginThrottle:
    """Throttle per (account, address), per address, and a growing delay per account."""

    def __init__(self, policy: LoginPolicy | None = None) -> None:
        self.policy = policy or LoginPolicy()
        p = self.policy
        self.pairs = StrikeTable(limit=p.per_pair, window=p.window, capacity=p.capacity)
        self.addresses = StrikeTable(limit=p.per_address, window=p.window, capacity=p.capacity)
        self.accounts = StrikeTable(limit=p.account_free, window=p.window, capacity=p.capacity)

    def _account_delay(self, count: int) -> timedelta:
        extra = count - self.policy.account_free
        if extra < 0:
            return timedelta(0)
        return min(self.policy.max_account_delay, timedelta(seconds=2 ** min(extra, 30)))

    def retry_after(self, account: str, address: str, now: datetime) -> int:
        """Seconds to wait before this address may try this account (0: allowed now)."""
        waits = [0]
        for table, key in ((self.pairs, _pair(account, address)),
                           (self.addresses, address_key(address))):
            strikes = table.get(key, now)
            if strikes is not None and strikes.count >= table.limit:
                waits.append(_wait(strikes.last + table.window, now))
        strikes = self.accounts.get(account, now)
        if strikes is not None:
            waits.append(_wait(strikes.last + self._account_delay(strikes.count), now))
        return max(waits)

    def record_failure(self, account: str, address: str, now: datetime) -> None:
        """Count one failed attempt against the pair, the address and the account."""
        self.pairs.add(_pair(account, address), now)
        self.addresses.add(address_key(address), now)
        self.accounts.add(account, now)

    def record_success(self, account: str, address: str) -> None:
        """Forget the pair's failures; the account's slowdown fades with its window."""
        self.pairs.forget(_pair(account, address))


def _pair(account: str, address: str) -> str:
    return f"{account}\x00{address_key(address)}"


@dataclass
class SlidingWindow(Generic[K]):
    """At most ``limit`` events per key in any ``window``; bounded LRU over keys."""

    capacity: int = TABLE_CAPACITY
    _events: OrderedDict[K, deque[datetime]] = field(default_factory=OrderedDict)

    def take(self, key: K, *, limit: int, window: timedelta, now: datetime) -> int:
        """Count one event now and return 0, or count nothing and return seconds to wait."""
        times = self._events.pop(key, None) or deque()
        while times and times[0] <= now - window:
            times.popleft()
        self._events[key] = times
        if len(self._events) > self.capacity:
            self._events.popitem(last=False)
        if len(times) >= limit:
            return max(1, _wait(times[-limit] + window, now))
        times.append(now)
        return 0

    def give_back(self, key: K, at: datetime) -> None:
        """Undo one ``take`` made at ``at`` (the action it allowed did not happen)."""
        times = self._events.get(key)
        if times is not None and at in times:
            times.remove(at)


def rate_limited(what: Text, limit: int, retry_after: int) -> RateLimitedError:
    """The error for a member who used up a per-hour allowance."""
    minutes = max(1, -(-retry_after // 60))
    return RateLimitedError(
        Text("at most %(limit)s %(what)s per hour: try again in %(minutes)s min",
             limit=limit, what=what, minutes=minutes),
        retry_after=retry_after,
    )
