"""``scripts/ingest_budget.py``: the per-listing budget ``bench_federation.py --ingest``
prints (issue 17). Its figures are timings and are never asserted; what is checked is that
it measures the steps on real signed listings (a forged request or proof fails it, as it
would fail the node) and that its table adds up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nacl.signing import SigningKey

from meshnode.keys import generate_identity
from meshnode.protocol.activities import listing_activity
from meshnode.protocol.errors import ProofError, SignatureError
from meshnode.protocol.listings import CurrencyRef, build_proposal, parse_listing_input
from meshnode.protocol.proofs import create_proof
from meshnode.protocol.signing import signed_post_headers
from scripts import ingest_budget
from tests.conftest import ride_listing

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"
ALICE = f"{BASE}/users/alice"
INBOX = "http://127.0.0.1:8081/inbox"


def _listings(count: int) -> tuple[list[tuple[bytes, dict[str, str]]], list[dict[str, Any]],
                                   bytes]:
    """``count`` signed Creates of distinct signed listings by alice, their listings and
    alice's public key."""
    identity = generate_identity()
    key = SigningKey(identity.ed25519_seed)
    draft = parse_listing_input(ride_listing(), now=NOW, decimals=2)
    requests, documents = [], []
    for n in range(count):
        proposal = build_proposal(draft, object_id=f"{BASE}/listings/{n}", actor_id=ALICE,
                                  published=NOW, updated=None,
                                  currency=CurrencyRef(uri=f"{BASE}/currency", code="G",
                                                       decimals=2))
        document = create_proof(proposal, seed=identity.ed25519_seed,
                                verification_method=f"{ALICE}#ed25519", created=NOW)
        create = listing_activity("Create", document, actor=ALICE, version=1,
                                  published="2026-11-26T10:00:00Z")
        body = json.dumps(create).encode()
        requests.append((body, signed_post_headers(
            "rfc9421-ed25519", INBOX, body, key=key, key_id=f"{ALICE}#ed25519-key",
            now=int(datetime.now(UTC).timestamp()))))
        documents.append(document)
    return requests, documents, bytes(key.verify_key)


async def test_budget__measures_each_required_step_on_signed_listings() -> None:
    # Given three signed Creates of signed listings
    requests, documents, public_key = _listings(3)
    # When the budget is measured on them
    budget = await ingest_budget.measure(requests, INBOX, documents, public_key)
    overhead = await ingest_budget.measure_overhead(requests, INBOX, documents)
    # Then every step took some CPU, and the sums are the sums of their parts
    parts = (budget.json_parse, budget.http_signature, budget.proof, budget.door_commit,
             budget.listing_commit)
    assert all(part > 0 for part in parts)
    assert budget.total == pytest.approx(sum(parts))
    assert budget.proof_jcs > 0
    assert overhead.total > 0


async def test_budget__a_forged_signature_fails_the_measurement() -> None:
    # Given requests whose HTTP signatures were made by another key
    requests, documents, _ = _listings(1)
    stranger = bytes(SigningKey.generate().verify_key)
    # When the budget verifies them with that key, Then it fails as the node's door would
    with pytest.raises(SignatureError):
        await ingest_budget.measure(requests, INBOX, documents, stranger)


async def test_budget__a_tampered_listing_fails_the_measurement() -> None:
    # Given a listing changed after it was signed (its HTTP signature made with its key)
    requests, documents, public_key = _listings(1)
    documents[0] = {**documents[0], "name": "Autre chose"}
    # When the budget verifies its proof, Then the proof fails as in the worker
    with pytest.raises((ProofError, SignatureError)):
        await ingest_budget.measure(requests, INBOX, documents, public_key)


def test_budget__the_table_shows_the_gap_and_the_lowest_ratio() -> None:
    # Given a budget of 200 µs a listing and a node spending 600 µs, baseline 10,000/s
    budget = ingest_budget.Budget(20.0, 50.0, 70.0, 15.0, 30.0, 30.0)
    # When its table is printed
    text = "\n".join(budget.lines(600.0, 10_000.0))
    # Then the sum, the overhead, and 1e6 / 200 = 5,000/s = 0.50 × the baseline are shown
    assert "200.0" in text
    assert "400.0" in text
    assert "3.00 ×" in text
    assert "5,000/s" in text
    assert "0.50 ×" in text
