"""Ledger use cases: payment requests, reversals, admin entries, limits, verification."""

from __future__ import annotations

import pytest

from meshnode.errors import ConflictError, LimitExceededError, NotFoundError, PermissionDeniedError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import JournalEntry
from meshnode.services import ledger
from meshnode.services.context import NodeContext
from meshnode.store import ledger as q
from tests.conftest import FakeClock, MakeMember
from tests.conftest import TestMember as Member


async def _balances(ctx: NodeContext) -> dict[str, int]:
    return {a.name: a.balance for a in await q.list_accounts(ctx.store.reader)}


async def _journal(ctx: NodeContext) -> list[JournalEntry]:
    return [entry async for entry in q.iter_entries(ctx.store.reader)]


async def test_request__approve_moves_money_and_keeps_both_signatures(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    # Given bob bills alice
    request = await ledger.request_payment(ctx, bob.row, payer="alice", amount="20", memo="soupe")
    assert request.status == "pending"
    wallet = await ledger.wallet_summary(ctx, bob.row)
    assert wallet.position.held_credit == 2000
    # When alice approves
    entry = await ledger.approve_request(ctx, alice.row, request.id)
    # Then the journal records alice's Accept embedding bob's signed Offer
    assert entry.document["type"] == "Accept"
    assert entry.document["object"]["proof"]["verificationMethod"].endswith("/bob#ed25519-key")
    assert (await _balances(ctx))["alice"] == -2000
    assert (await ledger.wallet_summary(ctx, bob.row)).position.held_credit == 0
    assert (await ledger.verify_journal(ctx)).ok


async def test_request__approving_someone_elses_is_refused(
    ctx: NodeContext, make_member: MakeMember, alice: Member, bob: Member
) -> None:
    carol = await make_member("carol")
    request = await ledger.request_payment(ctx, bob.row, payer="alice", amount="5")
    # a stranger does not even learn the request exists (404); the payee is refused (403)
    with pytest.raises(NotFoundError):
        await ledger.approve_request(ctx, carol.row, request.id)
    with pytest.raises(PermissionDeniedError):
        await ledger.approve_request(ctx, bob.row, request.id)
    assert await _journal(ctx) == []


async def test_request__approving_twice_is_409(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    request = await ledger.request_payment(ctx, bob.row, payer="alice", amount="5")
    await ledger.approve_request(ctx, alice.row, request.id)
    with pytest.raises(ConflictError, match="already approved"):
        await ledger.approve_request(ctx, alice.row, request.id)
    assert len(await _journal(ctx)) == 1


async def test_request__expired_cannot_be_approved(
    ctx: NodeContext, clock: FakeClock, alice: Member, bob: Member
) -> None:
    request = await ledger.request_payment(ctx, bob.row, payer="alice", amount="5",
                                           expires_in_days=1)
    clock.advance(days=1, seconds=1)
    with pytest.raises(ConflictError, match="expired"):
        await ledger.approve_request(ctx, alice.row, request.id)
    assert await ledger.expire_requests(ctx) == 1
    assert (await ledger.get_request(ctx, bob.row, request.id)).status == "expired"
    assert await _journal(ctx) == []


async def test_request__decline_releases_hold(ctx: NodeContext, alice: Member, bob: Member) -> None:
    request = await ledger.request_payment(ctx, bob.row, payer="alice", amount="5")
    declined = await ledger.decline_request(ctx, alice.row, request.id)
    assert declined.status == "declined"
    assert (await ledger.wallet_summary(ctx, bob.row)).position.held_credit == 0
    with pytest.raises(ConflictError):
        await ledger.approve_request(ctx, alice.row, request.id)


async def test_request__payee_hold_counts_against_upper_limit(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    await ledger.request_payment(ctx, bob.row, payer="alice", amount="990")
    with pytest.raises(LimitExceededError, match=r"at most 10\.00"):
        await ledger.pay(ctx, alice.row, payee="bob", amount="11")


async def test_reverse__by_payee_creates_linked_entry(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    original = await ledger.pay(ctx, alice.row, payee="bob", amount="7.50")
    reversal = await ledger.reverse(ctx, bob.row, original.fields.id)
    assert reversal.fields.reverses == original.fields.id
    assert (reversal.fields.payer, reversal.fields.payee) == ("bob", "alice")
    assert (await _balances(ctx))["alice"] == 0
    assert len(await _journal(ctx)) == 2
    with pytest.raises(ConflictError, match="already reversed"):
        await ledger.reverse(ctx, bob.row, original.fields.id)


async def test_reverse__by_payer_is_refused(
    ctx: NodeContext, make_member: MakeMember, alice: Member
) -> None:
    carol = await make_member("carol")
    original = await ledger.pay(ctx, carol.row, payee="alice", amount="1")
    with pytest.raises(PermissionDeniedError):
        await ledger.reverse(ctx, carol.row, original.fields.id)
    # an admin (alice is one, and the payee here) may
    await ledger.reverse(ctx, alice.row, original.fields.id)


async def test_reverse__unknown_transaction_is_404(ctx: NodeContext, alice: Member) -> None:
    with pytest.raises(NotFoundError):
        await ledger.reverse(ctx, alice.row, "nope")


async def test_admin_transfer__fee_to_fund_is_marked(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    entry = await ledger.admin_transfer(ctx, alice.row, payer="bob", payee="sys:fund",
                                        amount="10", memo="cotisation 2026")
    assert entry.fields.kind == "admin"
    assert entry.document["enteredBy"].endswith("/users/alice")
    assert (await _balances(ctx))["sys:fund"] == 1000
    with pytest.raises(PermissionDeniedError):
        await ledger.admin_transfer(ctx, bob.row, payer="alice", payee="bob", amount="1")


async def test_set_limits__override_and_refuse_if_already_breached(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    wallet = await ledger.set_limits(ctx, alice.row, "bob", min_balance="-500",
                                     max_balance=None)
    assert wallet.position.min_balance == -50000
    await ledger.pay(ctx, bob.row, payee="alice", amount="400")
    with pytest.raises(ConflictError, match="already be breached"):
        await ledger.set_limits(ctx, alice.row, "bob", min_balance="-300", max_balance=None)
    with pytest.raises(ValidationError):
        await ledger.set_limits(ctx, alice.row, "bob", min_balance="5", max_balance=None)
    with pytest.raises(PermissionDeniedError):
        await ledger.set_limits(ctx, bob.row, "bob", min_balance="-900", max_balance=None)


async def test_history__pages_with_cursor(ctx: NodeContext, alice: Member, bob: Member) -> None:
    for _ in range(5):
        await ledger.pay(ctx, alice.row, payee="bob", amount="1")
    first = await ledger.history(ctx, bob.row, limit=3)
    assert len(first.entries) == 3
    assert first.next_cursor is not None
    second = await ledger.history(ctx, bob.row, cursor=first.next_cursor, limit=3)
    assert len(second.entries) == 2
    assert second.next_cursor is None
    seqs = [e.seq for e in first.entries + second.entries]
    assert seqs == sorted(seqs, reverse=True)


async def test_journal__triggers_refuse_update_and_delete(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    import sqlite3

    await ledger.pay(ctx, alice.row, payee="bob", amount="1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with ctx.store.transaction() as tx:
            await tx.execute("UPDATE ledger_journal SET amount = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with ctx.store.transaction() as tx:
            await tx.execute("DELETE FROM ledger_journal")


async def test_summary__reports_totals_and_near_limits(
    ctx: NodeContext, alice: Member, bob: Member
) -> None:
    await ledger.pay(ctx, alice.row, payee="bob", amount="290")
    summary = await ledger.ledger_summary(ctx)
    assert summary.balance_sum == 0
    assert summary.transactions == 1
    assert summary.journal_ok
    assert summary.active_traders == 2
    assert [n.account for n in summary.near_limits] == ["alice"]
