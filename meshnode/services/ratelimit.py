"""Login throttling: failed attempts counted per account and per address in a sliding window.

Kept in memory (one node process): a restart forgets the counts, which is acceptable for a
neighbourhood node and keeps every failed login from costing a database write.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=15)
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20
MAX_TRACKED_KEYS = 10_000


@dataclass
class LoginRateLimiter:
    """Refuse a login once an account or an address failed too often within ``window``."""

    window: timedelta = WINDOW
    max_per_account: int = MAX_PER_ACCOUNT
    max_per_address: int = MAX_PER_ADDRESS
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, account: str, address: str, now: datetime) -> int:
        """Seconds to wait before trying again (0: allowed now)."""
        waits = []
        for key, limit in ((f"u:{account}", self.max_per_account),
                           (f"a:{address}", self.max_per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(int((times[0] + self.window - now).total_seconds()) + 1)
        return max(waits, default=0)

    def record_failure(self, account: str, address: str, now: datetime) -> None:
        """Count one failed attempt against both the account and the address."""
        if len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.clear()  # bounded memory under a spray of random usernames
        for key in (f"u:{account}", f"a:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def reset_account(self, account: str) -> None:
        """Forget an account's failures after a successful login."""
        self._failures.pop(f"u:{account}", None)
