"""Password login through the service: the same Argon2 work for every username, and a throttle
that stops guessing without locking the owner out. Real SQLite file, real Argon2id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from meshnode.errors import AuthenticationError, RateLimitedError
from meshnode.services import members, sessions
from meshnode.services.accounts import MemberChange, admin_change_member
from meshnode.services.context import NodeContext
from meshnode.services.ratelimit import LoginThrottle
from tests.conftest import PASSWORD, FakeClock, TestMember

ATTACKER = "198.51.100.66"


@pytest.fixture
def verified_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash PasswordHasher.verify is called with (the real verify still runs).

    A spy rather than a timing assertion: timings are measured by scripts/bench_login.py.
    """
    seen: list[str] = []
    real_verify = PasswordHasher.verify

    def spy(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        seen.append(hash if isinstance(hash, str) else hash.decode())
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    return seen


async def _login(ctx: NodeContext, throttle: LoginThrottle, username: str, password: str,
                 address: str = ATTACKER) -> sessions.NewSession:
    return await sessions.login(ctx, throttle, username=username, password=password,
                                address=address)


def test_dummy_password_hash__uses_the_hasher_parameters() -> None:
    assert members.DUMMY_PASSWORD_HASH.startswith("$argon2id$")
    assert not members.password_hasher().check_needs_rehash(members.DUMMY_PASSWORD_HASH)


async def test_login__unknown_disabled_and_passwordless_accounts_run_a_real_verify(
    ctx: NodeContext, alice: TestMember, bob: TestMember, verified_hashes: list[str]
) -> None:
    # Given bob disabled and carol with no password (API-token only)
    await admin_change_member(ctx, alice.row, "bob", MemberChange(disabled=True))
    await members.add_member(ctx, username="carol", password=None)
    throttle = LoginThrottle()
    # When each is tried, bob even with his right password
    for username, password in [("nobody", "guess-guess"), ("bob", PASSWORD),
                               ("carol", "guess-guess"), ("alice", "wrong-wrong")]:
        with pytest.raises(AuthenticationError):
            await _login(ctx, throttle, username, password, address=f"192.0.2.{len(username)}")
    # Then every attempt ran one Argon2 verify: the dummy hash for the three without a usable
    # password, alice's own hash for alice
    assert verified_hashes == [members.DUMMY_PASSWORD_HASH] * 3 + [alice.row.password_hash]


async def test_login__overlong_password_is_verified_too_and_refused(
    ctx: NodeContext, alice: TestMember, verified_hashes: list[str]
) -> None:
    with pytest.raises(AuthenticationError):
        await _login(ctx, LoginThrottle(), "alice", PASSWORD + "x" * members.MAX_PASSWORD)
    assert verified_hashes == [alice.row.password_hash]


async def test_login__attacker_locked_out_while_owner_logs_in_from_another_address(
    ctx: NodeContext, clock: FakeClock, alice: TestMember
) -> None:
    throttle = LoginThrottle()
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            await _login(ctx, throttle, "alice", "guess-guess")
    # The attacker's sixth try is refused before any password check, even the right one
    with pytest.raises(RateLimitedError) as refused:
        await _login(ctx, throttle, "Alice ", PASSWORD)
    assert refused.value.retry_after == 15 * 60
    # The owner, elsewhere, is not locked out
    opened = await _login(ctx, throttle, "alice", PASSWORD, address="203.0.113.7")
    assert opened.member.username == "alice"
    clock.advance(minutes=15)
    assert (await _login(ctx, throttle, "alice", PASSWORD)).member.username == "alice"


async def test_login__many_addresses_slow_the_account_but_the_owner_gets_in(
    ctx: NodeContext, clock: FakeClock, alice: TestMember
) -> None:
    throttle = LoginThrottle()
    for host in range(10):  # 10 addresses, one guess each: account_free is reached
        with pytest.raises(AuthenticationError):
            await _login(ctx, throttle, "alice", "guess-guess", address=f"192.0.2.{host}")
    with pytest.raises(RateLimitedError) as slowed:
        await _login(ctx, throttle, "alice", PASSWORD, address="203.0.113.7")
    assert 0 < slowed.value.retry_after <= 60
    clock.advance(seconds=slowed.value.retry_after)
    opened = await _login(ctx, throttle, "alice", PASSWORD, address="203.0.113.7")
    assert opened.member.username == "alice"
    assert timedelta(0) < throttle.policy.max_account_delay <= timedelta(minutes=1)
