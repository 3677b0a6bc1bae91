"""Pure ledger core: limits, limit parsing, signed documents and the hash chain verdicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    GENESIS_HASH,
    AccountPosition,
    ChainHead,
    CurrencyTerms,
    EntryFields,
    JournalEntry,
    TransferTerms,
    balances_from_entries,
    build_event,
    check_transfer,
    entry_hash,
    parse_limit,
    parse_memo,
    verify_chain,
)
from meshnode.protocol.proofs import create_proof

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SEED = bytes(range(32))
METHOD = "https://n.example/users/alice#ed25519-key"
CURRENCY = CurrencyTerms(uri="https://n.example/currency", symbol="G", decimals=2)


def _public_key() -> bytes:
    from nacl.signing import SigningKey

    return bytes(SigningKey(SEED).verify_key)


def _document(tx_id: str, amount: int) -> dict[str, Any]:
    terms = TransferTerms(
        object_id=f"https://n.example/ledger/transactions/{tx_id}", kind="payment",
        payer_uri="https://n.example/users/alice", payee_uri="https://n.example/users/bob",
        amount=amount, memo="", created=NOW,
    )
    return create_proof(build_event(terms, CURRENCY), seed=SEED, verification_method=METHOD,
                        created=NOW)


def _chain(count: int) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = EntryFields(id=f"t{seq}", kind="payment", payer="alice", payee="bob",
                             amount=100 * seq, memo="", listing_id=None, reverses=None,
                             request_id=None, signer="alice", created_at="2026-11-26T10:00:00Z")
        document = _document(f"t{seq}", 100 * seq)
        digest = entry_hash(prev, fields, document)
        entries.append(JournalEntry(seq=seq, fields=fields, document=document, prev_hash=prev,
                                    hash=digest))
        prev = digest
    return entries


def _head(entries: list[JournalEntry]) -> ChainHead:
    return ChainHead(seq=entries[-1].seq, hash=entries[-1].hash)


def test_check_transfer__counts_holds_against_limits() -> None:
    payer = AccountPosition("a", balance=-100, min_balance=-300, max_balance=1000, held_debit=150)
    payee = AccountPosition("b", balance=900, min_balance=-300, max_balance=1000, held_credit=50)
    assert check_transfer(payer, payee, 50) is None
    breach = check_transfer(payer, payee, 51)
    assert breach is not None
    assert (breach.account, breach.side, breach.available) == ("a", "spend", 50)
    rich = replace(payer, held_debit=0)
    breach = check_transfer(rich, payee, 60)
    assert breach is not None
    assert (breach.account, breach.side, breach.available) == ("b", "receive", 50)


def test_check_transfer__system_account_is_unlimited() -> None:
    fund = AccountPosition("sys:fund", balance=-10**9, min_balance=None, max_balance=None)
    member = AccountPosition("b", balance=0, min_balance=-300, max_balance=1000)
    assert check_transfer(fund, member, 1000) is None


@pytest.mark.parametrize(("text", "units"), [("-300", -30000), ("0", 0), ("1000.5", 100050),
                                             ("-0.01", -1)])
def test_parse_limit__accepts_signed_decimals(text: str, units: int) -> None:
    assert parse_limit(text, decimals=2, field="min_balance") == units


@pytest.mark.parametrize("text", ["1e3", "NaN", "--1", "1.234", "+5", "", " 1", 5])
def test_parse_limit__rejects_bad_text(text: object) -> None:
    with pytest.raises(ValidationError):
        parse_limit(text, decimals=2, field="min_balance")


def test_parse_memo__caps_length_and_strips_controls() -> None:
    assert parse_memo("  vélo\x00 ") == "vélo"
    assert parse_memo(None) == ""
    with pytest.raises(ValidationError):
        parse_memo("x" * 501)


def test_verify_chain__intact_chain_with_signatures() -> None:
    entries = _chain(5)
    report = verify_chain(entries, decimals=2, keys={METHOD: _public_key()}, head=_head(entries))
    assert report.ok, report.describe()
    assert report.entries == 5


def test_verify_chain__altered_amount_is_pinpointed() -> None:
    entries = _chain(5)
    entries[2] = replace(entries[2], fields=replace(entries[2].fields, amount=1))
    report = verify_chain(entries, decimals=2, head=_head(entries))
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "altered")]


def test_verify_chain__rehashed_alteration_is_caught_by_link_and_signature() -> None:
    # Given an attacker who changes entry 3's amount and recomputes its hash
    entries = _chain(5)
    fields = replace(entries[2].fields, amount=1)
    entries[2] = replace(entries[2], fields=fields,
                         hash=entry_hash(entries[2].prev_hash, fields, entries[2].document))
    report = verify_chain(entries, decimals=2, keys={METHOD: _public_key()}, head=_head(entries))
    kinds = {(p.seq, p.kind) for p in report.problems}
    # Then the signed document disagrees and entry 4 no longer links to it
    assert (3, "mismatch") in kinds
    assert (3, "altered") in kinds


def test_verify_chain__removed_entry_is_pinpointed() -> None:
    entries = _chain(5)
    head = _head(entries)
    del entries[2]
    report = verify_chain(entries, decimals=2, head=head)
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "removed")]
    assert "3..3" in report.problems[0].detail


def test_verify_chain__removed_tail_is_caught_by_head() -> None:
    entries = _chain(5)
    head = _head(entries)
    report = verify_chain(entries[:3], decimals=2, head=head)
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "removed")]


def test_verify_chain__reordered_entries_are_pinpointed() -> None:
    entries = _chain(5)
    head = _head(entries)
    a, b = entries[1], entries[2]
    entries[1], entries[2] = replace(b, seq=2), replace(a, seq=3)
    report = verify_chain(entries, decimals=2, head=head)
    assert {p.kind for p in report.problems} == {"reordered"}
    assert {p.seq for p in report.problems} == {2, 3, 4}


def test_verify_chain__forged_signature_is_caught() -> None:
    entries = _chain(2)
    document = dict(entries[1].document)
    document["proof"] = dict(document["proof"], proofValue="z" + "1" * 86)
    forged = replace(entries[1], document=document,
                     hash=entry_hash(entries[1].prev_hash, entries[1].fields, document))
    report = verify_chain([entries[0], forged], decimals=2, keys={METHOD: _public_key()})
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "bad_signature")]


def test_balances_from_entries__sum_to_zero() -> None:
    balances = balances_from_entries(_chain(4))
    assert balances == {"alice": -1000, "bob": 1000}
    assert sum(balances.values()) == 0


def test_chain_hash__splicing_equals_jcs_of_whole_payload() -> None:
    import hashlib

    from meshnode.protocol.canonical import canonicalize

    entry = _chain(1)[0]
    whole = canonicalize({"prev": GENESIS_HASH, "entry": entry.fields.as_json(),
                          "document": dict(entry.document)})
    assert entry.hash == hashlib.sha256(whole).hexdigest()
