"""Login throttle and per-member windows: bounded, never cleared, never locking an owner out.

The throttle takes ``now`` as a parameter, so these tests step time by hand. The spray test
drives the throttle exactly as ``services/sessions.login`` does (ask ``retry_after``, and
count a failure only when the attempt was let through) without paying 10,400 Argon2
verifies; ``tests/services/test_sessions.py`` covers the same rules through real logins.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from meshnode.services.ratelimit import (
    LoginPolicy,
    LoginThrottle,
    SlidingWindow,
    StrikeTable,
    address_key,
)

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
ATTACKER = "198.51.100.66"


def _attempt(throttle: LoginThrottle, account: str, address: str, now: datetime) -> bool:
    """One wrong password, as sessions.login handles it; False if it was refused (429)."""
    if throttle.retry_after(account, address, now):
        return False
    throttle.record_failure(account, address, now)
    return True


def test_login_throttle__spray_of_10400_random_usernames_from_520_addresses_keeps_a_lock() -> None:
    # Given an attacker who locked alice from their address
    throttle = LoginThrottle()
    for second in range(5):
        assert _attempt(throttle, "alice", ATTACKER, NOW + timedelta(seconds=second))
    assert throttle.retry_after("alice", ATTACKER, NOW + timedelta(seconds=5)) > 0
    # When 520 other addresses spray 20 failures each for random usernames (issue 12)
    rng = random.Random(12)
    now = NOW + timedelta(seconds=10)
    let_through = 0
    for host in range(520):
        address = f"10.{host // 250}.{host % 250}.1"
        for _ in range(20):
            name = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=12))
            let_through += _attempt(throttle, name, address, now)
    # Then all 10,400 failures were counted, no table grew past its bound…
    assert let_through == 10_400
    capacity = throttle.policy.capacity
    for table in (throttle.pairs, throttle.addresses, throttle.accounts):
        assert len(table) <= 2 * capacity
    # …and the attacker still may not try alice again, for the rest of the window
    later = now + timedelta(minutes=5)
    assert throttle.retry_after("alice", ATTACKER, later) > 0
    assert not _attempt(throttle, "alice", ATTACKER, later)


def test_login_throttle__owner_at_a_fresh_address_is_slowed_never_locked_out() -> None:
    # Given 200 failures on alice from 40 addresses (5 each: every pair is locked)
    throttle = LoginThrottle()
    now = NOW
    for host in range(40):
        for _ in range(5):
            now += timedelta(seconds=61)
            assert _attempt(throttle, "alice", f"192.0.2.{host}", now)
    # When the owner comes from a fresh address right after the last failure
    wait = throttle.retry_after("alice", "203.0.113.7", now)
    # Then she is asked to wait at most the account delay (60 s), not locked out
    assert 0 < wait <= 60
    assert throttle.retry_after("alice", "203.0.113.7", now + timedelta(seconds=wait)) == 0
    # while the attackers' own addresses stay locked for the whole window
    assert throttle.retry_after("alice", "192.0.2.39", now + timedelta(seconds=wait)) > 60


def test_login_throttle__five_failures_lock_only_that_address_for_that_account() -> None:
    throttle = LoginThrottle()
    for second in range(5):
        assert _attempt(throttle, "alice", ATTACKER, NOW + timedelta(seconds=second))
    now = NOW + timedelta(seconds=5)
    assert throttle.retry_after("alice", ATTACKER, now) == 15 * 60 - 1
    assert throttle.retry_after("bob", ATTACKER, now) == 0  # other accounts: same address ok
    assert throttle.retry_after("alice", "203.0.113.7", now) == 0  # 5 < account_free (10)
    assert throttle.retry_after("alice", ATTACKER, now + timedelta(minutes=15)) == 0


def test_login_throttle__account_delay_doubles_up_to_its_cap() -> None:
    throttle = LoginThrottle(LoginPolicy(account_free=3, max_account_delay=timedelta(seconds=8)))
    now = NOW
    waits = []
    for host in range(8):
        now += timedelta(seconds=10)
        assert _attempt(throttle, "alice", f"192.0.2.{host}", now)
        waits.append(throttle.retry_after("alice", "203.0.113.7", now))
    assert waits == [0, 0, 1, 2, 4, 8, 8, 8]


def test_login_throttle__success_forgets_the_pair_not_the_account() -> None:
    throttle = LoginThrottle(LoginPolicy(account_free=2))
    for step in range(4):
        assert _attempt(throttle, "alice", "192.0.2.1", NOW + timedelta(seconds=10 * step))
    throttle.record_success("alice", "192.0.2.1")
    assert throttle.pairs.get("alice\x00192.0.2.1", NOW) is None
    strikes = throttle.accounts.get("alice", NOW + timedelta(seconds=40))
    assert strikes is not None
    assert strikes.count == 4


def test_login_throttle__ipv6_addresses_of_one_64_share_a_count() -> None:
    throttle = LoginThrottle()
    for n in range(20):
        assert _attempt(throttle, f"user{n}", f"2001:db8:1:2::{n + 1:x}", NOW)
    assert throttle.retry_after("alice", "2001:db8:1:2:ffff::1", NOW) > 0
    assert throttle.retry_after("alice", "2001:db8:1:3::1", NOW) == 0
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("not an address") == "not an address"


def test_strike_table__evicts_least_recently_used_and_keeps_held_keys() -> None:
    table = StrikeTable(limit=2, window=timedelta(minutes=15), capacity=3)
    table.add("held", NOW)
    table.add("held", NOW)  # at its limit: moves to the held tier
    for n in range(100):
        table.add(f"one-off {n}", NOW)
    assert len(table) == 4  # 3 counting + 1 held, never cleared
    held = table.get("held", NOW)
    assert held is not None
    assert held.count == 2
    assert table.get("one-off 0", NOW) is None  # the oldest one-off keys went first
    assert table.get("one-off 99", NOW) is not None
    assert table.get("held", NOW + timedelta(minutes=15)) is None  # expired


def test_sliding_window__refuses_past_the_limit_then_slides() -> None:
    window: SlidingWindow[str] = SlidingWindow()
    hour = timedelta(hours=1)
    for minute in range(3):
        at = NOW + timedelta(minutes=minute)
        assert window.take("alice", limit=3, window=hour, now=at) == 0
    refused_at = NOW + timedelta(minutes=10)
    assert window.take("alice", limit=3, window=hour, now=refused_at) == 50 * 60
    assert window.take("bob", limit=3, window=hour, now=refused_at) == 0
    # the first event leaves the window one hour after it happened
    assert window.take("alice", limit=3, window=hour, now=NOW + hour) == 0
    assert window.take("alice", limit=3, window=hour, now=NOW + hour) > 0


def test_sliding_window__give_back_undoes_a_take_and_keys_are_bounded() -> None:
    window: SlidingWindow[int] = SlidingWindow(capacity=10)
    hour = timedelta(hours=1)
    assert window.take(1, limit=1, window=hour, now=NOW) == 0
    window.give_back(1, NOW)
    assert window.take(1, limit=1, window=hour, now=NOW) == 0
    for key in range(2, 50):
        window.take(key, limit=1, window=hour, now=NOW)
    assert len(window._events) == 10
