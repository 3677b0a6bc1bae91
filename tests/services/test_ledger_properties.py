"""Property test: random sequences of ledger operations never break the ledger's invariants.

The same node is reused across examples (every invariant must hold for *any* reachable
state, so accumulated history is fine and saves creating keys for each example).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshnode.errors import ServiceError
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.services import ledger, members
from meshnode.services.context import NodeContext
from meshnode.store import ledger as q
from meshnode.store.members import MemberRow
from tests.conftest import FakeClock, MakeMember

NAMES = ("alice", "bob", "carol", "dave")
amounts = st.integers(min_value=1, max_value=60_000).map(lambda u: format_amount(u, decimals=2))
who = st.integers(min_value=0, max_value=len(NAMES) - 1)
pick = st.integers(min_value=0, max_value=50)
limit = st.one_of(st.none(), st.integers(min_value=-1_000_00, max_value=0))
operations = st.one_of(
    st.tuples(st.just("pay"), who, who, amounts),
    st.tuples(st.just("request"), who, who, amounts),
    st.tuples(st.just("approve"), pick, st.booleans()),
    st.tuples(st.just("decline"), pick, st.booleans()),
    st.tuples(st.just("reverse"), pick, st.booleans()),
    st.tuples(st.just("limits"), who, limit, st.one_of(st.none(), st.integers(0, 2_000_00))),
    st.tuples(st.just("fee"), who, amounts),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=20)),
)


@dataclass
class World:
    """What the operations refer back to by index."""

    members: list[MemberRow]
    requests: list[str] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)


async def _apply(ctx: NodeContext, clock: FakeClock, world: World, op: tuple[object, ...]) -> None:
    m = world.members
    match op:
        case ("pay", int(i), int(j), str(amount)):
            entry = await ledger.pay(ctx, m[i], payee=m[j].username, amount=amount)
            world.transactions.append(entry.fields.id)
        case ("request", int(i), int(j), str(amount)):
            row = await ledger.request_payment(ctx, m[j], payer=m[i].username, amount=amount)
            world.requests.append(row.id)
        case ("approve" | "decline" as action, int(k), bool(as_payer)) if world.requests:
            request = await q.get_request(ctx.store.reader, world.requests[k % len(world.requests)])
            assert request is not None
            actor = next(x for x in m if x.username == (
                request.payer_account if as_payer else request.payee_account))
            if action == "approve":
                entry = await ledger.approve_request(ctx, actor, request.id)
                world.transactions.append(entry.fields.id)
            else:
                await ledger.decline_request(ctx, actor, request.id)
        case ("reverse", int(k), bool(as_admin)) if world.transactions:
            tx_id = world.transactions[k % len(world.transactions)]
            original = await q.get_entry(ctx.store.reader, tx_id)
            assert original is not None
            actor = m[0] if as_admin else next(
                (x for x in m if x.username == original.fields.payee), m[1])
            entry = await ledger.reverse(ctx, actor, tx_id)
            world.transactions.append(entry.fields.id)
        case ("limits", int(i), low, high):
            await ledger.set_limits(
                ctx, m[0], m[i].username,
                min_balance=None if low is None else format_amount(int(low), decimals=2),
                max_balance=None if high is None else format_amount(int(high), decimals=2),
            )
        case ("fee", int(i), str(amount)):
            await ledger.admin_transfer(ctx, m[0], payer=m[i].username, payee="sys:fund",
                                        amount=amount)
        case ("wait", int(days)):
            clock.advance(days=days)
        case _:
            pass


async def _check_invariants(ctx: NodeContext, *, signatures: bool) -> None:
    verification = await ledger.verify_journal(ctx, check_signatures=signatures)
    # sum zero, every cached balance equals the sum of its entries, the chain verifies
    assert verification.ok, verification.describe()
    for account in await q.list_accounts(ctx.store.reader):
        low, high = ledger.effective_limits(ctx, account)
        assert low is None or account.balance >= low, account
        assert high is None or account.balance <= high, account


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=st.lists(operations, min_size=1, max_size=25))
async def test_ledger__random_operations_keep_invariants(
    ctx: NodeContext, clock: FakeClock, make_member: MakeMember,
    sequence: list[tuple[object, ...]],
) -> None:
    existing = {m.username: m for m in await members.list_members(ctx)}
    for index, name in enumerate(NAMES):
        if name not in existing:
            existing[name] = (await make_member(name, admin=index == 0)).row
    world = World(members=[existing[name] for name in NAMES])
    for op in sequence:
        # refusals are expected; they must leave the ledger untouched
        with contextlib.suppress(ServiceError, ValidationError):
            await _apply(ctx, clock, world, op)
        await _check_invariants(ctx, signatures=False)
    await _check_invariants(ctx, signatures=True)
