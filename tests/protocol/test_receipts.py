"""Deal receipts, pure: fields read strictly, and a proof set that must hold exactly one proof
by each party and each community (protocol/receipts.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from nacl.signing import SigningKey

from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.iou import cosign
from meshnode.protocol.receipts import (
    ReceiptParty,
    build_bundle,
    build_receipt,
    parse_bundle,
    parse_receipt,
    verify_signed,
)
from meshnode.services.receipts import UPDATE_CONTEXT
from tests.protocol.test_jsonld import DROPPED, _walk, _with_sentinel, expand

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BOOKER = "https://b.example/users/bob"
AUTHOR = "https://a.example/users/alice"
NODE_A, NODE_B = "https://a.example/groups/a", "https://b.example/groups/b"
DEAL = "https://b.example/deals/1"
SEEDS = {actor: bytes([n]) * 32 for n, actor in enumerate((BOOKER, AUTHOR, NODE_A, NODE_B), 1)}


def _method(actor: str) -> str:
    return f"{actor}#ed25519-key"


def _keys() -> dict[str, bytes]:
    return {_method(a): bytes(SigningKey(s).verify_key) for a, s in SEEDS.items()}


def _receipt(**changes: Any) -> dict[str, Any]:
    document = build_receipt(deal=DEAL, completed=NOW,
                             booker=ReceiptParty(BOOKER, NODE_B, 4, False),
                             author=ReceiptParty(AUTHOR, NODE_A, 5, False))
    return {**document, **changes}


def _signed(document: dict[str, Any], signers: tuple[str, ...] = tuple(SEEDS)) -> dict[str, Any]:
    for actor in signers:
        document = cosign(document, seed=SEEDS[actor], verification_method=_method(actor),
                          created=NOW)
    return document


def test_receipt__four_proofs_by_the_parties_and_their_nodes_verify() -> None:
    document = _signed(_receipt())
    receipt = parse_receipt(document)
    assert receipt.cross_community
    assert len(verify_signed(document, receipt.signers, _keys())) == 4


def test_receipt__a_missing_party_proof_is_refused() -> None:
    document = _signed(_receipt(), (AUTHOR, NODE_A, NODE_B))
    with pytest.raises(ProofError, match="missing"):
        verify_signed(document, parse_receipt(document).signers, _keys())


def test_receipt__a_proof_by_someone_who_is_not_a_party_is_refused() -> None:
    stranger = "https://c.example/users/eve"
    document = _signed(_receipt(), (AUTHOR, NODE_A, NODE_B))
    document = cosign(document, seed=b"\x09" * 32, verification_method=_method(stranger),
                      created=NOW)
    with pytest.raises(ProofError, match="not a party"):
        verify_signed(document, parse_receipt(document).signers, _keys())


def test_receipt__the_same_signer_twice_does_not_stand_for_the_other_party() -> None:
    document = _signed(_receipt(), (AUTHOR, AUTHOR, NODE_A, NODE_B))
    with pytest.raises(ProofError, match="two proofs"):
        verify_signed(document, parse_receipt(document).signers, _keys())


def test_receipt__a_changed_rating_fails_every_proof() -> None:
    document = _signed(_receipt())
    altered = {**document, "booker": {**document["booker"], "rating": 5}}
    with pytest.raises(ProofError):
        verify_signed(altered, parse_receipt(altered).signers, _keys())


@pytest.mark.parametrize(("changes", "field"), [
    ({"booker": {"actor": BOOKER, "node": NODE_A, "rating": 4, "noShow": False}}, "booker"),
    ({"author": {"actor": AUTHOR, "node": NODE_A, "rating": 6, "noShow": False}}, "author"),
    ({"author": {"actor": AUTHOR, "node": NODE_A, "rating": True, "noShow": False}}, "author"),
    ({"author": {"actor": AUTHOR, "node": NODE_A, "rating": 5, "noShow": "no"}}, "author"),
    ({"id": "https://b.example/deals/2#receipt"}, "id"),
    ({"deal": "https://a.example/deals/1", "id": "https://a.example/deals/1#receipt"}, "deal"),
])
def test_receipt__fields_are_read_strictly(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_receipt(_receipt(**changes))
    assert field in caught.value.fields


def test_bundle__more_receipts_than_allowed_is_refused() -> None:
    bundle = {"type": "ReceiptBundle", "actor": AUTHOR, "node": NODE_A,
              "movingTo": "https://c.example/users/alice", "exported": "2026-11-26T10:00:00Z",
              "receipts": [_receipt()] * 3}
    assert len(parse_bundle(bundle, max_receipts=3).receipts) == 3
    with pytest.raises(ValidationError) as caught:
        parse_bundle(bundle, max_receipts=2)
    assert "receipts" in caught.value.fields


def _undefined_terms(document: dict[str, Any]) -> list[str]:
    expanded = expand(_with_sentinel(document))
    return sorted({iri for key, value in _walk(expanded)
                   for iri in ([value] if key == "@type" else [key])
                   if isinstance(iri, str) and iri.startswith(DROPPED)})


def test_jsonld__receipt_bundle_and_update_define_every_term_inline() -> None:
    # Given a signed receipt, a bundle holding it, and the Update that carries it between nodes
    receipt = _signed(_receipt())
    bundle = build_bundle(actor=AUTHOR, node=NODE_A, moving_to="https://c.example/users/a",
                          exported=NOW, receipts=[receipt])
    update = {"@context": UPDATE_CONTEXT, "id": f"{DEAL}/receipt/author/1", "type": "Update",
              "actor": AUTHOR, "to": [BOOKER],
              "object": {"type": "Agreement", "id": DEAL, "dealReceipt": receipt}}
    # Then a JSON-LD processor (only vendored contexts, nothing fetched) drops no term
    for document in (receipt, bundle, update):
        assert _undefined_terms(document) == []
